/**
 * Container start on an isthmus network against Docker's builtin bridge (prints numbers, asserts
 * nothing). Run: pnpm bench:cnm
 *
 * 1. `docker run --rm <busybox> busybox true`, whole CLI calls, interleaved: every round runs each
 *    case once in a shuffled order, so drift in machine load hits all cases alike:
 *      none               --net none (no network at all)
 *      bridge             a user-defined network of the builtin bridge driver
 *      isthmus (managed)  a network of the managed plugin built by plugin/build.mjs (the bundled
 *                         daemon in its plugin container, as users install it)
 *      isthmus (source)   a network of `isthmus serve` run from source by testkit's startPlugin
 *                         (tsx, --log-level debug); SOURCE=0 leaves it out
 *      floor              a network of floorDriver.ts, a remote driver that leaves out all it can:
 *                         the fastest any remote driver gets on this machine; FLOOR=0 leaves it out
 * 2. IpamDriver.RequestAddress, each followed by ReleaseAddress, over the plugin sockets as dockerd
 *    sends them (no Content-Type, one keep-alive connection), per plugin.
 * 3. Where the plugin's time goes per docker run: its `request` log lines (durationMs, measured
 *    inside the plugin from the parsed request to the reply) during the timed rounds. The managed
 *    plugin logs through dockerd: read from dockerd's log file when its stderr is one.
 *
 * The ratio of medians comes with a 95% bootstrap interval: the rounds resampled with
 * replacement (each round's cases together, so drift stays paired), 2000 times. This VM's speed
 * drifts by 10-20% between minutes, so one run's ratio alone can land a few hundredths either way.
 *
 * Env: ROUNDS (40), WARMUP (2), IPAM_CALLS (2000), SOURCE (1), FLOOR (1), IMAGE (testkit's busybox).
 * Objects: names from uniquePrefix('bench'), subnets 10.252.224.0/24 to 10.252.230.0/24; removed at
 * the end, also on failure and on SIGINT/SIGTERM.
 */
import { execFile, spawn } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, statSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { Agent, request } from 'node:http'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import { describe, parseJson } from '@isthmus/core'
import { linuxDataplane } from '@isthmus/dataplane-linux'
import {
  DOCKER,
  docker,
  ensureBusyboxImage,
  ensureDockerd,
  mustDocker,
  removeDockerObjects,
  startPlugin,
  uniquePrefix,
  type DockerDaemon,
  type PluginProcess
} from '@isthmus/testkit'
import { startFloorDriver, type FloorDriver } from './floorDriver.js'

const ROUNDS = Number(process.env['ROUNDS'] ?? 40)
const WARMUP = Number(process.env['WARMUP'] ?? 2)
const IPAM_CALLS = Number(process.env['IPAM_CALLS'] ?? 2000)
const WITH_SOURCE = process.env['SOURCE'] !== '0'
const WITH_FLOOR = process.env['FLOOR'] !== '0'
const BUILD = fileURLToPath(new URL('../plugin/build.mjs', import.meta.url))

// -------------------------------------------------------------------------------------------------
// statistics
// -------------------------------------------------------------------------------------------------

interface Summary {
  readonly n: number
  readonly min: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
  readonly mean: number
}

const quantile = (sorted: ReadonlyArray<number>, q: number): number => {
  if (sorted.length === 0) return NaN
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo)
}

const summarize = (xs: ReadonlyArray<number>): Summary => {
  const s = [...xs].sort((a, b) => a - b)
  return {
    n: s.length,
    min: s[0] ?? NaN,
    p50: quantile(s, 0.5),
    p90: quantile(s, 0.9),
    p99: quantile(s, 0.99),
    max: s[s.length - 1] ?? NaN,
    mean: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)
  }
}

const median = (xs: ReadonlyArray<number>): number =>
  quantile(
    [...xs].sort((a, b) => a - b),
    0.5
  )

/** The 2.5% and 97.5% points of median(a)/median(b) over rounds resampled with replacement. */
const ratioInterval = (a: ReadonlyArray<number>, b: ReadonlyArray<number>, resamples = 2000): [number, number] => {
  const ratios: number[] = []
  for (let r = 0; r < resamples; r++) {
    const pick = Array.from({ length: a.length }, () => Math.floor(Math.random() * a.length))
    ratios.push(median(pick.map((i) => a[i]!)) / median(pick.map((i) => b[i]!)))
  }
  ratios.sort((x, y) => x - y)
  return [quantile(ratios, 0.025), quantile(ratios, 0.975)]
}

const f = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : '-')

// -------------------------------------------------------------------------------------------------
// processes and sockets
// -------------------------------------------------------------------------------------------------

/** Wall time of one docker CLI call (fork to reap), in ms; rejects on a non-zero exit. */
const timeDocker = (args: ReadonlyArray<string>): Promise<number> =>
  new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const child = spawn(DOCKER, [...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (c: string) => (stderr += c))
    child.on('error', reject)
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6
      if (code === 0) resolve(ms)
      else reject(new Error(`docker ${args.join(' ')} exited ${code}: ${stderr.trim()}`))
    })
  })

/** A POST to a plugin socket as dockerd sends it, on a keep-alive agent; resolves the parsed body. */
const makeCaller = (socket: string) => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  const call = (path: string, body: unknown) =>
    new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
      const data = `${JSON.stringify(body)}\n`
      const req = request(
        {
          socketPath: socket,
          path,
          method: 'POST',
          agent,
          headers: { Accept: 'application/vnd.docker.plugins.v1.2+json', 'Content-Length': Buffer.byteLength(data) }
        },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (c: string) => (text += c))
          res.on('end', () => {
            const body = text === '' ? E.right({}) : parseJson(`${path} reply`)(text)
            if (E.isRight(body)) resolve({ status: res.statusCode ?? 0, body: body.right as Record<string, unknown> })
            else reject(new Error(describe(body.left)))
          })
        }
      )
      req.on('error', reject)
      req.end(data)
    })
  return { call, close: () => agent.destroy() }
}

/** dockerd's log file when its stderr is a regular file (a managed plugin's output goes there). */
const dockerdLogFile = (): string | undefined => {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'dockerd') continue
      const target = readlinkSync(`/proc/${pid}/fd/2`)
      if (target.startsWith('/') && existsSync(target) && statSync(target).isFile()) return target
    } catch {
      // a process that went away, or one we may not look into
    }
  }
  return undefined
}

const fileSize = (path: string | undefined): number => (path === undefined ? 0 : statSync(path).size)

const readFrom = (path: string, offset: number): string => {
  const size = statSync(path).size
  if (size <= offset) return ''
  const buf = Buffer.alloc(size - offset)
  const fd = openSync(path, 'r')
  try {
    readSync(fd, buf, 0, buf.length, offset)
  } finally {
    closeSync(fd)
  }
  return buf.toString('utf8')
}

interface RequestLine {
  readonly op: string
  readonly durationMs: number
}

const asRequestLine = (o: unknown): RequestLine[] => {
  if (typeof o !== 'object' || o === null) return []
  const r = o as { message?: unknown; op?: unknown; durationMs?: unknown }
  return r.message === 'request' && typeof r.op === 'string' && typeof r.durationMs === 'number'
    ? [{ op: r.op, durationMs: r.durationMs }]
    : []
}

/** `request` lines of the daemon's own JSON log. */
const parseJsonLines = (text: string): RequestLine[] =>
  text.split('\n').flatMap((l) => E.fold(() => [], asRequestLine)(parseJson('log line')(l)))

/** `request` lines of plugin `id` as dockerd relays them: time=… level=error msg="<quoted JSON>" plugin=<id>. */
const parseDockerdLines = (text: string, id: string): RequestLine[] =>
  text.split('\n').flatMap((l) => {
    if (!l.endsWith(`plugin=${id}`)) return []
    const m = /msg="((?:[^"\\]|\\.)*)"/.exec(l)
    if (m === null) return []
    // the message is a Go-quoted string holding the JSON line
    return pipe(
      parseJson('dockerd log message')(`"${m[1]}"`),
      E.chain((s) => (typeof s === 'string' ? parseJson('log line')(s) : E.right(undefined))),
      E.fold(() => [], asRequestLine)
    )
  })

// -------------------------------------------------------------------------------------------------
// the run
// -------------------------------------------------------------------------------------------------

interface Case {
  readonly name: string
  readonly net: string
}

const prefix = uniquePrefix('bench')
const managedName = `${prefix}-isthmus:latest`
// the managed plugin's iptables chains (settable args), removed at the end
const managedChains = `IT${prefix.replace(/\W/g, '')}`.slice(0, 16)
let daemon: DockerDaemon | undefined
let tmp = ''
let managedInstalled = false
let source: PluginProcess | undefined
let floor: FloorDriver | undefined

const cleanup = async () => {
  await removeDockerObjects(prefix)
  if (managedInstalled) {
    await docker('plugin', 'disable', '-f', managedName)
    await docker('plugin', 'rm', '-f', managedName)
    managedInstalled = false
  }
  await source?.dispose()
  source = undefined
  await floor?.close()
  floor = undefined
  await linuxDataplane({ chainPrefix: managedChains }).removeFirewall()()
  if (tmp !== '') await rm(tmp, { recursive: true, force: true })
  tmp = ''
  await daemon?.stop()
  daemon = undefined
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`\n${sig}: cleaning up`)
    void cleanup().finally(() => process.exit(130))
  })
}

const ipamBench = async (label: string, socket: string, pool: string) => {
  const { call, close } = makeCaller(socket)
  try {
    const spaces = await call('/IpamDriver.GetDefaultAddressSpaces', {})
    const space = String(spaces.body['LocalDefaultAddressSpace'])
    const p = await call('/IpamDriver.RequestPool', {
      AddressSpace: space,
      Pool: pool,
      SubPool: '',
      Options: {},
      V6: false
    })
    if (p.status !== 200) throw new Error(`${label}: RequestPool ${pool}: ${JSON.stringify(p.body)}`)
    const poolId = String(p.body['PoolID'])
    const req: number[] = []
    const rel: number[] = []
    const started = process.hrtime.bigint()
    try {
      for (let i = 0; i < IPAM_CALLS + 50; i++) {
        const t0 = process.hrtime.bigint()
        const a = await call('/IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: null })
        const t1 = process.hrtime.bigint()
        if (a.status !== 200) throw new Error(`${label}: RequestAddress: ${JSON.stringify(a.body)}`)
        const ip = String(a.body['Address']).split('/')[0]
        const r = await call('/IpamDriver.ReleaseAddress', { PoolID: poolId, Address: ip })
        const t2 = process.hrtime.bigint()
        if (r.status !== 200) throw new Error(`${label}: ReleaseAddress: ${JSON.stringify(r.body)}`)
        if (i < 50) continue // warm-up
        req.push(Number(t1 - t0) / 1e6)
        rel.push(Number(t2 - t1) / 1e6)
      }
    } finally {
      await call('/IpamDriver.ReleasePool', { PoolID: poolId })
    }
    const wallS = Number(process.hrtime.bigint() - started) / 1e9
    const a = summarize(req)
    const b = summarize(rel)
    console.log(
      `| ${label} | RequestAddress | ${a.n} | **${f(a.p50, 2)}** | ${f(a.p90, 2)} | **${f(a.p99, 2)}** | ${f(a.max, 2)} |`
    )
    console.log(
      `| ${label} | ReleaseAddress | ${b.n} | ${f(b.p50, 2)} | ${f(b.p90, 2)} | ${f(b.p99, 2)} | ${f(b.max, 2)} |`
    )
    console.log(`| ${label} | request+release pairs/s | ${a.n + 50} | ${f((a.n + 50) / wallS, 0)} | | | |`)
  } finally {
    close()
  }
}

const profile = (label: string, lines: ReadonlyArray<RequestLine>, runs: number) => {
  const byOp = new Map<string, number[]>()
  for (const l of lines) byOp.set(l.op, [...(byOp.get(l.op) ?? []), l.durationMs])
  const rows = [...byOp.entries()]
    .map(([op, ds]) => ({
      op,
      s: summarize(ds),
      perRun: ds.reduce((a, b) => a + b, 0) / runs,
      calls: ds.length / runs
    }))
    .sort((a, b) => b.perRun - a.perRun)
  const total = rows.reduce((a, r) => a + r.perRun, 0)
  console.log(`\n${label}: plugin-side time per docker run (request log durationMs, ${runs} runs)`)
  console.log('| op | calls/run | median ms | p90 ms | ms per run | share |\n|---|---|---|---|---|---|')
  for (const r of rows) {
    console.log(
      `| ${r.op} | ${f(r.calls, 2)} | ${f(r.s.p50, 2)} | ${f(r.s.p90, 2)} | **${f(r.perRun, 2)}** | ${f((r.perRun / total) * 100, 0)}% |`
    )
  }
  console.log(
    `| total | ${f(
      rows.reduce((a, r) => a + r.calls, 0),
      1
    )} | | | **${f(total, 1)}** | |`
  )
}

try {
  daemon = await ensureDockerd()
  const image = process.env['IMAGE'] ?? (await ensureBusyboxImage())
  tmp = await mkdtemp(join(tmpdir(), `${prefix}-`))

  // the managed plugin: build, install, enable
  const t0 = Date.now()
  const built = await promisify(execFile)(process.execPath, [BUILD, join(tmp, 'plugin')])
  const tBuild = Date.now() - t0
  const stateDir = join(tmp, 'state')
  await mkdir(stateDir)
  const t1 = Date.now()
  await mustDocker('plugin', 'create', managedName, join(tmp, 'plugin'))
  managedInstalled = true
  const tCreate = Date.now() - t1
  await mustDocker('plugin', 'set', managedName, `state.source=${stateDir}`, `args=--chain-prefix ${managedChains}`)
  const t2 = Date.now()
  await mustDocker('plugin', 'enable', managedName)
  const tEnable = Date.now() - t2
  const managedId = (await mustDocker('plugin', 'inspect', '--format', '{{.Id}}', managedName)).stdout.trim()
  const managedSocket = `/run/docker/plugins/${managedId}/isthmus.sock`
  const rootfsBytes = (JSON.parse(built.stdout.trim().split('\n').pop()!) as { bytes: number }).bytes

  if (WITH_SOURCE) source = await startPlugin(`${prefix}-src`)

  const cases: Case[] = [
    { name: 'none (--net none)', net: 'none' },
    { name: 'bridge (builtin)', net: `${prefix}-br` },
    { name: 'isthmus (managed plugin)', net: `${prefix}-im` }
  ]
  await mustDocker('network', 'create', '-d', 'bridge', '--subnet', '10.252.224.0/24', `${prefix}-br`)
  await mustDocker(
    'network',
    'create',
    '-d',
    managedName,
    '--ipam-driver',
    managedName,
    '--subnet',
    '10.252.225.0/24',
    `${prefix}-im`
  )
  if (source !== undefined) {
    await mustDocker(
      'network',
      'create',
      '-d',
      source.name,
      '--ipam-driver',
      source.name,
      '--subnet',
      '10.252.226.0/24',
      `${prefix}-is`
    )
    cases.push({ name: 'isthmus (source, startPlugin)', net: `${prefix}-is` })
  }
  if (WITH_FLOOR) {
    const floorName = `${prefix}-floor`
    floor = await startFloorDriver({
      socket: `/run/docker/plugins/${floorName}.sock`,
      net24: '10.252.230',
      tag: `f${prefix.slice(-5)}`
    })
    await mustDocker(
      'network',
      'create',
      '-d',
      floorName,
      '--ipam-driver',
      floorName,
      '--subnet',
      '10.252.230.0/24',
      `${prefix}-fl`
    )
    cases.push({ name: 'floor (do-nothing remote driver)', net: `${prefix}-fl` })
  }

  const runArgs = (net: string) => ['run', '--rm', '--net', net, image, 'busybox', 'true']
  const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]))
  const shuffled = () => [...cases].sort(() => Math.random() - 0.5)
  for (let w = 0; w < WARMUP; w++) for (const c of shuffled()) await timeDocker(runArgs(c.net))

  // plugin logs from here on belong to the timed rounds
  const dockerdLog = dockerdLogFile()
  const dockerdLogOffset = fileSize(dockerdLog)
  const sourceLogOffset = source?.logs().length ?? 0
  for (let i = 0; i < ROUNDS; i++) {
    for (const c of shuffled()) samples.get(c.name)!.push(await timeDocker(runArgs(c.net)))
  }
  const managedLines =
    dockerdLog === undefined ? [] : parseDockerdLines(readFrom(dockerdLog, dockerdLogOffset), managedId)
  const sourceLines = source === undefined ? [] : parseJsonLines(source.logs().slice(sourceLogOffset))

  const dv = (await mustDocker('version', '--format', '{{.Server.Version}}')).stdout.trim()
  console.log(
    `isthmus CNM bench: dockerd ${dv}, node ${process.version}, load ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`
  )
  console.log(
    `managed plugin: build ${(tBuild / 1000).toFixed(1)} s (rootfs ${(rootfsBytes / 1e6).toFixed(0)} MB), docker plugin create ${(tCreate / 1000).toFixed(1)} s, enable ${(tEnable / 1000).toFixed(1)} s`
  )
  console.log(
    `\ndocker run --rm --net <net> ${image} busybox true: ${ROUNDS} interleaved rounds after ${WARMUP} warm-up (ms, whole CLI call)`
  )
  console.log('| case | n | median | p90 | min | max | median - none |\n|---|---|---|---|---|---|---|')
  const st = new Map(cases.map((c) => [c.name, summarize(samples.get(c.name)!)]))
  const none = st.get(cases[0]!.name)!
  for (const c of cases) {
    const s = st.get(c.name)!
    console.log(
      `| ${c.name} | ${s.n} | **${f(s.p50)}** | ${f(s.p90)} | ${f(s.min)} | ${f(s.max)} | ${c.net === 'none' ? '' : f(s.p50 - none.p50)} |`
    )
  }
  const bridge = st.get(cases[1]!.name)!
  const bridgeSamples = samples.get(cases[1]!.name)!
  for (const c of cases.slice(2)) {
    const s = st.get(c.name)!
    const mine = samples.get(c.name)!
    const [lo, hi] = ratioInterval(mine, bridgeSamples)
    const perRound = median(mine.map((x, i) => x / bridgeSamples[i]!))
    console.log(
      `ratio ${c.name} / bridge: median ${f(s.p50 / bridge.p50, 3)} (95% interval ${f(lo, 2)}-${f(hi, 2)}), p90 ${f(s.p90 / bridge.p90, 2)}, ` +
        `median of per-round ratios ${f(perRound, 2)}; network share ${f(s.p50 - none.p50)} ms vs bridge ${f(bridge.p50 - none.p50)} ms`
    )
  }

  console.log(
    `\nIPAM over the plugin socket: ${IPAM_CALLS} x (RequestAddress; ReleaseAddress), one keep-alive connection, after 50 warm-up (ms, client-side round trip)`
  )
  console.log('| plugin | call | n | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|---|')
  await ipamBench('managed', managedSocket, '10.252.228.0/24')
  if (source !== undefined) await ipamBench('source', source.socket, '10.252.229.0/24')

  if (managedLines.length > 0) profile('isthmus (managed plugin)', managedLines, ROUNDS)
  else {
    console.log(
      `\nmanaged plugin profile: not available (${dockerdLog === undefined ? "dockerd's stderr is not a file" : 'no request lines found'})`
    )
  }
  if (source !== undefined) profile('isthmus (source, startPlugin)', sourceLines, ROUNDS)
} finally {
  await cleanup()
}
