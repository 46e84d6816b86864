/**
 * Bench: isthmus's Linux dataplane against the reference CNI bridge plugin, in one run.
 *
 * Each round runs four cases in a shuffled order (isthmus and reference, without and with
 * masquerade), each into a fresh network namespace (made and removed untimed), one ADD and one DEL
 * of each in a row:
 *  - isthmus ADD: `ensureEndpoint(spec, placement)` + `place(PluginMoves)` (veth made with its
 *    sandbox end inside the netns, renamed eth0, addressed, up, default route), in process;
 *    `ensureNetwork` on the existing network is timed on its own, and the sum of the three is what
 *    a CNI ADD through isthmus costs in dataplane work. "moved": ensureEndpoint without the
 *    placement, so place moves the link between namespaces (the kernel's RCU wait, ~20 ms).
 *  - isthmus DEL: `deleteEndpoint`.
 *  - "kept": the same through the dataplane a daemon's CNI session uses: host `ip -batch` work fed
 *    to a kept `ip` process, every other command (the sandbox's `ip -n … -batch -`, iptables)
 *    started by the kept spawner (spawner/, Go) instead of a Node child process each.
 *  - reference ADD/DEL: `/usr/lib/cni/bridge` with host-local IPAM, whole process (spawnSync).
 * For the isthmus cases, per ADD also: the event loop's busy time (`performance.eventLoopUtilization`,
 * active ms: what other calls of a daemon wait for) and the time spent inside Node's process-start
 * calls (`child_process.spawn`/`execFile`, wrapped: a fork of this process, which blocks the loop).
 * Then 100 placements at once (ensureEndpoint + place into 100 sandboxes), wall time, each way.
 * Medians over RUNS rounds (default 30) after 2 warm-up rounds. Root only; everything lives in
 * 10.240.50.0/22, bridges `itb<hex>*`, netns `isthmus-bench-<hex>-*`, chains `IBN<hex>-*`, and is
 * removed at the end (also on failure).
 *
 * Usage: pnpm bench:dataplane   (RUNS=30, PARALLEL=100)
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, rmSync } from 'node:fs'
import { createRequire, syncBuiltinESMExports } from 'node:module'
import { loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import * as E from 'fp-ts/lib/Either.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import {
  describe as describeError,
  Endpoint,
  hostIfName,
  Network,
  peerIfName,
  type CoreError,
  type EndpointId,
  type IfName,
  type SandboxKey
} from '@isthmus/core'
import { linuxDataplane, type LinuxDataplane } from '@isthmus/dataplane-linux'

const RUNS = Number(process.env['RUNS'] ?? 30)
const PARALLEL = Number(process.env['PARALLEL'] ?? 100)
const WARMUP = 2
const CNI = process.env['CNI_PATH_DIR'] ?? '/usr/lib/cni'
const id = randomBytes(3).toString('hex')
const dataDir = `/tmp/isthmus-bench-${id}`

if (process.getuid?.() !== 0) {
  console.error('bench:dataplane needs root (it creates bridges, namespaces and iptables rules)')
  process.exit(1)
}

// The spawner binary, built if older than its sources (the root build does it too).
execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/build-spawner.mjs', import.meta.url))], {
  stdio: 'ignore'
})

const dp = linuxDataplane({ chainPrefix: `IBN${id}` })
// As a daemon's CNI session builds it (wiring's linuxRuntime), but for deferLinkRemoval: here
// DEL is timed to the kernel's removal, as it is for the other cases.
const kept = linuxDataplane({ chainPrefix: `IBN${id}`, keepIpProcesses: true, spawner: true })

// Time spent inside Node's process-start calls, summed (ESM imports see these wrappers).
const starts = { ms: 0, count: 0 }
{
  const cp = createRequire(import.meta.url)('node:child_process') as Record<string, unknown>
  for (const name of ['spawn', 'execFile']) {
    const f = cp[name] as (...a: unknown[]) => unknown
    cp[name] = (...args: unknown[]) => {
      const t0 = process.hrtime.bigint()
      try {
        return f(...args)
      } finally {
        starts.ms += Number(process.hrtime.bigint() - t0) / 1e6
        starts.count += 1
      }
    }
  }
  syncBuiltinESMExports()
}

const decode = <A>(r: E.Either<unknown, A>): A => {
  if (E.isLeft(r)) throw new Error('bad bench fixture')
  return r.right
}
const mustOk = async <A>(te: TE.TaskEither<CoreError, A>): Promise<A> => {
  const r = await te()
  if (E.isLeft(r)) throw new Error(describeError(r.left))
  return r.right
}

const isthmusNet = (masq: boolean, octet: number) =>
  decode(
    Network.decode({
      id: `bench-${masq ? 'masq' : 'nomasq'}-${id}`,
      name: 'bench',
      addressSpace: 'isthmus-local',
      ipv4: [{ subnet: `10.240.${octet}.0/24`, gateway: `10.240.${octet}.1` }],
      ipv6: [],
      internal: false,
      ipMasquerade: masq,
      options: {},
      createdAt: new Date(0).toISOString(),
      bridge: `itb${id}i${masq ? 1 : 0}`
    })
  )

const isthmusEndpoint = (net: Network, octet: number, i: number) => {
  const eid = `bench-${net.ipMasquerade ? 'm' : 'n'}-${i}` as EndpointId
  return decode(
    Endpoint.decode({
      id: eid,
      networkId: net.id,
      // A CNI attachment's, as a CNI ADD records it (no neighbour entries to flush at DEL).
      owner: { kind: 'container', containerId: eid, ifName: 'eth0' },
      addresses: [{ cidr: `10.240.${octet}.${2 + (i % 200)}/24` }],
      hostIfName: hostIfName(eid),
      peerIfName: peerIfName(eid),
      routes: [],
      portMappings: [],
      createdAt: new Date(0).toISOString()
    })
  )
}

const refConf = (masq: boolean, octet: number) =>
  JSON.stringify({
    cniVersion: '1.0.0',
    name: `isthmus-bench-ref-${masq ? 'masq' : 'nomasq'}-${id}`,
    type: 'bridge',
    bridge: `itb${id}r${masq ? 1 : 0}`,
    isGateway: true,
    ipMasq: masq,
    ipam: { type: 'host-local', ranges: [[{ subnet: `10.240.${octet}.0/24` }]], dataDir }
  })

const refCall = (command: 'ADD' | 'DEL', conf: string, container: string, ns: string): number => {
  const t0 = process.hrtime.bigint()
  const r = spawnSync(`${CNI}/bridge`, [], {
    input: conf,
    encoding: 'utf8',
    env: {
      PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: container,
      CNI_NETNS: `/var/run/netns/${ns}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: CNI
    }
  })
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  if (r.status !== 0) throw new Error(`reference ${command} failed: ${r.stdout} ${r.stderr}`)
  return ms
}

const time = async <A>(te: TE.TaskEither<CoreError, A>): Promise<number> => {
  const t0 = process.hrtime.bigint()
  await mustOk(te)
  return Number(process.hrtime.bigint() - t0) / 1e6
}

const sh = (file: string, args: string[]): void => {
  execFileSync(file, args, { stdio: 'ignore' })
}
const quiet = (file: string, args: string[]): void => {
  try {
    sh(file, args)
  } catch {
    // already gone
  }
}

const samples = new Map<string, number[]>()
const record = (k: string, ms: number): void => {
  const xs = samples.get(k) ?? []
  xs.push(ms)
  samples.set(k, xs)
}

const nets = { nomasq: isthmusNet(false, 50), masq: isthmusNet(true, 51) }
const refs = { nomasq: refConf(false, 52), masq: refConf(true, 53) }
const netns = (i: number, c: string): string => `isthmus-bench-${id}-${c}-${i}`

type Case =
  | 'isthmus nomasq'
  | 'isthmus masq'
  | 'isthmus nomasq moved'
  | 'isthmus nomasq kept'
  | 'isthmus masq kept'
  | 'reference nomasq'
  | 'reference masq'

const runCase = async (c: Case, i: number, keep: boolean): Promise<void> => {
  const masq = c.includes(' masq')
  const ns = netns(i, c.replaceAll(' ', '-'))
  sh('ip', ['netns', 'add', ns])
  try {
    if (c.startsWith('isthmus')) {
      const net = masq ? nets.masq : nets.nomasq
      const spec = { endpoint: isthmusEndpoint(net, masq ? 51 : 50, i), network: net }
      const placement = {
        _tag: 'PluginMoves',
        sandbox: `/var/run/netns/${ns}` as SandboxKey,
        ifName: 'eth0' as IfName
      } as const
      const d = c.endsWith('kept') ? kept : dp
      const tNet = await time(d.ensureNetwork(net))
      const elu0 = performance.eventLoopUtilization()
      const starts0 = { ...starts }
      const t0 = process.hrtime.bigint()
      await mustOk(d.ensureEndpoint(spec, c.includes('moved') ? undefined : placement))
      await mustOk(d.place(spec, placement))
      const tAdd = Number(process.hrtime.bigint() - t0) / 1e6
      const busy = performance.eventLoopUtilization(elu0).active
      const startMs = starts.ms - starts0.ms
      const count = starts.count - starts0.count
      const tDel = await time(d.deleteEndpoint(spec))
      if (keep) {
        record(`${c}: ADD (ensureEndpoint + place)`, tAdd)
        record(`${c}: ensureNetwork, existing`, tNet)
        record(`${c}: ADD incl. ensureNetwork`, tAdd + tNet)
        record(`${c}: DEL (deleteEndpoint)`, tDel)
        record(`${c}: ADD, event loop busy`, busy)
        record(`${c}: ADD, in Node process starts (${count} starts)`, startMs)
      }
    } else {
      const conf = masq ? refs.masq : refs.nomasq
      const tAdd = refCall('ADD', conf, `bench-${i}`, ns)
      const tDel = refCall('DEL', conf, `bench-${i}`, ns)
      if (keep) {
        record(`${c}: ADD (bridge plugin)`, tAdd)
        record(`${c}: DEL (bridge plugin)`, tDel)
      }
    }
  } finally {
    quiet('ip', ['netns', 'del', ns])
  }
}

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2
}
const quantile = (xs: ReadonlyArray<number>, q: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((s.length - 1) * q))] ?? NaN
}

// PARALLEL placements at once into sandboxes made beforehand (untimed), then their deletion.
const parallel = async (how: string, d: LinuxDataplane, base: number): Promise<void> => {
  const net = nets.nomasq
  const all = Array.from({ length: PARALLEL }, (_, k) => {
    // A name fit for an `ip -batch` line, so the pair is made inside it (not moved there).
    const ns = netns(base + k, 'par')
    sh('ip', ['netns', 'add', ns])
    const placement = {
      _tag: 'PluginMoves',
      sandbox: `/var/run/netns/${ns}` as SandboxKey,
      ifName: 'eth0' as IfName
    } as const
    return { ns, spec: { endpoint: isthmusEndpoint(net, 50, base + k), network: net }, placement } as const
  })
  try {
    await mustOk(d.ensureNetwork(net))
    const elu0 = performance.eventLoopUtilization()
    const starts0 = { ...starts }
    const t0 = process.hrtime.bigint()
    await Promise.all(
      all.map(async ({ spec, placement }) => {
        await mustOk(d.ensureEndpoint(spec, placement))
        await mustOk(d.place(spec, placement))
      })
    )
    const wall = Number(process.hrtime.bigint() - t0) / 1e6
    const busy = performance.eventLoopUtilization(elu0).active
    const startMs = starts.ms - starts0.ms
    const count = starts.count - starts0.count
    const tDel = process.hrtime.bigint()
    await Promise.all(all.map(({ spec }) => mustOk(d.deleteEndpoint(spec))))
    const del = Number(process.hrtime.bigint() - tDel) / 1e6
    parallelRows.push(
      `| ${how} | ${PARALLEL} | **${wall.toFixed(0)}** | ${busy.toFixed(0)} | ${startMs.toFixed(0)} (${count} starts) | ${del.toFixed(0)} |`
    )
  } finally {
    for (const { ns } of all) quiet('ip', ['netns', 'del', ns])
  }
}
const parallelRows: string[] = []

const main = async (): Promise<void> => {
  mkdirSync(dataDir, { recursive: true })
  await mustOk(dp.ensureNetwork(nets.nomasq))
  await mustOk(dp.ensureNetwork(nets.masq))
  const cases: Case[] = [
    'isthmus nomasq',
    'isthmus masq',
    'isthmus nomasq moved',
    'isthmus nomasq kept',
    'isthmus masq kept',
    'reference nomasq',
    'reference masq'
  ]
  for (let i = 0; i < WARMUP + RUNS; i++) {
    const order = [...cases].sort(() => Math.random() - 0.5)
    for (const c of order) await runCase(c, i, i >= WARMUP)
    // The harness floor: what one process costs from Node here.
    const t0 = process.hrtime.bigint()
    spawnSync('/bin/true')
    if (i >= WARMUP) record('harness floor: spawnSync /bin/true', Number(process.hrtime.bigint() - t0) / 1e6)
  }
  for (const [how, d, base] of [
    ['a Node child process per command', dp, 10_000],
    ['kept ip + spawner', kept, 20_000],
    ['a Node child process per command', dp, 30_000],
    ['kept ip + spawner', kept, 40_000]
  ] as const) {
    await parallel(how, d, base)
  }
  console.log(
    `RUNS=${RUNS}, load ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}\n`
  )
  console.log('| case | n | median ms | p10 | p90 |')
  console.log('|---|---|---|---|---|')
  const keys = [...samples.keys()].sort()
  for (const k of keys) {
    const xs = samples.get(k) ?? []
    console.log(
      `| ${k} | ${xs.length} | **${median(xs).toFixed(2)}** | ${quantile(xs, 0.1).toFixed(2)} | ${quantile(xs, 0.9).toFixed(2)} |`
    )
  }
  console.log(
    '\n| placements at once (ensureEndpoint + place, nomasq) | n | wall ms | event loop busy ms | in Node process starts ms | then deleteEndpoint of all, ms |'
  )
  console.log('|---|---|---|---|---|---|')
  for (const row of parallelRows) console.log(row)
}

const cleanup = async (): Promise<void> => {
  await kept.close()
  await dp.deleteNetwork(nets.nomasq)()
  await dp.deleteNetwork(nets.masq)()
  await dp.removeFirewall()()
  quiet('ip', ['link', 'del', `itb${id}r0`])
  quiet('ip', ['link', 'del', `itb${id}r1`])
  rmSync(dataDir, { recursive: true, force: true })
}

try {
  await main()
} finally {
  await cleanup()
}
