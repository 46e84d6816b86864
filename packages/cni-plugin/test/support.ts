/**
 * Test support: runtimes (fake ports over core's in-memory store and fake dataplane; or the real
 * Linux ports), running the envelope in process or a plugin binary as a process, the objects
 * a test file creates on the host (namespaces, bridges, iptables chains, state directories) under
 * names of its own run, removed in `after` also on failure, and a bin directory with the native
 * client served by a running `isthmus serve`.
 *
 * Traffic stays inside the namespaces and bridges made here: 10.231.0.0/16 and fd00:231::/48.
 */
import { strict as assert } from 'node:assert'
import { execFile, execFileSync, spawn } from 'node:child_process'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import {
  builtinControlPlane,
  deleteNetwork,
  makeIpam,
  noopAgent,
  silentLogger,
  systemClock,
  type Dataplane,
  type Env,
  type IfName,
  type SandboxKey,
  type Store
} from '@isthmus/core'
import {
  fakeDataplane,
  fixedClock,
  memoryStore,
  recordingLogger,
  type FakeDataplane,
  type RecordingLogger
} from '@isthmus/core/testing'
import { linuxDataplane } from '@isthmus/dataplane-linux'
import { fileStore } from '@isthmus/store-fs'
import { startPlugin, waitUntil, type PluginProcess } from '@isthmus/testkit'
import { linuxRuntime } from '@isthmus/wiring'
import { runSkel, type Delegate, type LinkState, type PluginRun, type Runtime } from '@isthmus/cni-exec'
import type { RawEnv } from '@isthmus/cni-exec/protocol'

export const hex = (n: number): string => randomBytes(n).toString('hex')

/** Fail (never skip) when the tests cannot touch the kernel. */
export const requireRoot = (): void => {
  assert.equal(
    process.getuid?.(),
    0,
    'the cni-exec kernel tests create namespaces, bridges and iptables chains: run them as root (CI does)'
  )
}

// -------------------------------------------------------------------------------------
// runtimes
// -------------------------------------------------------------------------------------

export interface FakeRuntime {
  readonly runtime: Runtime
  readonly store: Store
  readonly dataplane: FakeDataplane
  readonly log: RecordingLogger
  /** Plugins the fake delegate can run, by name. */
  readonly plugins: Map<string, (env: RawEnv, stdin: string) => PluginRun>
  /** Every delegate call, in order. */
  readonly calls: Array<{ plugin: string; command: string | undefined; stdin: string }>
  /** Make `open` fail (STATUS 50, I/O errors). */
  failOpen: boolean
}

/**
 * Ports over core's memory store (one per FakeRuntime: state outlives a call, as the state
 * directory does), the real built-in IPAM (a fresh engine per call, as each plugin process has)
 * and the fake dataplane.
 */
export const fakeRuntime = (): FakeRuntime => {
  const store = memoryStore()
  const dataplane = fakeDataplane()
  const log = recordingLogger()
  const clock = fixedClock().port
  const plugins = new Map<string, (env: RawEnv, stdin: string) => PluginRun>()
  const calls: FakeRuntime['calls'] = []
  const linkState = (l: {
    name: string
    mac: string
    addresses: ReadonlyArray<string>
    device?: string
  }): LinkState => ({
    name: l.name,
    mac: l.mac,
    up: true,
    addresses: l.addresses,
    ...(l.device === undefined ? {} : { master: l.device })
  })
  const self: FakeRuntime = {
    store,
    dataplane,
    log,
    plugins,
    calls,
    failOpen: false,
    runtime: {
      open: () =>
        self.failOpen
          ? TE.left({ _tag: 'Io', op: 'open state directory', cause: 'EACCES' })
          : TE.right({
              env: {
                store,
                dataplane: dataplane.port,
                controlPlane: builtinControlPlane(makeIpam({ store, clock }), store),
                agent: noopAgent,
                log: log.port,
                clock
              },
              close: async () => undefined
            }),
      controller: () => TE.left({ _tag: 'InvalidConfig', detail: 'the fake runtime has no controller' }),
      logger: () => ({ logger: log.port, close: async () => undefined }),
      delegate: {
        exec: async (plugin, _path, env, stdin) => {
          calls.push({ plugin, command: env['CNI_COMMAND'], stdin })
          const p = plugins.get(plugin)
          return p === undefined ? undefined : p(env, stdin)
        }
      } satisfies Delegate,
      probe: {
        hostLink: (name) => {
          const l = dataplane.state.link(name as IfName)
          if (l !== undefined) return TE.right(l.location._tag === 'Host' ? linkState({ ...l, name }) : undefined)
          const dev = dataplane.state.devices().find((d) => d.name === name)
          return TE.right(dev === undefined ? undefined : { name, mac: '02:00:00:00:00:01', up: true, addresses: [] })
        },
        hostMac(name) {
          return pipe(
            this.hostLink(name),
            TE.map((l) => l?.mac)
          )
        },
        sandboxLink: (netns: SandboxKey, name: IfName) => {
          const l = dataplane.state.linkIn(netns, name)
          return TE.right(l === undefined ? undefined : linkState({ ...l, name }))
        },
        bridgePorts: (bridge) =>
          TE.right(
            dataplane.state
              .links()
              .filter((l) => l.side === 'host' && l.device === bridge)
              .map((l) => l.name)
          )
      },
      clock,
      selfNames: ['isthmus']
    }
  }
  return self
}

/** The same fake runtime with another dataplane (one that refuses, say). */
export const withDataplane = (f: FakeRuntime, dataplane: Dataplane): Runtime => ({
  ...f.runtime,
  open: (settings, log) =>
    pipe(
      f.runtime.open(settings, log),
      TE.map((s) => ({ ...s, env: { ...s.env, dataplane } }))
    )
})

/** The real ports, as the bin wires them. */
export const realRuntime = (): Runtime => linuxRuntime({ env: process.env, selfNames: ['isthmus'] })

// -------------------------------------------------------------------------------------
// invoking
// -------------------------------------------------------------------------------------

export interface Outcome {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
  /** stdout parsed, when it is JSON. */
  readonly doc: Record<string, unknown> | undefined
}

const parse = (s: string): Record<string, unknown> | undefined => {
  try {
    return JSON.parse(s) as Record<string, unknown>
  } catch {
    return undefined
  }
}

/** Run the envelope in process. */
export const invoke = async (runtime: Runtime, env: RawEnv, conf: unknown): Promise<Outcome> => {
  const out = await runSkel(runtime)(env, typeof conf === 'string' ? conf : JSON.stringify(conf))
  return { ...out, doc: parse(out.stdout) }
}

/** Run a plugin executable as a process (the reference plugins, our bundle or SEA). */
export const execPlugin = (file: string, env: RawEnv, conf: unknown, timeoutMs = 60_000): Promise<Outcome> =>
  new Promise((resolve) => {
    const clean: Record<string, string> = {}
    for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v
    const child = execFile(
      file,
      [],
      { env: clean, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const exitCode = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
        resolve({ exitCode, stdout: String(stdout), stderr: String(stderr), doc: parse(String(stdout)) })
      }
    )
    // A plugin may answer without reading all of stdin (VERSION, a bad environment).
    child.stdin?.on('error', () => undefined)
    child.stdin?.end(typeof conf === 'string' ? conf : JSON.stringify(conf))
  })

/** The CNI environment of one call. */
export const cniEnv = (
  command: string,
  p: { cid?: string; netns?: string; ifName?: string; args?: string; path?: string } = {}
): RawEnv => ({
  PATH: process.env['PATH'],
  CNI_COMMAND: command,
  CNI_CONTAINERID: p.cid ?? '',
  CNI_NETNS: p.netns ?? '',
  CNI_IFNAME: p.ifName ?? '',
  CNI_ARGS: p.args ?? '',
  CNI_PATH: p.path ?? '/usr/lib/cni'
})

// -------------------------------------------------------------------------------------
// the host
// -------------------------------------------------------------------------------------

export const sh = (file: string, args: ReadonlyArray<string>, input?: string): string =>
  execFileSync(file, [...args], {
    encoding: 'utf8',
    input: input ?? '',
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: 30_000
  })

export const shQuiet = (file: string, args: ReadonlyArray<string>): void => {
  try {
    execFileSync(file, [...args], { stdio: 'ignore', timeout: 30_000 })
  } catch {
    // already gone
  }
}

/** Whether `ip netns exec <ns> busybox ping` reaches `address` (one echo, 2 s). */
export const pings = (ns: string, address: string): boolean => {
  try {
    execFileSync('ip', ['netns', 'exec', ns, '/bin/busybox', 'ping', '-c', '1', '-W', '2', address], {
      stdio: 'ignore',
      timeout: 10_000
    })
    return true
  } catch {
    return false
  }
}

export interface IpLinkJson {
  ifname: string
  address?: string
  flags: string[]
  mtu: number
  master?: string
  operstate?: string
  addr_info?: Array<{ family: string; local: string; prefixlen: number; scope?: string }>
}

/** `ip -json addr show` of one link, in the host or a named namespace. */
export const link = (name: string, ns?: string): IpLinkJson | undefined => {
  try {
    const out = sh('ip', [...(ns === undefined ? [] : ['-n', ns]), '-json', 'addr', 'show', 'dev', name])
    return (JSON.parse(out) as IpLinkJson[])[0]
  } catch {
    return undefined
  }
}

/** Global addresses of a link as `a/p`. */
export const addresses = (name: string, ns?: string): string[] =>
  (link(name, ns)?.addr_info ?? []).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`)

export const linkNames = (ns?: string): string[] =>
  (JSON.parse(sh('ip', [...(ns === undefined ? [] : ['-n', ns]), '-json', 'link', 'show'])) as IpLinkJson[]).map(
    (l) => l.ifname
  )

/** Routes of a namespace, one line each (`ip route show`), kernel routes included. */
export const routes = (ns: string, family: 4 | 6 = 4): string[] =>
  sh('ip', ['-n', ns, `-${family}`, 'route', 'show'])
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')

/** Everything one test file creates, and its removal. */
export class Scope {
  readonly id = hex(3)
  /** iptables chain prefix of this run (dataplane-linux: letters, digits, _; at most 16). */
  readonly chainPrefix = `ICT${this.id}`
  private readonly netns: string[] = []
  private readonly links: string[] = []
  private readonly dirs: string[] = []
  private readonly finalizers: Array<() => Promise<void> | void> = []

  bridge(tag: string): string {
    const name = `icb${this.id}${tag}`.slice(0, 15)
    this.links.push(name)
    return name
  }

  addNetns(tag: string): { readonly name: string; readonly path: string } {
    const name = `isthmus-cni-${this.id}-${tag}`
    this.netns.push(name)
    sh('ip', ['netns', 'add', name])
    return { name, path: `/var/run/netns/${name}` }
  }

  /** Forget a namespace the test deleted itself. */
  dropNetns(name: string): void {
    shQuiet('ip', ['netns', 'del', name])
  }

  tmpDir(tag: string): string {
    const d = mkdtempSync(join(tmpdir(), `isthmus-cni-${this.id}-${tag}-`))
    this.dirs.push(d)
    return d
  }

  finally(f: () => Promise<void> | void): void {
    this.finalizers.push(f)
  }

  async cleanup(): Promise<void> {
    for (const f of [...this.finalizers].reverse()) {
      try {
        await f()
      } catch {
        // keep cleaning
      }
    }
    for (const n of this.netns) shQuiet('ip', ['netns', 'del', n])
    for (const l of this.links) shQuiet('ip', ['link', 'del', 'dev', l])
    // The firewall chains isthmus made under this run's prefix (both families).
    await linuxDataplane({ chainPrefix: this.chainPrefix }).removeFirewall()()
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true })
  }
}

/** Lines of iptables-save (both families) that mention `needle`. */
export const firewallLines = (needle: string): string[] =>
  ['iptables-save', 'ip6tables-save'].flatMap((cmd) =>
    sh(cmd, [])
      .split('\n')
      .filter((l) => l.includes(needle))
  )

export { E }

// -------------------------------------------------------------------------------------
// TCP inside namespaces
// -------------------------------------------------------------------------------------

/**
 * A TCP server inside namespace `ns` on `port` that answers `reply` and closes; stopped by PID
 * when the scope is cleaned up. Resolves once it listens.
 */
export const serveIn = (scope: Scope, ns: string, port: number, reply: string): Promise<void> =>
  new Promise((resolve, reject) => {
    const code = `require('net').createServer((s)=>s.end(${JSON.stringify(reply)})).listen(${port},()=>console.log('ready'))`
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', code], {
      stdio: ['ignore', 'pipe', 'pipe']
    })
    scope.finally(() => {
      if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
    })
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve()
    })
    child.on('exit', (c) => reject(new Error(`server in ${ns} exited with ${String(c)}`)))
  })

/** Connect to host:port from the host namespace and read until close (or an error text). */
export const fetchTcp = (host: string, port: number, timeoutMs = 3000): Promise<string> =>
  new Promise((resolve) => {
    const s = connect({ host, port })
    let data = ''
    const timer = setTimeout(() => {
      s.destroy()
      resolve(`ERR timeout ${data}`)
    }, timeoutMs)
    s.on('data', (d) => (data += d.toString()))
    s.on('end', () => {
      clearTimeout(timer)
      resolve(data)
    })
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      resolve(`ERR ${e.code ?? e.message}`)
    })
  })

// -------------------------------------------------------------------------------------
// error hygiene
// -------------------------------------------------------------------------------------

/** Whether `s` shows a JavaScript stack trace (raw or JSON-escaped lines `at f (file:1:2)`, node internals). */
export const hasStackTrace = (s: string): boolean =>
  /(\n|\\n)\s+at \S/.test(s) || /node:internal|\.(c?js|ts):\d+:\d+/.test(s)

/** stdout as the CNI error document `{cniVersion, code, msg[, details]}`, or an assertion failure. */
export const errorDoc = (o: Outcome): { cniVersion: string; code: number; msg: string; details?: string } => {
  assert.ok(o.doc !== undefined, `stdout is one JSON document: ${JSON.stringify(o.stdout.slice(0, 500))}`)
  const d = o.doc
  assert.deepEqual(
    Object.keys(d).filter((k) => !['cniVersion', 'code', 'msg', 'details'].includes(k)),
    [],
    `only the error document's keys: ${o.stdout.slice(0, 500)}`
  )
  assert.equal(typeof d['cniVersion'], 'string')
  assert.equal(typeof d['code'], 'number')
  assert.equal(typeof d['msg'], 'string')
  assert.ok(d['details'] === undefined || typeof d['details'] === 'string')
  assert.equal(o.exitCode, 1, 'an error exits 1')
  assert.ok(!hasStackTrace(o.stdout), `no stack trace on stdout: ${o.stdout.slice(0, 500)}`)
  return d as { cniVersion: string; code: number; msg: string; details?: string }
}

// -------------------------------------------------------------------------------------
// hand-off sockets
// -------------------------------------------------------------------------------------

/**
 * A socket at `path` that takes connections, reads each request whole and does `behave` with it
 * (a broken, refusing or recording daemon); closed when the scope is cleaned up.
 */
export const fakeDaemon = async (
  scope: Scope,
  path: string,
  behave: (c: Socket, request: string) => void
): Promise<{ server: Server; accepted: () => number }> => {
  let n = 0
  const server = createServer({ allowHalfOpen: true }, (c) => {
    n++
    let text = ''
    c.on('error', () => undefined)
    c.on('data', (d: Buffer) => (text += d.toString('utf8')))
    c.on('end', () => behave(c, text))
  })
  await new Promise<void>((r) => server.listen(path, () => r()))
  scope.finally(() => new Promise<void>((r) => server.close(() => r())))
  return { server, accepted: () => n }
}

/**
 * One raw connection to a hand-off socket: sends `request` (and half-closes unless `end` is
 * false), resolves with what came back and when the daemon closed, in ms after connecting.
 */
export const rawHandoff = (
  socket: string,
  request: string,
  end = true
): Promise<{ readonly text: string; readonly closedAfterMs: number }> =>
  new Promise((resolve) => {
    const started = Date.now()
    let text = ''
    const c = connect(socket)
    c.on('error', () => undefined)
    c.on('connect', () => (end ? c.end(request) : c.write(request)))
    c.on('data', (d: Buffer) => (text += d.toString('utf8')))
    c.on('close', () => resolve({ text, closedAfterMs: Date.now() - started }))
  })

// -------------------------------------------------------------------------------------
// the native client and a running daemon
// -------------------------------------------------------------------------------------

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..')
/** The native client as `pnpm build` makes it (packages/cni-native/scripts/build.mjs). */
export const NATIVE_CLIENT = join(repoRoot, 'packages/cni-native/dist/isthmus')
/** The Node plugin, the client's opt-in fallback. */
export const NODE_PLUGIN = join(repoRoot, 'packages/cni-plugin/dist/sea/isthmus')

/** Build the native client and the Node plugin (each a no-op when up to date). */
export const buildExecutables = (): void => {
  for (const script of ['packages/cni-plugin/scripts/build.mjs', 'packages/cni-native/scripts/build.mjs']) {
    execFileSync(process.execPath, [join(repoRoot, script)], { stdio: 'pipe' })
  }
}

/**
 * Lay out `binDir` as `isthmus cni install` does: the native client as `isthmus`, and with
 * `fallback` the Node plugin beside it as `isthmus-node`. Without it there is no fallback, so a
 * call no daemon takes fails with code 11 instead of running quietly in a Node process.
 */
export const installClient = (binDir: string, options: { readonly fallback?: boolean } = {}): string => {
  mkdirSync(binDir, { recursive: true })
  const client = join(binDir, 'isthmus')
  copyFileSync(NATIVE_CLIENT, client)
  chmodSync(client, 0o755)
  if (options.fallback === true) {
    copyFileSync(NODE_PLUGIN, join(binDir, 'isthmus-node'))
    chmodSync(join(binDir, 'isthmus-node'), 0o755)
  }
  return client
}

/** One `cni` line of the daemon's log: a call it ran. */
export interface DaemonCall {
  readonly command: string
  readonly containerId: string
  readonly ifName: string
  readonly exitCode: number
  readonly durationMs: number
}

/** A running `isthmus serve` the calls are handed to. */
export interface ServedDaemon {
  readonly plugin: PluginProcess
  /** The netconf keys that send a call to this daemon, on its own store and chains (its session). */
  readonly netconf: { readonly daemon: string; readonly stateDir: string; readonly chainPrefix: string }
  /** The calls its log shows so far, in order. */
  readonly calls: () => DaemonCall[]
  /**
   * The calls once `enough` holds of them (bounded wait). Its log is this process's pipe, read
   * only when the event loop turns: after a synchronous exec (podman, minicni) it is behind.
   */
  readonly callsOnce: (what: string, enough: (calls: DaemonCall[]) => boolean) => Promise<DaemonCall[]>
}

/**
 * Start `isthmus serve` for this scope (own state directory, CNI socket and chain prefix). At
 * cleanup the networks CNI made in its store are deleted through the core (CNI never deletes a
 * network: this removes their bridges' addresses and rules) and the daemon is stopped, its
 * chains and state directory removed.
 */
export const serveDaemon = async (scope: Scope, tag: string): Promise<ServedDaemon> => {
  const plugin = await startPlugin(`isthmus-cni-${scope.id}-${tag}`)
  scope.finally(async () => {
    try {
      const store = await fileStore({ stateDir: plugin.stateDir })()
      if (E.isRight(store)) {
        const env: Env = {
          store: store.right,
          dataplane: linuxDataplane({ chainPrefix: plugin.chainPrefix }),
          controlPlane: builtinControlPlane(makeIpam({ store: store.right, clock: systemClock }), store.right),
          agent: noopAgent,
          log: silentLogger,
          clock: systemClock
        }
        const networks = await store.right.networks.list()()
        // A network that still has endpoints (a failed test) is refused; scope.cleanup takes its bridge.
        for (const n of E.isRight(networks) ? networks.right : []) await deleteNetwork(n.id)(env)()
        await store.right.close()
      }
    } finally {
      await plugin.dispose()
    }
  })
  const calls = (): DaemonCall[] =>
    plugin
      .logs()
      .split('\n')
      .filter((l) => l.includes('"message":"cni"'))
      .map((l) => JSON.parse(l) as DaemonCall)
  return {
    plugin,
    netconf: { daemon: plugin.cniSocket, stateDir: plugin.stateDir, chainPrefix: plugin.chainPrefix },
    calls,
    callsOnce: async (what, enough) => {
      try {
        await waitUntil(`the daemon's log to show ${what}`, () => Promise.resolve(enough(calls())), 10_000, 20)
      } catch (e) {
        throw new Error(`${(e as Error).message}; its cni lines: ${JSON.stringify(calls())}`, { cause: e })
      }
      return calls()
    }
  }
}
