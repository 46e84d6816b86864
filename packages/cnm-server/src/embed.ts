/**
 * Embedding the Docker plugin in an integrator's own process (as ciao-launcher runs its plugin):
 * `embeddedEnv` builds the core's Env from the integrator's store and dataplane (built-in IPAM
 * and control plane unless it brings its own), and `startPluginServer` serves the network and
 * IPAM driver on a unix socket dockerd finds by name, or on TCP loopback with the discovery file
 * dockerd reads (`/etc/docker/plugins/<name>.spec` or `.json`: docs/cnm.md, "Discovery").
 */
import { mkdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { Server } from 'node:http'
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import {
  builtinControlPlane,
  decodeWith,
  describe,
  makeIpam,
  noopAgent,
  silentLogger,
  systemClock,
  type Agent,
  type Clock,
  type ControlPlane,
  type Dataplane,
  type Env,
  type Ipam,
  type Logger,
  type Store
} from '@isthmus/core'
import { createPluginApp, listen } from './server.js'
import { boundedServer, type SocketLimits } from './sockets.js'

// -------------------------------------------------------------------------------------
// the environment
// -------------------------------------------------------------------------------------

/** The integrator's choices; everything but the store and the dataplane has a default. */
export interface EmbeddedPorts {
  readonly store: Store
  readonly dataplane: Dataplane
  /** A control plane over the built-in IPAM (Contrail wraps it); default: `builtinControlPlane`. */
  readonly controlPlane?: (ipam: Ipam, store: Store) => ControlPlane
  readonly agent?: Agent
  readonly log?: Logger
  readonly clock?: Clock
}

/** The core's environment and the IPAM the plugin's IpamDriver answers from. */
export interface EmbeddedEnv {
  readonly env: Env
  readonly ipam: Ipam
}

/** Build the Env and the IPAM for `startPluginServer` (or for driving the flows directly). */
export const embeddedEnv = (ports: EmbeddedPorts): EmbeddedEnv => {
  const clock = ports.clock ?? systemClock
  const ipam = makeIpam({ store: ports.store, clock })
  const controlPlane = (ports.controlPlane ?? builtinControlPlane)(ipam, ports.store)
  return {
    ipam,
    env: {
      store: ports.store,
      dataplane: ports.dataplane,
      controlPlane,
      agent: ports.agent ?? noopAgent,
      log: ports.log ?? silentLogger,
      clock
    }
  }
}

// -------------------------------------------------------------------------------------
// the server
// -------------------------------------------------------------------------------------

/** Where dockerd looks for plugin sockets and for discovery files of plugins on TCP. */
export const PLUGIN_SOCKET_DIR = '/run/docker/plugins'
export const PLUGIN_SPEC_DIR = '/etc/docker/plugins'

/**
 * A driver name dockerd can look up as a file name (`-d <name> --ipam-driver <name>`).
 * @category codecs
 */
export const PluginName = t.refinement(t.string, (s) => /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(s), 'PluginName')

/** Loopback TCP, as ciao's plugin listens; `port` 0 picks a free one. */
export interface TcpListen {
  readonly port: number
  /** `spec` writes `tcp://127.0.0.1:<port>`; `json` writes `{"Name","Addr":"http://…"}` (ciao's form). */
  readonly specFormat?: 'spec' | 'json'
  /** Where the discovery file goes; default `/etc/docker/plugins`. */
  readonly specDir?: string
}

/** A unix socket; default `/run/docker/plugins/<pluginName>.sock`. */
export interface SocketListen {
  readonly socket?: string
  readonly mode?: number
}

export interface StartPluginServerOptions extends EmbeddedEnv {
  readonly pluginName: string
  readonly listen: SocketListen | TcpListen
  /** Connection cap, timeouts and shutdown grace; default SOCKET_LIMITS. */
  readonly limits?: SocketLimits
}

/** A running embedded plugin. */
export interface EmbeddedPlugin {
  readonly name: string
  /** How dockerd reaches it: `unix:///…` or `tcp://127.0.0.1:<port>`. */
  readonly address: string
  /** The discovery file written for TCP (removed by `close`). */
  readonly specFile?: string
  readonly server: Server
  /** Stop serving, finish in-flight calls, remove the socket or the discovery file. */
  readonly close: () => Promise<void>
}

const LOOPBACK = '127.0.0.1'

const exists = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false
  )

// Written aside and renamed in: dockerd may read it any moment (a `network create` racing us).
const writeSpec = async (dir: string, name: string, format: 'spec' | 'json', port: number): Promise<string> => {
  const file = join(dir, `${name}.${format}`)
  const text =
    format === 'spec'
      ? `tcp://${LOOPBACK}:${port}\n`
      : `${JSON.stringify({ Name: name, Addr: `http://${LOOPBACK}:${port}` })}\n`
  await writeFile(`${file}.tmp`, text, { mode: 0o644 })
  await rename(`${file}.tmp`, file)
  return file
}

const listenTcp = async (options: StartPluginServerOptions, on: TcpListen, name: string): Promise<EmbeddedPlugin> => {
  const { server, close } = boundedServer(createPluginApp(options), options.limits)
  await new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve())
    server.once('error', reject)
    server.listen(on.port, LOOPBACK)
  })
  const port = (server.address() as AddressInfo).port
  const dir = on.specDir ?? PLUGIN_SPEC_DIR
  const madeDir = !(await exists(dir))
  const specFile = await mkdir(dir, { recursive: true })
    .then(() => writeSpec(dir, name, on.specFormat ?? 'spec', port))
    .catch(async (e: unknown) => {
      await close()
      throw e
    })
  return {
    name,
    address: `tcp://${LOOPBACK}:${port}`,
    specFile,
    server,
    close: async () => {
      await rm(specFile, { force: true })
      // a directory this plugin made goes with it, unless others put files there meanwhile
      if (madeDir) await rmdir(dir).catch(() => undefined)
      await close()
    }
  }
}

/**
 * Serve the Docker network and IPAM driver `pluginName` over `env` and `ipam`. Rejects with a
 * plain Error naming the problem (a bad name, a socket another process serves, a port in use).
 */
export const startPluginServer = async (options: StartPluginServerOptions): Promise<EmbeddedPlugin> => {
  const named = decodeWith(PluginName, 'plugin name')(options.pluginName)
  if (E.isLeft(named)) throw new Error(describe(named.left))
  const name = named.right
  const on = options.listen
  if ('port' in on) return listenTcp(options, on, name)
  const socket = on.socket ?? join(PLUGIN_SOCKET_DIR, `${name}.sock`)
  const served = await listen(
    createPluginApp(options),
    { socket, ...(on.mode === undefined ? {} : { mode: on.mode }) },
    options.limits
  )
  return { name, address: `unix://${socket}`, server: served.server, close: served.close }
}
