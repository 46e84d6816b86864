/**
 * A cluster of isthmus hosts on this machine for the multi-host tests: an underlay (a bridge in a
 * namespace of the test's own, testkit's makeUnderlay), etcd inside that namespace, and per host a
 * network namespace running its own `isthmus serve --cluster` (own state directory, sockets and
 * chains), started by PID. The CNI executable (the SEA) runs inside a host's namespace and hands
 * its calls to that host's daemon. Optionally the root namespace is a host too (the Docker tests:
 * dockerd talks to its daemon on /run/docker/plugins/<name>.sock).
 *
 * Everything is named with the run's prefix and removed by `cleanup`, also after a failure.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { linuxDataplane } from '@isthmus/dataplane-linux'
import { makeUnderlay, pluginCall, stopChild, waitUntil, type TestEtcd, type Underlay } from '@isthmus/testkit'

export const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../..')
const BIN = join(root, 'packages/cli/src/bin/isthmus.ts')
/** The installed form of the CNI plugin: one executable (scripts/build.mjs). */
export const SEA = join(root, 'packages/cni-plugin/dist/sea/isthmus')

/** Build the SEA once per test file (incremental: nothing when it is fresh). */
export const buildSea = (): void => {
  execFileSync(process.execPath, [join(root, 'packages/cni-plugin/scripts/build.mjs')], { stdio: 'ignore' })
}

// -------------------------------------------------------------------------------------
// running things
// -------------------------------------------------------------------------------------

/** `argv` inside namespace `ns` (the root namespace when undefined). */
export const inNs = (ns: string | undefined, argv: ReadonlyArray<string>): string[] =>
  ns === undefined ? [...argv] : ['ip', 'netns', 'exec', ns, ...argv]

export interface Ran {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

/** Run a command; never rejects for a non-zero exit. */
export const run = (
  argv: ReadonlyArray<string>,
  opts: { readonly input?: string; readonly env?: NodeJS.ProcessEnv; readonly timeoutMs?: number } = {}
): Promise<Ran> =>
  new Promise((done) => {
    const t0 = Date.now()
    const [cmd, ...args] = argv
    const child = execFile(
      cmd!,
      args,
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) =>
        done({
          code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1,
          stdout: String(stdout),
          stderr: String(stderr),
          ms: Date.now() - t0
        })
    )
    child.stdin?.on('error', () => undefined)
    child.stdin?.end(opts.input ?? '')
  })

export const sh = (argv: ReadonlyArray<string>): string =>
  execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })

const quiet = (argv: ReadonlyArray<string>): void => {
  try {
    execFileSync(argv[0]!, argv.slice(1), { stdio: 'ignore', timeout: 30_000 })
  } catch {
    // already gone
  }
}

// -------------------------------------------------------------------------------------
// CNI
// -------------------------------------------------------------------------------------

/** The outcome of one CNI call, its document parsed. */
export interface CniOutcome extends Ran {
  readonly doc: Record<string, unknown> | undefined
}

/** The first address a CNI ADD answered, without its prefix. */
export const addressOf = (o: CniOutcome): string | undefined =>
  (o.doc?.['ips'] as Array<{ address?: string }> | undefined)?.[0]?.address?.split('/')[0]

/** The CNI error code of an outcome (undefined when it succeeded). */
export const codeOf = (o: CniOutcome): number | undefined =>
  o.code === 0 ? undefined : typeof o.doc?.['code'] === 'number' ? o.doc['code'] : -1

// -------------------------------------------------------------------------------------
// hosts
// -------------------------------------------------------------------------------------

/** Where a test host lives and how it is reached. */
export interface HostFacts {
  /** Its name in the cluster. */
  readonly name: string
  /** Its network namespace; undefined for the root namespace. */
  readonly netns: string | undefined
  readonly underlayIp: string
  readonly stateDir: string
  /** The Docker plugin socket. */
  readonly socket: string
  readonly cniSocket: string
  readonly chainPrefix: string
  /** The Docker driver name (the socket's base name). */
  readonly plugin: string
}

export interface TestHost extends HostFacts {
  readonly pid: () => number | undefined
  readonly logs: () => string
  /** Start the daemon (again); resolves once it answers on its plugin socket. */
  readonly start: () => Promise<void>
  /** Signal the daemon and wait for it to exit. */
  readonly stop: (signal?: NodeJS.Signals) => Promise<void>
  readonly running: () => boolean
  /** A CNI call by the SEA inside this host's namespace, handed to this host's daemon. */
  readonly cni: (
    command: 'ADD' | 'DEL' | 'CHECK',
    containerId: string,
    sandbox: string,
    conf: Record<string, unknown>
  ) => Promise<CniOutcome>
  /** `isthmus <args>` run in this host's namespace, with this cluster's etcd flags appended. */
  readonly isthmus: (args: ReadonlyArray<string>) => Promise<Ran>
}

export interface ClusterOptions {
  /** How many host namespaces. */
  readonly hosts: number
  /** The root namespace as one more host (its daemon's plugin socket in /run/docker/plugins). */
  readonly rootHost?: boolean
  /** `--store` of the daemons. */
  readonly store?: 'file' | 'etcd'
  /** `--block-size`; default the daemon's. */
  readonly blockSize?: number
  /** `--lease-ttl`; default 5 s so a killed host expires within the test's patience. */
  readonly leaseTtl?: number
  /** `--etcd-deadline` in ms. */
  readonly etcdDeadline?: number
  /** More flags for every daemon. */
  readonly extraArgs?: ReadonlyArray<string>
  /** Per host namespace (in order): `cluster: false` runs a one-host daemon there (file store, no etcd). */
  readonly perHost?: ReadonlyArray<{ readonly cluster?: boolean; readonly store?: 'file' | 'etcd' }>
  /** Join the root namespace to the underlay without a daemon there (a bench that talks to etcd). */
  readonly joinRoot?: boolean
}

export interface TestCluster {
  readonly prefix: string
  /** The cluster's name (`--cluster`). */
  readonly name: string
  readonly etcd: TestEtcd
  /** The underlay (its namespace holds etcd; 10.<octet>.0.0/16 beyond its /24 is the tests'). */
  readonly underlay: Underlay
  readonly hosts: ReadonlyArray<TestHost>
  /** The root namespace host, when asked for. */
  readonly rootHost: TestHost | undefined
  /** A sandbox (a network namespace) for a CNI attachment; removed by cleanup. */
  readonly sandbox: (tag: string) => { readonly name: string; readonly path: string }
  /** The keys and values under `prefix` (relative to the cluster's root `/isthmus/<name>/`). */
  readonly etcdGet: (prefix: string) => Promise<ReadonlyArray<{ readonly key: string; readonly value: string }>>
  /** A CNI netconf on cluster network `network`, handed to `host`'s daemon. */
  readonly conf: (host: TestHost, network: string, over?: Record<string, unknown>) => Record<string, unknown>
  readonly cleanup: () => Promise<void>
}

/** Whether a named namespace pings `address` (one echo, 2 s). */
export const pings = async (ns: string, address: string, tries = 1): Promise<boolean> => {
  for (let i = 0; i < tries; i++) {
    const r = await run(inNs(ns, ['/bin/busybox', 'ping', '-c', '1', '-W', '2', address]), { timeoutMs: 10_000 })
    if (r.code === 0) return true
  }
  return false
}

/** Routes of a namespace (`ip -4 route show`), one line each. */
export const routesIn = (ns: string | undefined): string[] =>
  sh(inNs(ns, ['ip', '-4', 'route', 'show']))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')

/** Neighbour and FDB entries of VXLAN devices in a namespace, one line each. */
export const overlayEntriesIn = (ns: string | undefined): string[] => {
  const links = JSON.parse(sh(inNs(ns, ['ip', '-json', '-details', 'link', 'show', 'type', 'vxlan']))) as Array<{
    ifname: string
  }>
  return links.flatMap((l) => [
    ...sh(inNs(ns, ['ip', 'neigh', 'show', 'dev', l.ifname]))
      .split('\n')
      .filter((x) => x.trim() !== '')
      .map((x) => `neigh ${l.ifname} ${x.trim()}`),
    ...sh(inNs(ns, ['bridge', 'fdb', 'show', 'dev', l.ifname]))
      .split('\n')
      .filter((x) => x.includes('dst'))
      .map((x) => `fdb ${l.ifname} ${x.trim()}`)
  ])
}

/** Start etcd, the underlay and a daemon per host. */
export const startCluster = async (prefix: string, o: ClusterOptions): Promise<TestCluster> => {
  const name = `${prefix}-c`
  const dirs: string[] = []
  const sandboxes: string[] = []
  const hosts: TestHost[] = []
  const tmp = (tag: string): string => {
    const d = mkdtempSync(join(tmpdir(), `${prefix}-${tag}-`))
    dirs.push(d)
    return d
  }
  const underlay = await makeUnderlay(prefix, o.hosts, { joinRoot: o.rootHost === true || o.joinRoot === true })
  let etcd: TestEtcd | undefined
  const cleanup = async (): Promise<void> => {
    for (const h of hosts) await h.stop('SIGKILL').catch(() => undefined)
    for (const h of hosts) {
      // A daemon leaves its chains (as dockerd does): they go with the run, in its namespace.
      if (h.netns === undefined) await linuxDataplane({ chainPrefix: h.chainPrefix }).removeFirewall()()
      await rm(h.socket, { force: true })
    }
    const rootHost = hosts.find((h) => h.netns === undefined)
    if (rootHost !== undefined) removeRootDevices(rootHost.stateDir)
    for (const s of sandboxes) quiet(['ip', 'netns', 'del', s])
    await etcd?.stop().catch(() => undefined)
    await underlay.remove()
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  }
  try {
    etcd = await underlay.startEtcd()
    const hostArgs = (h: { name: string; underlayIp: string; index: number }): string[] => {
      const own = o.perHost?.[h.index - 1] ?? {}
      if (own.cluster === false) return []
      const store = own.store ?? o.store
      return [
        '--cluster',
        name,
        '--etcd-endpoints',
        etcd!.endpoint,
        '--host-name',
        h.name,
        '--underlay-ip',
        h.underlayIp,
        '--lease-ttl',
        String(o.leaseTtl ?? 5),
        ...(store === undefined ? [] : ['--store', store]),
        ...(o.blockSize === undefined ? [] : ['--block-size', String(o.blockSize)]),
        ...(o.etcdDeadline === undefined ? [] : ['--etcd-deadline', String(o.etcdDeadline)]),
        ...(o.extraArgs ?? [])
      ]
    }
    const places = [
      ...underlay.hosts.map((h) => ({
        name: `h${h.index}`,
        netns: h.netns,
        underlayIp: h.address,
        index: h.index
      })),
      ...(o.rootHost === true && underlay.root !== undefined
        ? [{ name: 'h0', netns: undefined, underlayIp: underlay.root.address, index: 0 }]
        : [])
    ]
    for (const p of places) {
      const dir = tmp(p.name)
      const plugin = `${prefix}-${p.name}`
      hosts.push(
        testHost({
          name: p.name,
          netns: p.netns,
          underlayIp: p.underlayIp,
          stateDir: join(dir, 'state'),
          socket: p.netns === undefined ? `/run/docker/plugins/${plugin}.sock` : join(dir, 'plugin.sock'),
          cniSocket: join(dir, 'cni.sock'),
          chainPrefix: `IM${prefix.replace(/[^a-zA-Z0-9]/g, '').slice(-6)}${p.name}`,
          plugin,
          args: hostArgs(p),
          etcdArgs: ['--cluster', name, '--etcd-endpoints', etcd.endpoint]
        })
      )
    }
    await Promise.all(hosts.map((h) => h.start()))
  } catch (e) {
    await cleanup()
    throw e
  }
  const up = etcd
  return {
    prefix,
    name,
    etcd: up,
    underlay,
    hosts: hosts.filter((h) => h.netns !== undefined),
    rootHost: hosts.find((h) => h.netns === undefined),
    sandbox: (tag) => {
      const n = `${prefix}-s${tag}`
      sh(['ip', 'netns', 'add', n])
      sandboxes.push(n)
      return { name: n, path: `/var/run/netns/${n}` }
    },
    etcdGet: async (p) => {
      const r = await run(
        inNs(underlay.netns, [
          'etcdctl',
          '--endpoints',
          up.endpoint,
          '-w',
          'json',
          'get',
          '--prefix',
          `/isthmus/${name}/${p}`
        ]),
        { env: { ...process.env, ETCDCTL_API: '3' } }
      )
      if (r.code !== 0) throw new Error(`etcdctl get: ${r.stderr}`)
      const doc = JSON.parse(r.stdout) as { kvs?: Array<{ key: string; value: string }> }
      return (doc.kvs ?? []).map((kv) => ({
        key: Buffer.from(kv.key, 'base64').toString('utf8'),
        value: Buffer.from(kv.value, 'base64').toString('utf8')
      }))
    },
    conf: (host, network, over = {}) => ({
      cniVersion: '1.0.0',
      name: network,
      type: 'isthmus',
      cluster: network,
      daemon: host.cniSocket,
      stateDir: host.stateDir,
      chainPrefix: host.chainPrefix,
      ...over
    }),
    cleanup
  }
}

/**
 * The root host's devices: its networks' bridges and VXLAN devices stay after its daemon stops (as
 * a host's networks do); those marked for a network of its state directory go with the run.
 */
const removeRootDevices = (stateDir: string): void => {
  const dir = join(stateDir, 'v1', 'networks')
  const ids = new Set(
    existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => f.endsWith('.json'))
          .flatMap((f) => {
            try {
              const doc = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { data?: { id?: string } }
              return doc.data?.id === undefined ? [] : [doc.data.id]
            } catch {
              return []
            }
          })
      : []
  )
  const links = JSON.parse(sh(['ip', '-json', 'link', 'show'])) as Array<{ ifname: string; ifalias?: string }>
  for (const l of links) {
    const m = /^isthmus:(?:net|overlay):(.+)$/.exec(l.ifalias ?? '')
    if (m !== null && ids.has(m[1]!)) quiet(['ip', 'link', 'del', 'dev', l.ifname])
  }
}

interface HostPlan extends HostFacts {
  readonly args: ReadonlyArray<string>
  readonly etcdArgs: ReadonlyArray<string>
}

const testHost = (p: HostPlan): TestHost => {
  let child: ChildProcess | undefined
  let log = ''
  const argv = (): string[] =>
    inNs(p.netns, [
      process.execPath,
      '--import',
      'tsx',
      '--conditions=@isthmus/source',
      BIN,
      'serve',
      '--socket',
      p.socket,
      '--cni-socket',
      p.cniSocket,
      '--state-dir',
      p.stateDir,
      '--chain-prefix',
      p.chainPrefix,
      '--log-level',
      'debug',
      ...p.args
    ])
  const running = (): boolean => child?.exitCode === null && child.signalCode === null
  const self: TestHost = {
    ...p,
    pid: () => child?.pid,
    logs: () => log,
    running,
    start: async () => {
      const [cmd, ...args] = argv()
      const c = spawn(cmd!, args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] })
      child = c
      c.stderr.setEncoding('utf8')
      c.stderr.on('data', (d: string) => (log = (log + d).slice(-2_000_000)))
      await waitUntil(
        `host ${p.name}'s daemon to answer on ${p.socket}`,
        async () => {
          if (c.exitCode !== null) {
            throw new Error(`isthmus serve of ${p.name} exited ${c.exitCode}: ${log.slice(-3000)}`)
          }
          return pluginCall(p.socket, '/Plugin.Activate').then(
            (r) => r.status === 200,
            () => false
          )
        },
        60_000,
        100
      )
    },
    stop: async (signal = 'SIGTERM') => {
      if (child !== undefined) await stopChild(child, signal, 15_000)
    },
    cni: async (command, containerId, sandbox, conf) => {
      const env = {
        PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
        CNI_COMMAND: command,
        CNI_CONTAINERID: containerId,
        CNI_NETNS: sandbox,
        CNI_IFNAME: 'eth0',
        CNI_PATH: '/usr/lib/cni'
      }
      const r = await run(inNs(p.netns, [SEA]), { input: JSON.stringify(conf), env, timeoutMs: 120_000 })
      let doc: Record<string, unknown> | undefined
      try {
        doc = JSON.parse(r.stdout) as Record<string, unknown>
      } catch {
        doc = undefined
      }
      return { ...r, doc }
    },
    isthmus: (args) =>
      run(
        inNs(p.netns, [
          process.execPath,
          '--import',
          'tsx',
          '--conditions=@isthmus/source',
          BIN,
          ...args,
          ...p.etcdArgs
        ]),
        {
          timeoutMs: 60_000
        }
      )
  }
  return self
}
