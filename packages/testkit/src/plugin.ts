/**
 * The isthmus Docker plugin daemon run from source (`isthmus serve`), on its own socket name so
 * that each test run is a fresh plugin to dockerd (it caches activations per name).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { linuxDataplane } from '@isthmus/dataplane-linux'
import { mustParseJson } from './json.js'
import { stopChild, waitUntil } from './proc.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const BIN = join(root, 'packages/cli/src/bin/isthmus.ts')

/** One raw reply of the plugin: status, headers and the body text as sent. */
export interface RawReply {
  readonly status: number
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly text: string
}

/**
 * POST `raw` (exact bytes: text as UTF-8, or any bytes) to the plugin socket the way dockerd
 * 20.10 does: `Accept` v1.2, `Content-Length`, no `Content-Type` (moby pkg/plugins, client.go).
 */
export const pluginRequest = (socket: string, path: string, raw: string | Uint8Array) =>
  new Promise<RawReply>((resolve, reject) => {
    const req = request(
      {
        socketPath: socket,
        path,
        method: 'POST',
        headers: { Accept: 'application/vnd.docker.plugins.v1.2+json', 'Content-Length': Buffer.byteLength(raw) }
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (text += c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }))
      }
    )
    req.on('error', reject)
    req.end(raw)
  })

/** POST to the plugin socket as dockerd does (no Content-Type); resolves status and parsed body. */
export const pluginCall = async (socket: string, path: string, body?: unknown) => {
  // Go's json.Encoder ends each body with a newline; argument-less calls send none at all
  const r = await pluginRequest(socket, path, body === undefined ? '' : `${JSON.stringify(body)}\n`)
  return { status: r.status, body: r.text === '' ? undefined : mustParseJson(`${path} reply`, r.text) }
}

export interface PluginProcess {
  /** The driver name for `docker network create -d` and `--ipam-driver`. */
  readonly name: string
  readonly socket: string
  readonly stateDir: string
  /** Where its CNI hand-off socket is (`--cni-socket`). */
  readonly cniSocket: string
  /** Its iptables chain prefix (`--chain-prefix`): a run's own, removed by `dispose`. */
  readonly chainPrefix: string
  readonly pid: () => number
  /** How the daemon last exited (`kill`, or on its own); undefined while it runs or before it ever stopped. */
  readonly exit: () => { readonly code: number | null; readonly signal: NodeJS.Signals | null } | undefined
  /** Everything the daemon wrote to stderr (JSON log lines). */
  readonly logs: () => string
  /** Start it again on the same socket and state (after `kill`). */
  readonly start: () => Promise<void>
  readonly kill: (signal?: NodeJS.Signals) => Promise<void>
  /**
   * Send `signal` to its whole process group, as systemd's default KillMode=control-group signals
   * every process of a unit (its kept `ip` helpers too), and wait for it to exit; resolves its exit
   * code (null when a signal ended it). Only with `processGroup`.
   */
  readonly killGroup: (signal?: NodeJS.Signals) => Promise<number | null>
  /** Stop it; remove its state directory and its iptables chains. */
  readonly dispose: () => Promise<void>
}

export interface StartPluginOptions {
  /**
   * The state directory to use (a test's own file system, say), which `dispose` then leaves in
   * place for its owner; default a fresh one under the temp dir, removed by `dispose`.
   */
  readonly stateDir?: string
  /** Start it as the leader of a process group of its own (for `killGroup`). Default false. */
  readonly processGroup?: boolean
  /**
   * When `startPlugin` (and `start`) resolve: `activate` (default) once the socket answers
   * Plugin.Activate; `socket` as soon as the socket file exists, while the daemon may still be
   * starting (to signal it then).
   */
  readonly readyWhen?: 'activate' | 'socket'
}

/** Start `isthmus serve` as plugin `name` with a fresh state directory. */
export const startPlugin = async (
  name: string,
  extraArgs: ReadonlyArray<string> = [],
  options: StartPluginOptions = {}
): Promise<PluginProcess> => {
  const socket = `/run/docker/plugins/${name}.sock`
  const ownState = options.stateDir === undefined
  const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), `${name}-state-`)))
  const cniSocket = `${stateDir}.cni.sock`
  const chainPrefix = `IT${randomBytes(4).toString('hex')}`
  let child: ChildProcess | undefined
  let log = ''
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
  const start = async () => {
    exit = undefined
    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--conditions=@isthmus/source',
        BIN,
        'serve',
        '--socket',
        socket,
        '--state-dir',
        stateDir,
        '--log-level',
        'debug',
        // its own CNI hand-off socket: CNI tests running meanwhile must not reach this daemon
        '--cni-socket',
        cniSocket,
        // its own chains, which dispose removes (a daemon leaves its chains, as dockerd does)
        '--chain-prefix',
        chainPrefix,
        ...extraArgs
      ],
      { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], detached: options.processGroup === true }
    )
    child.once('exit', (code, signal) => (exit = { code, signal }))
    child.stderr!.setEncoding('utf8')
    child.stderr!.on('data', (c: string) => (log += c))
    const c = child
    const early = options.readyWhen === 'socket'
    await waitUntil(
      `plugin ${name} to answer on ${socket}`,
      async () => {
        if (c.exitCode !== null) throw new Error(`isthmus serve exited ${c.exitCode}: ${log}`)
        if (early) return existsSync(socket)
        return pluginCall(socket, '/Plugin.Activate').then(
          (r) => r.status === 200,
          () => false
        )
      },
      30_000,
      early ? 2 : 100
    )
  }
  await start()
  const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child !== undefined) await stopChild(child, signal)
  }
  const killGroup = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    const c = child
    if (c === undefined || options.processGroup !== true || c.pid === undefined) {
      throw new Error('killGroup needs a plugin started with processGroup')
    }
    if (c.exitCode !== null || c.signalCode !== null) return c.exitCode
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()))
    process.kill(-c.pid, signal)
    const timer = setTimeout(() => c.kill('SIGKILL'), 20_000)
    await exited
    clearTimeout(timer)
    return c.exitCode
  }
  return {
    name,
    socket,
    stateDir,
    cniSocket,
    chainPrefix,
    pid: () => child?.pid ?? -1,
    exit: () => exit,
    logs: () => log,
    start,
    kill,
    killGroup,
    dispose: async () => {
      await kill('SIGTERM')
      await linuxDataplane({ chainPrefix }).removeFirewall()()
      if (ownState) await rm(stateDir, { recursive: true, force: true })
      await rm(socket, { force: true })
      await rm(cniSocket, { force: true })
    }
  }
}
