/**
 * `pnpm bench:cni`: CNI ADD and DEL wall times, as a runtime pays them (whole processes, medians),
 * side by side in one run:
 *
 * - `isthmus native → daemon`: the installed executable (the native client, packages/cni-native)
 *   handing each call to a running daemon (bench/daemon.ts: the daemon's store, dataplane and
 *   hand-off socket, as `isthmus serve` runs them, in a process of its own). It runs as the
 *   product runs: the built packages (`pnpm build`), on the Node `scripts/isthmus` would pick (this
 *   Node when it is a supported line, else the pinned Node 24 that scripts/run.sh fetches);
 * - `isthmus fallback (Node)`: the same client with no daemon, running the Node fallback
 *   (`isthmus-node`, the SEA) installed beside it;
 * - `bridge+host-local`: the reference plugins.
 *
 * With 0 and 5,000 addresses in use, and the wall time of 100 parallel ADDs (and DELs). Stores are
 * pre-populated: host-local's as host-local itself writes them (one file per IP holding
 * "<id>\r\n<ifname>", plus last_reserved_ip.0), isthmus's through its own IPAM. Each round uses a
 * fresh namespace. Also printed: the daemon's own time per call and its steps (its log lines), the
 * installed files' sizes, `node -e 0`, and the acceptance ratios against the reference.
 * Traffic: none; subnets 10.231.96.0/19 (isthmus) and 10.231.128.0/19 (reference). Everything
 * made here is removed at the end, also on failure.
 *
 * RUNS=15 by default (`RUNS=30 pnpm bench:cni`), after 20 warm-up rounds of every side.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
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

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..')
const SEA = join(root, 'packages/cni-plugin/dist/sea/isthmus')
const NATIVE = join(root, 'packages/cni-native/dist/isthmus')
const RUNS = Number(process.env['RUNS'] ?? 15)
const WARM_UP = 20
const PARALLEL = 100
const id = randomBytes(3).toString('hex')
const dir = mkdtempSync(join(tmpdir(), `isthmus-cni-bench-${id}-`))
const chainPrefix = `ICB${id}`
const netnsMade: string[] = []
const bridges = [`icbi${id}`, `icbr${id}`]
const binDir = join(dir, 'bin')
const client = join(binDir, 'isthmus')
const stateDir = join(dir, 'state')
const daemonSocket = join(dir, 'cni.sock')

interface Side {
  readonly name: string
  readonly file: string
  readonly conf: Record<string, unknown>
}

const NATIVE_SIDE = 'isthmus native → daemon'
const FALLBACK_SIDE = 'isthmus fallback (Node)'
const REFERENCE_SIDE = 'bridge+host-local'

const ourConf = {
  cniVersion: '1.0.0',
  name: `bench-i-${id}`,
  type: 'isthmus',
  bridge: bridges[0],
  isGateway: true,
  stateDir,
  chainPrefix,
  ipam: { ranges: [[{ subnet: '10.231.96.0/19' }]] }
}

const sides = (): ReadonlyArray<Side> => [
  // The native client handing each call to the running daemon...
  { name: NATIVE_SIDE, file: client, conf: { ...ourConf, daemon: daemonSocket } },
  // ...and finding none there, so the Node fallback beside it runs the call; same network.
  { name: FALLBACK_SIDE, file: client, conf: { ...ourConf, daemon: join(dir, 'nobody.sock') } },
  {
    name: REFERENCE_SIDE,
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
  void ours
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
  const opened = await fileStore({ stateDir })()
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

// The daemon (bench/daemon.ts) and the log lines it prints, one per handed-off call.
let daemon: ChildProcess | undefined
const daemonCalls: Array<Record<string, unknown>> = []

// The Node `isthmus serve` runs on here (scripts/isthmus): this one if its line is supported
// (package.json engines), else the pinned Node 24 (fetched into .cache/node24 if missing).
const daemonNode = (): string => {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
  if (major >= 24 || (major === 22 && minor >= 12)) return process.execPath
  return execFileSync(process.execPath, [join(root, 'scripts/node-lts.mjs'), '24'], { encoding: 'utf8' }).trim()
}

const startDaemon = (node: string): Promise<void> =>
  new Promise((ready, failed) => {
    // No source condition: @isthmus/* resolve to their built dist, as in the product.
    const child = spawn(
      node,
      ['--import', 'tsx', join(root, 'packages/cni-plugin/bench/daemon.ts'), daemonSocket, stateDir, chainPrefix],
      { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] }
    )
    daemon = child
    child.once('exit', (code) => failed(new Error(`the bench daemon exited (${code})`)))
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line === 'ready') return ready()
      try {
        daemonCalls.push(JSON.parse(line) as Record<string, unknown>)
      } catch {
        // not a call line
      }
    })
  })

const stopDaemon = async (): Promise<void> => {
  const d = daemon
  daemon = undefined
  // Not started, or gone already.
  if (d?.exitCode !== null) return
  await new Promise<void>((done) => {
    d.removeAllListeners('exit')
    d.once('exit', () => done())
    d.kill('SIGTERM')
  })
}

const sizeMiB = (f: string): string => (statSync(f).size / (1 << 20)).toFixed(1)

/** Medians of the daemon's own time and of each of its steps, over the calls `pick` selects. */
const daemonSteps = (pick: (c: Record<string, unknown>) => boolean): string => {
  const calls = daemonCalls.filter(pick)
  if (calls.length === 0) return 'no calls'
  const steps = [...new Set(calls.flatMap((c) => Object.keys(c['steps'] ?? {})))]
  const of = (k: string) => median(calls.map((c) => ((c['steps'] ?? {}) as Record<string, number>)[k] ?? 0))
  return `${median(calls.map((c) => Number(c['durationMs']))).toFixed(2)} ms: ${steps.map((k) => `${k} ${of(k).toFixed(2)}`).join(', ')}`
}

const main = async (): Promise<void> => {
  // The daemon runs the built packages: build them as `pnpm build` does.
  execFileSync('pnpm', ['--silent', 'build'], { cwd: root, stdio: 'ignore' })
  const node = daemonNode()
  // Installed as `isthmus cni install --fallback` does: the client, the Node fallback beside it.
  mkdirSync(binDir, { recursive: true })
  copyFileSync(NATIVE, client)
  copyFileSync(SEA, join(binDir, 'isthmus-node'))
  execFileSync('chmod', ['0755', client, join(binDir, 'isthmus-node')])
  await startDaemon(node)
  // Warm-up, the same calls for every side: the first ADD makes the bridges and the isthmus
  // network; the rounds after it bring the daemon to its steady state (V8 compiles its hot code
  // after some tens of calls), which is what a node's daemon serves. The cold calls' figures are
  // printed below too.
  const coldAdds: Record<string, number[]> = {}
  for (let r = 0; r < WARM_UP; r++) {
    for (const s of sides()) {
      const ns = netns()
      const add = await run(s.file, cniEnv('ADD', `warm-${r}`, ns.path), s.conf)
      must(add, `${s.name} warm-up ADD`)
      if (r >= 1 && r <= 10) (coldAdds[s.name] ??= []).push(add.ms)
      must(await run(s.file, cniEnv('DEL', `warm-${r}`, ns.path), s.conf), `${s.name} warm-up DEL`)
      dropNetns(ns.name)
    }
  }
  const nodeStart: number[] = []
  for (let r = 0; r < RUNS; r++) {
    nodeStart.push((await run(process.execPath, { PATH: process.env['PATH'] ?? '' }, '', ['-e', '0'])).ms)
  }
  const at0 = await cycles('0')
  const par = await parallel()
  await populate(5000)
  const at5k = await cycles('5k')
  const row = (name: string) =>
    `| ${name.padEnd(23)} | ${at0[name]?.add.toFixed(1).padStart(7)} | ${at0[name]?.del.toFixed(1).padStart(7)} | ${at5k[name]?.add.toFixed(1).padStart(8)} | ${at5k[name]?.del.toFixed(1).padStart(8)} | ${String(par[name]?.add).padStart(9)} | ${String(par[name]?.del).padStart(9)} |`
  console.log(`CNI ADD/DEL wall times, medians of ${RUNS} rounds (ms); ${PARALLEL} parallel ADDs/DELs: wall ms`)
  console.log('| plugin                  | ADD @0  | DEL @0  | ADD @5k  | DEL @5k  | 100 ADD ∥ | 100 DEL ∥ |')
  console.log('|-------------------------|---------|---------|----------|----------|-----------|-----------|')
  for (const s of sides()) console.log(row(s.name))
  const cid = (label: string) => (c: Record<string, unknown>) => String(c['containerId']).startsWith(`bench-${label}-`)
  const is = (command: string) => (c: Record<string, unknown>) => c['command'] === command
  console.log(
    `The daemon's own time per call and its steps (medians of its log lines, ms), on Node ${execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()}:`
  )
  for (const [label, command] of [
    ['0', 'ADD'],
    ['0', 'DEL'],
    ['5k', 'ADD'],
    ['5k', 'DEL']
  ] as const) {
    console.log(`  ${command} @${label}: ${daemonSteps((c) => cid(label)(c) && is(command)(c))}`)
  }
  // The warm-up's calls after the first (which made the network): a daemon just started.
  const cold = (c: Record<string, unknown>) => /^warm-([1-9]|10)$/.test(String(c['containerId']))
  console.log(`  ADD, warm-up calls 2-11 (a daemon just started): ${daemonSteps((c) => cold(c) && is('ADD')(c))}`)
  console.log(
    `  ${PARALLEL} parallel ADDs, each: ${daemonSteps((c) => String(c['containerId']).startsWith('par-') && is('ADD')(c))}`
  )
  console.log(
    `ADD wall in warm-up rounds 2-11 (ms, medians): ${Object.entries(coldAdds)
      .map(([k, v]) => `${k} ${median(v).toFixed(1)}`)
      .join(', ')}`
  )
  console.log(
    `Installed: ${client.replace(dir, '<bin>/..')} ${sizeMiB(client)} MiB (native client); the Node fallback isthmus-node ${sizeMiB(SEA)} MiB. node -e 0: ${median(nodeStart).toFixed(1)} ms`
  )
  const ours = NATIVE_SIDE
  const ratio = (a: number | undefined, b: number | undefined) => (a ?? NaN) / (b ?? NaN)
  const verdict = (r: number, limit: number) => `${r.toFixed(2)}× (${r <= limit ? 'meets' : 'misses'} ≤ ${limit}×)`
  const ref = REFERENCE_SIDE
  console.log(`Acceptance, ${ours} against ${ref}:`)
  console.log(`  ADD @0            ${verdict(ratio(at0[ours]?.add, at0[ref]?.add), 1.0)}; aim 0.5×`)
  console.log(`  DEL @0            ${verdict(ratio(at0[ours]?.del, at0[ref]?.del), 1.0)}`)
  console.log(`  100 parallel ADDs ${verdict(ratio(par[ours]?.add, par[ref]?.add), 1.0)}`)
  const sum = (x: { add: number; del: number } | undefined) => (x === undefined ? NaN : x.add + x.del)
  console.log(`  ADD + DEL @5k     ${verdict(ratio(sum(at5k[ours]), sum(at5k[ref])), 0.5)}`)
}

const cleanup = async (): Promise<void> => {
  await stopDaemon()
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
