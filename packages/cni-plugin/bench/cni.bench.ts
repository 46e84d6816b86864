/**
 * `pnpm bench:cni`: ADD and DEL wall times of the installed isthmus plugin (the SEA) beside the
 * reference bridge + host-local, with 0 and 5,000 addresses in use, and the wall time of 100
 * parallel ADDs (and DELs) of each. Whole-process times, as a runtime pays them; medians.
 *
 * Stores are pre-populated: host-local's as host-local itself writes them (one file per IP
 * holding "<id>\r\n<ifname>", plus last_reserved_ip.0), isthmus's through its own IPAM. Each
 * round uses a fresh namespace. Traffic: none; subnets 10.231.96.0/19 (isthmus) and
 * 10.231.128.0/19 (reference). Everything made here is removed at the end, also on failure.
 *
 * RUNS=15 by default (`RUNS=30 pnpm bench:cni`).
 */
import { execFile, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as E from 'fp-ts/lib/Either.js'
import {
  DEFAULT_LOCAL_SPACE,
  fromBigInt,
  makeIpam,
  systemClock,
  toBigInt,
  type EndpointId,
  type IpAddress,
  type PoolId
} from '@isthmus/core'
import { linuxDataplane } from '@isthmus/dataplane-linux'
import { fileStore } from '@isthmus/store-fs'
import type { HandoffServer } from '@isthmus/handoff'
import { cniHandoffServer, linuxRuntime } from '@isthmus/wiring'

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..')
const SEA = join(root, 'packages/cni-plugin/dist/sea/isthmus')
const RUNS = Number(process.env['RUNS'] ?? 15)
const PARALLEL = 100
const id = randomBytes(3).toString('hex')
const dir = mkdtempSync(join(tmpdir(), `isthmus-cni-bench-${id}-`))
const chainPrefix = `ICB${id}`
const netnsMade: string[] = []
const bridges = [`icbi${id}`, `icbr${id}`]

interface Side {
  readonly name: string
  readonly file: string
  readonly conf: Record<string, unknown>
}

const ourConf = {
  cniVersion: '1.0.0',
  name: `bench-i-${id}`,
  type: 'isthmus',
  bridge: bridges[0],
  isGateway: true,
  stateDir: join(dir, 'state'),
  chainPrefix,
  ipam: { ranges: [[{ subnet: '10.231.96.0/19' }]] }
}
const daemonSocket = join(dir, 'cni.sock')

const sides = (): ReadonlyArray<Side> => [
  // The executable running each call itself (no daemon)...
  { name: 'isthmus', file: SEA, conf: { ...ourConf, daemon: false } },
  // ...and handing it to a running daemon (handoff/, as `isthmus serve` runs it), same network.
  { name: 'isthmus → daemon', file: SEA, conf: { ...ourConf, daemon: daemonSocket } },
  {
    name: 'bridge+host-local',
    file: '/usr/lib/cni/bridge',
    conf: {
      cniVersion: '1.0.0',
      name: `bench-r-${id}`,
      type: 'bridge',
      bridge: bridges[1],
      isGateway: true,
      ipam: { type: 'host-local', dataDir: join(dir, 'host-local'), ranges: [[{ subnet: '10.231.128.0/19' }]] }
    }
  }
]

const run = (
  file: string,
  env: Record<string, string>,
  conf: unknown,
  args: ReadonlyArray<string> = []
): Promise<{ code: number; ms: number; out: string }> =>
  new Promise((done) => {
    const t0 = process.hrtime.bigint()
    const child = execFile(file, [...args], { env, maxBuffer: 1 << 24, timeout: 120_000 }, (err, stdout) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      done({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, ms, out: String(stdout) })
    })
    child.stdin?.end(JSON.stringify(conf))
  })

const cniEnv = (command: string, cid: string, netns: string): Record<string, string> => ({
  PATH: '/usr/bin:/usr/sbin',
  CNI_COMMAND: command,
  CNI_CONTAINERID: cid,
  CNI_NETNS: netns,
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/usr/lib/cni'
})

let nsCounter = 0
const netns = (): { name: string; path: string } => {
  const name = `isthmus-cni-bench-${id}-${nsCounter++}`
  execFileSync('ip', ['netns', 'add', name])
  netnsMade.push(name)
  return { name, path: `/var/run/netns/${name}` }
}
const dropNetns = (name: string): void => {
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' })
  } catch {
    // gone
  }
}

const must = (r: { code: number; out: string }, what: string): void => {
  if (r.code !== 0) throw new Error(`${what} failed: ${r.out}`)
}

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2
}

/** One ADD+DEL cycle per round per side, interleaved; returns median ms per side. */
const cycles = async (label: string): Promise<Record<string, { add: number; del: number }>> => {
  const times: Record<string, { add: number[]; del: number[] }> = {}
  for (let r = 0; r < RUNS; r++) {
    for (const s of sides()) {
      const ns = netns()
      const cid = `bench-${label}-${r}`
      const add = await run(s.file, cniEnv('ADD', cid, ns.path), s.conf)
      must(add, `${s.name} ADD`)
      const del = await run(s.file, cniEnv('DEL', cid, ns.path), s.conf)
      must(del, `${s.name} DEL`)
      dropNetns(ns.name)
      const t = (times[s.name] ??= { add: [], del: [] })
      t.add.push(add.ms)
      t.del.push(del.ms)
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, { add: median(v.add), del: median(v.del) }]))
}

/** Fill both stores with `n` addresses in use (after the first address of each range). */
const populate = async (n: number): Promise<void> => {
  const [ours, , ref] = sides() as [Side, Side, Side]
  // host-local: one file per address, as it writes them.
  const hl = join(dir, 'host-local', String(ref.conf['name']))
  mkdirSync(hl, { recursive: true })
  const refBase = toBigInt('10.231.128.0' as IpAddress)
  let last = ''
  for (let i = 0; i < n; i++) {
    last = fromBigInt(refBase + 10n + BigInt(i), 4)
    writeFileSync(join(hl, last), `fill-${i}\r\neth0`)
  }
  writeFileSync(join(hl, 'last_reserved_ip.0'), last)
  // isthmus: leases through its own IPAM, in the pool the first ADD created.
  const opened = await fileStore({ stateDir: String(ours.conf['stateDir']) })()
  if (E.isLeft(opened)) throw new Error('cannot open the isthmus state directory')
  const store = opened.right
  const ipam = makeIpam({ store, clock: systemClock })
  const pool = `${DEFAULT_LOCAL_SPACE}/10.231.96.0/19` as PoolId
  const ourBase = toBigInt('10.231.96.0' as IpAddress)
  for (let i = 0; i < n; i++) {
    const r = await ipam.allocate(
      pool,
      { kind: 'endpoint', id: `fill-${i}` as EndpointId },
      { address: fromBigInt(ourBase + 10n + BigInt(i), 4) }
    )()
    if (E.isLeft(r)) throw new Error(`populate: ${JSON.stringify(r.left)}`)
  }
  await store.close()
}

const parallel = async (): Promise<Record<string, { add: number; del: number }>> => {
  const out: Record<string, { add: number; del: number }> = {}
  for (const s of sides()) {
    const nss = Array.from({ length: PARALLEL }, () => netns())
    const t0 = Date.now()
    const adds = await Promise.all(nss.map((ns, i) => run(s.file, cniEnv('ADD', `par-${i}`, ns.path), s.conf)))
    const add = Date.now() - t0
    adds.forEach((a) => must(a, `${s.name} parallel ADD`))
    const t1 = Date.now()
    const dels = await Promise.all(nss.map((ns, i) => run(s.file, cniEnv('DEL', `par-${i}`, ns.path), s.conf)))
    const del = Date.now() - t1
    dels.forEach((d) => must(d, `${s.name} parallel DEL`))
    for (const ns of nss) dropNetns(ns.name)
    out[s.name] = { add, del }
  }
  return out
}

let daemon: HandoffServer | undefined

const main = async (): Promise<void> => {
  execFileSync(process.execPath, [join(root, 'packages/cni-plugin/scripts/build.mjs')], { stdio: 'ignore' })
  daemon = await cniHandoffServer({
    socket: daemonSocket,
    runtime: (env, selfNames) => linuxRuntime({ env, selfNames, deferLinkRemoval: true }),
    log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined }
  })
  // Warm-up: creates both bridges and the isthmus network (first ADD).
  for (const s of sides()) {
    const ns = netns()
    must(await run(s.file, cniEnv('ADD', 'warm', ns.path), s.conf), `${s.name} warm-up ADD`)
    must(await run(s.file, cniEnv('DEL', 'warm', ns.path), s.conf), `${s.name} warm-up DEL`)
    dropNetns(ns.name)
  }
  // node's own start-up, measured here: the ADD@0 target is this plus 15 ms.
  const nodeStart: number[] = []
  for (let r = 0; r < RUNS; r++) {
    nodeStart.push((await run(process.execPath, { PATH: process.env['PATH'] ?? '' }, '', ['-e', '0'])).ms)
  }
  const at0 = await cycles('0')
  const par = await parallel()
  await populate(5000)
  const at5k = await cycles('5k')
  const row = (name: string) =>
    `| ${name.padEnd(17)} | ${at0[name]?.add.toFixed(1).padStart(7)} | ${at0[name]?.del.toFixed(1).padStart(7)} | ${at5k[name]?.add.toFixed(1).padStart(8)} | ${at5k[name]?.del.toFixed(1).padStart(8)} | ${String(par[name]?.add).padStart(9)} | ${String(par[name]?.del).padStart(9)} |`
  console.log(`CNI ADD/DEL wall times, medians of ${RUNS} rounds (ms); ${PARALLEL} parallel ADDs/DELs: wall ms`)
  console.log('| plugin            | ADD @0  | DEL @0  | ADD @5k  | DEL @5k  | 100 ADD ∥ | 100 DEL ∥ |')
  console.log('|-------------------|---------|---------|----------|----------|-----------|-----------|')
  console.log(row('isthmus'))
  console.log(row('isthmus → daemon'))
  console.log(row('bridge+host-local'))
  const ref5k = (at5k['bridge+host-local']?.add ?? NaN) + (at5k['bridge+host-local']?.del ?? NaN)
  console.log(
    `node -e 0: ${median(nodeStart).toFixed(1)} ms, so the ADD @0 target is ${(median(nodeStart) + 15).toFixed(1)} ms; ADD+DEL @5k target: ${ref5k.toFixed(1)} ms (the reference's)`
  )
  for (const name of ['isthmus', 'isthmus → daemon']) {
    const a = at0[name]?.add ?? NaN
    const ad = (at5k[name]?.add ?? NaN) + (at5k[name]?.del ?? NaN)
    console.log(
      `${name}: ADD @0 ${a.toFixed(1)} ms (${a <= median(nodeStart) + 15 ? 'meets' : 'misses'} the target), ADD+DEL @5k ${ad.toFixed(1)} ms (${ad <= ref5k ? 'meets' : 'misses'})`
    )
  }
}

const cleanup = async (): Promise<void> => {
  await daemon?.close()
  for (const n of netnsMade) dropNetns(n)
  for (const b of bridges) {
    try {
      execFileSync('ip', ['link', 'del', 'dev', b], { stdio: 'ignore' })
    } catch {
      // gone
    }
  }
  await linuxDataplane({ chainPrefix }).removeFirewall()()
  rmSync(dir, { recursive: true, force: true })
}

main()
  .catch((e: unknown) => {
    console.error(e)
    process.exitCode = 1
  })
  .finally(() => cleanup())
