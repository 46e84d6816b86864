/**
 * The plugin server: the route table of both APIs behind one express app, and listening on a
 * unix socket (a stale socket file replaced, mode 0660), on a socket systemd passed as fd 3, or
 * on a Windows named pipe.
 */
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { dirname } from 'node:path'
import type { Server } from 'node:http'
import * as TE from 'fp-ts/lib/TaskEither.js'
import type express from 'express'
import type { CoreError, Env, Ipam } from '@isthmus/core'
import { inspectRoutes, type DaemonInfo } from './inspect.js'
import { ipamRoutes } from './ipamDriver.js'
import { pluginMetrics, type PluginMetrics } from './metrics.js'
import { networkRoutes } from './networkDriver.js'
import { IMPLEMENTS } from './protocol/Plugin.js'
import { route, buildApp, type Route } from './router.js'
import { shutdownRoute } from './shutdown.js'
import { boundedServer, SOCKET_LIMITS, type SocketLimits } from './sockets.js'
import * as t from 'io-ts'

/** Where the plugin default socket lives: dockerd looks for `<name>.sock` here (docs/cnm.md, "Discovery"). */
export const DEFAULT_SOCKET = '/run/docker/plugins/isthmus.sock'

/** What the plugin serves: the core's ports and the built-in IPAM. */
export interface PluginDeps {
  readonly env: Env
  readonly ipam: Ipam
  /** What the inspection routes tell about the daemon (version `unknown` without it). */
  readonly about?: DaemonInfo
  /** Where requests are counted; the app makes its own without it. */
  readonly metrics?: PluginMetrics
  /** Asks the host process to stop gracefully; `/IpamDriver.Shutdown` is served only with it (shutdown.ts). */
  readonly shutdown?: () => void
}

/** Every route: Plugin.Activate, the NetworkDriver, the IpamDriver and isthmus's inspection. */
export const pluginRoutes = (deps: PluginDeps): ReadonlyArray<Route> => [
  route('Plugin', 'Activate', t.unknown, () => TE.right<CoreError, object>(IMPLEMENTS)),
  ...networkRoutes(deps.env),
  ...ipamRoutes(deps.ipam),
  ...inspectRoutes(deps.env, deps.about ?? { version: 'unknown', cniVersions: [] }, deps.metrics),
  ...(deps.shutdown === undefined ? [] : [shutdownRoute(deps.shutdown)])
]

/** The express app of the plugin, for embedding or for tests. */
export const createPluginApp = (deps: PluginDeps): express.Express => {
  const metrics = deps.metrics ?? pluginMetrics()
  return buildApp(pluginRoutes({ ...deps, metrics }), deps.env.log, { onRequest: metrics.observe })
}

/**
 * Where to listen: a socket path, an inherited fd (systemd socket activation), or a Windows named
 * pipe (`\\.\pipe\isthmus`), which has no file to clear or chmod: Node listens on it as it is.
 */
export type ListenOn =
  { readonly socket: string; readonly mode?: number } | { readonly fd: number } | { readonly pipe: string }

/** A listening plugin server. */
export interface PluginServer {
  readonly server: Server
  /**
   * Stop accepting, close idle connections, let calls in flight be answered, then close every
   * connection (sockets.ts): an idle client never holds shutdown up.
   */
  readonly close: () => Promise<void>
}

// A socket file nobody answers on is left by a killed daemon: replace it. One that answers
// belongs to a running daemon: refuse, rather than steal its clients.
export const clearStaleSocket = async (path: string): Promise<void> => {
  const st = await lstat(path).catch((e: NodeJS.ErrnoException) =>
    e.code === 'ENOENT' ? undefined : Promise.reject(e)
  )
  if (st === undefined) return
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket`)
  const alive = await new Promise<boolean>((resolve) => {
    const c = createConnection(path)
    c.once('connect', () => {
      c.destroy()
      resolve(true)
    })
    c.once('error', () => resolve(false))
  })
  if (alive) throw new Error(`another process is serving ${path}`)
  await unlink(path)
}

/**
 * Listen with `app`, within `limits` (sockets.ts). Rejects with a plain Error naming the problem
 * (the bin prints it).
 */
export const listen = async (
  app: express.Express,
  on: ListenOn,
  limits: SocketLimits = SOCKET_LIMITS
): Promise<PluginServer> => {
  if ('socket' in on) {
    await mkdir(dirname(on.socket), { recursive: true })
    await clearStaleSocket(on.socket)
  }
  const bounded = boundedServer(app, limits)
  const server = bounded.server
  await new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve())
    server.once('error', reject)
    server.listen('socket' in on ? on.socket : 'pipe' in on ? on.pipe : { fd: on.fd })
  })
  if ('socket' in on) await chmod(on.socket, on.mode ?? 0o660)
  return { server, close: bounded.close }
}
