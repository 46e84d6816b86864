/**
 * `pnpm bench:soak`: a mixed Docker and CNI workload against one real `isthmus serve` (its own
 * state directory, plugin socket, CNI hand-off socket and iptables chain prefix: testkit's
 * startPlugin), for a configurable time, with the daemon killed (SIGKILL) at random moments and
 * started again. A benchmark, not a test: it prints what it finds, and exits non-zero when an
 * invariant is broken.
 *
 * Workload (soakWorkload.ts), several jobs at a time: `docker run --rm` and `docker run -d` /
 * `rm -f` on two isthmus Docker networks, Docker network churn (create, one container, rm), and
 * CNI ADD / CHECK / DEL of the built executable into namespaces made here, on a CNI network of its
 * own and on the Docker networks (`dockerNetwork`), run by the executable itself or handed to the
 * daemon.
 *
 * At the end: the workload stops; the daemon is killed once more and started (it sweeps at start);
 * the live attachments are checked (addresses in the kernel, CHECK); the workload's objects are
 * removed through the protocols; the daemon is stopped (SIGTERM); then it checks and prints
 *   - duplicate addresses: while the run went on (a second live holder the moment it appeared) and
 *     at the end in the kernel, across every live container and namespace (must be 0);
 *   - leaked links: `istv…`/`istc…` ends seen on the run's bridges or named by its CNI results,
 *     and the run's bridges (the CNI network's own bridge outlives its attachments by design);
 *   - leaked iptables rules under the run's chain prefix (tagged for a network or endpoint that
 *     is gone);
 *   - leaked leases (their owner, an endpoint or a pool or a Docker reservation, no longer exists)
 *     and records left (endpoints, networks, pools);
 *   - records quarantined (`<stateDir>/v1/quarantine`, when the store has one);
 *   - the daemon's memory (RSS) and open descriptors over time, sampled every 2 s; deaths it
 *     died on its own; its error log lines.
 * Everything it made (containers, networks, namespaces, links, chains, state directory) is
 * removed in `finally`, also on Ctrl-C (a second Ctrl-C exits at once).
 *
 * Options (flags or env): --seconds / SOAK_SECONDS (180) of workload; --parallel / SOAK_PARALLEL
 * (4) jobs at a time; --kill-min, --kill-max / SOAK_KILL_MIN, SOAK_KILL_MAX (10, 40): seconds
 * between kills, uniformly (--kill-max 0: no kills); SOAK_SWEEP (5): seconds given to the daemon
 * after its last start before the checks. Subnets: 10.247.0.0/16. Traffic: none.
 */
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  docker,
  ensureBusyboxImage,
  ensureDockerd,
  mustDocker,
  removeDockerObjects,
  run,
  startPlugin,
  uniquePrefix,
  type DockerDaemon,
  type PluginProcess
} from '@isthmus/testkit'
import { causeText } from '@isthmus/core'
import {
  hostLinks,
  isEndpointLink,
  netnsAddresses,
  orphanLeases,
  pidAddresses,
  prefixedRules,
  processSample,
  readState,
  type HostLink
} from './soakHost.js'
import { Workload, type Attachment, type DaemonWatch, type SoakSetup } from './soakWorkload.js'

// -------------------------------------------------------------------------------------------------
// options
// -------------------------------------------------------------------------------------------------

const option = (flag: string, env: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${flag}`)
  const raw = i >= 0 ? process.argv[i + 1] : process.env[env]
  const n = raw === undefined ? fallback : Number(raw)
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${flag} / ${env}: a number of 0 or more (got ${raw})`)
  return n
}

const SECONDS = option('seconds', 'SOAK_SECONDS', 180)
const PARALLEL = Math.max(1, Math.floor(option('parallel', 'SOAK_PARALLEL', 4)))
const KILL_MIN = option('kill-min', 'SOAK_KILL_MIN', 10)
const KILL_MAX = option('kill-max', 'SOAK_KILL_MAX', 40)
const SWEEP = option('sweep', 'SOAK_SWEEP', 5)
const SAMPLE_MS = 2_000
/** Longest the daemon stays down after a kill before it is started again. */
const DOWN_MAX_MS = 2_000

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..')
const SEA = join(root, 'packages/cni-plugin/dist/sea/isthmus')

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const between = (lo: number, hi: number): number => lo + Math.random() * Math.max(0, hi - lo)
const quantile = (xs: ReadonlyArray<number>, q: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((s.length - 1) * q + 0.5))]!
}
const mib = (kib: number): string => (kib / 1024).toFixed(1)
const pad = (s: string | number, n: number): string => String(s).padEnd(n)
const padL = (s: string | number, n: number): string => String(s).padStart(n)

// -------------------------------------------------------------------------------------------------
// the daemon: kills, restarts, deaths, samples
// -------------------------------------------------------------------------------------------------

interface Sample {
  readonly t: number
  readonly life: number
  readonly rssKiB: number
  readonly fds: number
}

class Daemon implements DaemonWatch {
  private epochN = 0
  private isDown = false
  private upAt = Date.now()
  private op: Promise<void> = Promise.resolve()
  readonly restarts: Array<{
    readonly why: 'kill' | 'died' | 'sweep'
    readonly downMs: number
    readonly startMs: number
  }> = []
  readonly deaths: Array<{ readonly t: number; readonly lastLines: ReadonlyArray<string> }> = []
  readonly samples: Sample[] = []
  life = 0

  constructor(
    readonly plugin: PluginProcess,
    private readonly t0: number
  ) {}

  epoch = (): number => this.epochN
  down = (): boolean => this.isDown
  upSince = (): number => this.upAt

  /** Kill (unless it died), wait a moment, start; one at a time. */
  restart(why: 'kill' | 'died' | 'sweep', downMs = between(0, DOWN_MAX_MS)): Promise<void> {
    const next = this.op.then(async () => {
      this.isDown = true
      this.epochN++
      await this.plugin.kill('SIGKILL')
      await sleep(downMs)
      const started = Date.now()
      // a start that fails (the daemon exits at once) is tried again: the run needs a daemon
      for (let attempt = 1; ; attempt++) {
        try {
          await this.plugin.start()
          break
        } catch (e) {
          if (attempt >= 3) throw e
          this.deaths.push({
            t: (Date.now() - this.t0) / 1000,
            lastLines: [`start failed: ${causeText(e).slice(0, 300)}`]
          })
        }
      }
      this.restarts.push({ why, downMs: Math.round(downMs), startMs: Date.now() - started })
      this.life++
      this.isDown = false
      this.upAt = Date.now()
    })
    this.op = next.catch(() => undefined)
    return next
  }

  /** One sample of the process; a process gone while it should be up died of itself. */
  sample(): void {
    if (this.isDown) return
    const pid = this.plugin.pid()
    const s = processSample(pid)
    if (s !== undefined) {
      this.samples.push({ t: (Date.now() - this.t0) / 1000, life: this.life, ...s })
      return
    }
    const lines = this.plugin.logs().trim().split('\n').slice(-3)
    this.deaths.push({ t: (Date.now() - this.t0) / 1000, lastLines: lines })
    void this.restart('died', 0).catch(() => undefined)
  }
}

// -------------------------------------------------------------------------------------------------
// the run
// -------------------------------------------------------------------------------------------------

interface Findings {
  readonly broken: string[]
}

let interrupted = false
let onInterrupt: () => void = () => undefined
const interruption = new Promise<void>((r) => (onInterrupt = r))
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) {
      console.error('second interrupt: exiting without cleaning up')
      process.exit(130)
    }
    interrupted = true
    console.error(`\n${sig}: stopping the workload and cleaning up (again to exit at once)`)
    onInterrupt()
  })
}

const main = async (): Promise<number> => {
  if (process.getuid?.() !== 0) {
    throw new Error('bench:soak makes namespaces, bridges and iptables chains: run it as root')
  }
  const t0 = Date.now()
  const prefix = uniquePrefix('soak')
  const bridgePrefix = `sk${prefix.slice(-6)}`
  const log = (msg: string) => console.log(`[${padL(((Date.now() - t0) / 1000).toFixed(0), 4)} s] ${msg}`)
  log(
    `bench:soak ${prefix}: ${SECONDS} s of workload, ${PARALLEL} jobs at a time, a kill every ${KILL_MAX === 0 ? 'never' : `${KILL_MIN}-${KILL_MAX} s`}`
  )

  execFileSync(process.execPath, [join(root, 'packages/cni-plugin/scripts/build.mjs')], { stdio: 'ignore' })
  let dockerd: DockerDaemon | undefined
  let plugin: PluginProcess | undefined
  let workload: Workload | undefined
  /** Endpoint links seen on the run's bridges (and their peers): when first, where, with what alias. */
  const ours = new Map<string, { readonly t: number; readonly master?: string; readonly alias?: string }>()
  const linksBefore = new Set((await hostLinks()).map((l) => l.ifname))
  const cniNet = { name: `${prefix}-cni`, bridge: `${bridgePrefix}c`, subnet: '10.247.64.0/24' }
  const timers: NodeJS.Timeout[] = []
  const findings: Findings = { broken: [] }
  try {
    dockerd = await ensureDockerd()
    const image = await ensureBusyboxImage()
    plugin = await startPlugin(`${prefix}-p`)
    const p = plugin
    const dockerNets = [
      { name: `${prefix}-n1`, subnet: '10.247.1.0/24', bridge: `${bridgePrefix}a` },
      { name: `${prefix}-n2`, subnet: '10.247.2.0/24', bridge: `${bridgePrefix}b` }
    ]
    for (const n of dockerNets) {
      await mustDocker(
        'network',
        'create',
        '-d',
        p.name,
        '--ipam-driver',
        p.name,
        '--subnet',
        n.subnet,
        '-o',
        `com.docker.network.bridge.name=${n.bridge}`,
        n.name
      )
    }
    const setup: SoakSetup = {
      prefix,
      bridgePrefix,
      plugin: p,
      image,
      sea: SEA,
      dockerNets,
      cniNet,
      churnSubnets: Array.from({ length: 8 }, (_, i) => `10.247.${16 + i}.0/24`),
      maxContainers: 10,
      maxCni: 16
    }
    const d = new Daemon(p, t0)
    const w = new Workload(setup, d)
    workload = w

    // samples: the daemon's process, and which endpoint links sit on the run's bridges
    const observe = async () => {
      d.sample()
      for (const l of await hostLinks().catch(() => [] as ReadonlyArray<HostLink>)) {
        if (isEndpointLink(l.ifname) && l.master?.startsWith(bridgePrefix) === true && !ours.has(l.ifname)) {
          const t = Math.round((Date.now() - t0) / 1000)
          ours.set(l.ifname, { t, master: l.master, ...(l.ifalias === undefined ? {} : { alias: l.ifalias }) })
          if (l.link !== undefined && !ours.has(l.link)) ours.set(l.link, { t })
        }
      }
    }
    timers.push(setInterval(() => void observe(), SAMPLE_MS))

    // kills at random moments
    let killing = KILL_MAX > 0
    const kills = (async () => {
      while (killing) {
        const wait = between(KILL_MIN, KILL_MAX) * 1000
        const until = Date.now() + wait
        while (killing && Date.now() < until) await sleep(Math.min(250, until - Date.now()))
        if (!killing) break
        log(`SIGKILL to the daemon (pid ${p.pid()})`)
        await d.restart('kill')
        log(`daemon back (pid ${p.pid()}, ${d.restarts.at(-1)?.startMs} ms to answer)`)
      }
    })()

    log('workload running')
    const working = w.run(PARALLEL)
    await Promise.race([sleep(SECONDS * 1000), interruption])
    w.stop()
    killing = false
    log('stopping the workload (waiting for the jobs in flight)')
    await Promise.all([working, kills])
    if (interrupted) return 130

    // the sweep: one more kill, then the start the daemon sweeps at
    if (interrupted) return 130
    await d.restart('sweep', 500)
    log(`last kill and start done; ${SWEEP} s for the daemon to sweep`)
    await sleep(SWEEP * 1000)
    await observe()

    // ---- live attachments ------------------------------------------------------------------------
    const live = w.registry.all()
    const kernel = new Map<string, string[]>()
    const wrong: string[] = []
    for (const a of live) {
      const got = await addressesOf(a)
      if (!got?.includes(a.address)) {
        wrong.push(`${a.key}: recorded ${a.address}, kernel ${got === undefined ? 'gone' : got.join(',') || 'none'}`)
      }
      for (const addr of got ?? []) kernel.set(addr, [...(kernel.get(addr) ?? []), a.key])
    }
    const kernelDuplicates = [...kernel].filter(([, ks]) => ks.length > 1)
    const checks = await Promise.all(
      live.filter((a) => a.kind === 'cni').map(async (a) => ({ a, r: await w.check(a) }))
    )
    const checkFailures = checks.filter((c) => c.r.code !== 0)

    // ---- teardown through the protocols ---------------------------------------------------------
    if (interrupted) return 130
    log(
      `teardown: ${live.length} live attachments, ${w.pendingCni.size} CNI DELs and ${w.pendingContainers.size + w.pendingNetworks.size} Docker removals left over`
    )
    const teardownFailures: string[] = []
    const cniToRemove = new Map([
      ...w.pendingCni,
      ...live.flatMap((a) => (a.cni === undefined ? [] : [[a.key, a.cni] as const]))
    ])
    for (const [key, c] of cniToRemove) if (!(await w.teardownCni(key, c))) teardownFailures.push(`cni DEL ${key}`)
    const containers = new Set([
      ...w.pendingContainers,
      ...live.filter((a) => a.kind === 'container').map((a) => a.key)
    ])
    for (const c of containers) {
      const r = await docker('rm', '-f', c)
      if (r.code !== 0 && !/No such container/i.test(r.stderr)) {
        teardownFailures.push(`docker rm -f ${c}: ${r.stderr.trim()}`)
      }
    }
    for (const n of [...w.pendingNetworks, ...dockerNets.map((x) => x.name)]) {
      const r = await docker('network', 'rm', n)
      if (r.code !== 0 && !/not found/i.test(r.stderr)) {
        teardownFailures.push(`docker network rm ${n}: ${r.stderr.trim()}`)
      }
    }
    await sleep(2_000)
    await observe()
    for (const t of timers) clearInterval(t)
    log('stopping the daemon (SIGTERM)')
    await p.kill('SIGTERM')

    // ---- leaks ----------------------------------------------------------------------------------
    const after = await hostLinks()
    const leakedLinks = after.filter(
      (l) =>
        isEndpointLink(l.ifname) &&
        !linksBefore.has(l.ifname) &&
        (ours.has(l.ifname) || w.hostIfNames.has(l.ifname) || l.master?.startsWith(bridgePrefix) === true)
    )
    const leakedBridges = after.filter((l) => l.ifname.startsWith(bridgePrefix) && l.ifname !== cniNet.bridge)
    const unattributed = after.filter(
      (l) => isEndpointLink(l.ifname) && !linksBefore.has(l.ifname) && !leakedLinks.includes(l)
    )
    const rules = await prefixedRules(p.chainPrefix)
    const keptTag = `isthmus:net:${cniNet.name}`
    const leakedRules = rules.filter((r) => r.tag !== undefined && r.tag !== keptTag)
    const state = readState(p.stateDir)
    const keptNetwork = state.networks.find((n) => n.id === cniNet.name)
    const keptPools = new Set(keptNetwork?.pools ?? [])
    const orphans = orphanLeases(state, new Set())
    const leftNetworks = state.networks.filter((n) => n !== keptNetwork)
    const leftPools = state.pools.filter((x) => !keptPools.has(x.id))
    const errorLines = p
      .logs()
      .split('\n')
      .filter((l) => l.includes('"level":"error"'))

    // ---- report ---------------------------------------------------------------------------------
    console.log('')
    console.log(
      `bench:soak ${prefix}: ${SECONDS} s, ${PARALLEL} jobs at a time, peak ${w.registry.peak} live attachments`
    )
    console.log('')
    console.log(
      `${pad('job', 36)}${padL('ok', 6)}${padL('failed', 8)}${padL('near a kill', 13)}${padL('p50 ms', 9)}${padL('p90 ms', 9)}`
    )
    for (const [kind, s] of [...w.stats.byKind].sort(([a], [b]) => a.localeCompare(b))) {
      console.log(
        `${pad(kind, 36)}${padL(s.ok, 6)}${padL(s.failed, 8)}${padL(s.failedNearKill, 13)}${padL(quantile(s.ms, 0.5), 9)}${padL(quantile(s.ms, 0.9), 9)}`
      )
    }
    for (const [kind, s] of w.stats.byKind) {
      for (const x of s.samples) console.log(`  failed far from a kill, ${kind}: ${x}`)
      for (const x of s.nearKillSamples) console.log(`  failed near a kill, ${kind}: ${x}`)
    }
    const byWhy = (why: string) => d.restarts.filter((r) => r.why === why)
    console.log('')
    console.log(
      `daemon: ${byWhy('kill').length} kills (SIGKILL) + 1 before the sweep; ${d.deaths.length} deaths of its own; answering again after start: p50 ${quantile(
        d.restarts.map((r) => r.startMs),
        0.5
      )} ms, max ${Math.max(0, ...d.restarts.map((r) => r.startMs))} ms`
    )
    for (const death of d.deaths) {
      console.log(`  died at ${death.t.toFixed(0)} s: ${death.lastLines.join(' | ').slice(0, 600)}`)
    }
    printMemory(d.samples)
    console.log(`error log lines: ${errorLines.length}`)
    for (const l of errorLines.slice(0, 5)) console.log(`  ${l.slice(0, 400)}`)

    const verdict = (ok: boolean, what: string, detail: ReadonlyArray<string> = []) => {
      console.log(`${ok ? 'ok    ' : 'BROKEN'} ${what}`)
      for (const x of detail.slice(0, 10)) console.log(`         ${x}`)
      if (detail.length > 10) console.log(`         … ${detail.length - 10} more`)
      if (!ok) findings.broken.push(what)
    }
    console.log('')
    verdict(
      w.registry.duplicates.length === 0,
      `duplicate addresses while running: ${w.registry.duplicates.length}`,
      w.registry.duplicates.map((x) => `${x.address}: ${x.holders.join(' and ')}`)
    )
    verdict(
      kernelDuplicates.length === 0,
      `duplicate addresses in the kernel at the end, across ${live.length} live containers and namespaces: ${kernelDuplicates.length}`,
      kernelDuplicates.map(([a, ks]) => `${a}: ${ks.join(', ')}`)
    )
    verdict(wrong.length === 0, `live attachments whose kernel address is not the one given: ${wrong.length}`, wrong)
    verdict(
      checkFailures.length === 0,
      `CNI CHECK of the ${checks.length} live attachments after the last restart, failed: ${checkFailures.length}`,
      checkFailures.map((c) => `${c.a.key} (${c.a.cni?.via}): ${c.r.stdout.trim().slice(0, 300)}`)
    )
    verdict(d.deaths.length === 0, `daemon deaths not caused by the bench: ${d.deaths.length}`)
    verdict(
      leakedLinks.length === 0,
      `leaked links (istv/istc of the run): ${leakedLinks.length}`,
      leakedLinks.map((l) => {
        const seen = ours.get(l.ifname)
        const first =
          seen === undefined
            ? 'named by a CNI result'
            : `first seen at ${seen.t} s${seen.master === undefined ? '' : ` on ${seen.master}`}${seen.alias === undefined ? ', no alias' : `, alias ${seen.alias}`}`
        return `${l.ifname}${l.master === undefined ? ', on no bridge' : ` on ${l.master}`}${l.ifalias === undefined ? '' : `, alias ${l.ifalias}`} (${first})`
      })
    )
    verdict(
      leakedBridges.length === 0,
      `leaked bridges of the run: ${leakedBridges.length}`,
      leakedBridges.map((l) => `${l.ifname}${l.ifalias === undefined ? '' : ` alias ${l.ifalias}`}`)
    )
    verdict(
      leakedRules.length === 0,
      `leaked iptables rules under ${p.chainPrefix}: ${leakedRules.length}`,
      leakedRules.map((r) => `${r.family === 4 ? 'iptables' : 'ip6tables'} -t ${r.table} ${r.text}`)
    )
    verdict(
      orphans.length === 0,
      `leaked leases (owner gone): ${orphans.length}`,
      orphans.map((l) => `${l.address} in ${l.poolId}, owner ${JSON.stringify(l.owner)}`)
    )
    verdict(
      state.endpoints.length + leftNetworks.length + leftPools.length === 0,
      `records left: ${state.endpoints.length} endpoints, ${leftNetworks.length} networks, ${leftPools.length} pools (the CNI network ${cniNet.name} is kept by design)`,
      [
        ...state.endpoints.map(
          (e) =>
            `endpoint ${e.id} on ${e.networkId} (${e.hostIfName}; ${w.endpointOf.get(e.id) ?? 'no docker run -d of the run'})`
        ),
        ...leftNetworks.map((n) => `network ${n.id} (bridge ${n.bridge ?? '-'})`),
        ...leftPools.map((x) => `pool ${x.id}`)
      ]
    )
    verdict(
      teardownFailures.length === 0,
      `teardown through the protocols, failed: ${teardownFailures.length}`,
      teardownFailures
    )
    console.log(
      `info   records quarantined: ${state.quarantined.length}${state.quarantined.length === 0 ? '' : ` (${state.quarantined.slice(0, 10).join(', ')})`}; unreadable record files: ${state.unreadable.length}`
    )
    if (unattributed.length > 0) {
      const shown = unattributed
        .slice(0, 10)
        .map(
          (l) =>
            `${l.ifname}${l.master === undefined ? '' : ` on ${l.master}`}${l.ifalias === undefined ? '' : ` alias ${l.ifalias}`}`
        )
      console.log(
        `info   new istv/istc links never seen on this run's bridges (another run on this host, or made and orphaned between two samples): ${unattributed.length}: ${shown.join('; ')}`
      )
    }
    console.log('')
    if (findings.broken.length > 0) {
      // the daemon's log of every life, for whoever looks into what broke (not removed)
      const file = join(tmpdir(), `${prefix}-daemon.log`)
      writeFileSync(file, p.logs())
      console.log(`the daemon's log lines (every life, debug): ${file}`)
    }
    console.log(findings.broken.length === 0 ? 'every invariant held' : `${findings.broken.length} invariant(s) broken`)
    return findings.broken.length === 0 ? 0 : 1
  } finally {
    for (const t of timers) clearInterval(t)
    workload?.stop()
    await cleanup({ prefix, bridgePrefix, plugin, workload, ours, linksBefore, daemonStartedHere: dockerd })
  }
}

/** The IPv4 addresses the kernel gives a live attachment; undefined when it is gone. */
const addressesOf = async (a: Attachment): Promise<ReadonlyArray<string> | undefined> => {
  if (a.cni !== undefined) return netnsAddresses(a.cni.netns)
  const pid = Number((await docker('inspect', '--format', '{{.State.Pid}}', a.key)).stdout.trim())
  return Number.isInteger(pid) && pid > 0 ? pidAddresses(pid) : undefined
}

/** RSS and descriptors at about a dozen moments, and per life of the daemon. */
const printMemory = (samples: ReadonlyArray<Sample>): void => {
  if (samples.length === 0) return
  console.log('')
  console.log('daemon memory over time (sampled every 2 s; each kill starts a new life):')
  console.log(`${padL('t s', 6)}${padL('life', 6)}${padL('RSS MiB', 10)}${padL('fds', 6)}`)
  const step = Math.max(1, Math.floor(samples.length / 12))
  for (let i = 0; i < samples.length; i += step) {
    const s = samples[i]!
    console.log(`${padL(s.t.toFixed(0), 6)}${padL(s.life, 6)}${padL(mib(s.rssKiB), 10)}${padL(s.fds, 6)}`)
  }
  const lives = new Map<number, Sample[]>()
  for (const s of samples) lives.set(s.life, [...(lives.get(s.life) ?? []), s])
  console.log('per life: first → max → last RSS MiB (seconds lived)')
  for (const [life, xs] of lives) {
    const rss = xs.map((x) => x.rssKiB)
    console.log(
      `  life ${life}: ${mib(rss[0]!)} → ${mib(Math.max(...rss))} → ${mib(rss.at(-1)!)} (${(xs.at(-1)!.t - xs[0]!.t).toFixed(0)} s)`
    )
  }
}

/** Remove everything the run made; never throws. */
const cleanup = async (o: {
  readonly prefix: string
  readonly bridgePrefix: string
  readonly plugin: PluginProcess | undefined
  readonly workload: Workload | undefined
  readonly ours: ReadonlyMap<string, unknown>
  readonly linksBefore: ReadonlySet<string>
  readonly daemonStartedHere: DockerDaemon | undefined
}): Promise<void> => {
  const quietly = async (what: string, f: () => Promise<unknown>) => {
    try {
      await f()
    } catch (e) {
      console.error(`cleanup: ${what}: ${causeText(e)}`)
    }
  }
  const w = o.workload
  // the daemon again (stopped, or ended by the Ctrl-C), so that dockerd can remove its endpoints and networks
  const dockerLeft =
    (await docker('ps', '-aq', '--filter', `name=^${o.prefix}`)).stdout.trim() +
    (await docker('network', 'ls', '-q', '--filter', `name=^${o.prefix}`)).stdout.trim()
  if (o.plugin !== undefined && dockerLeft !== '' && processSample(o.plugin.pid()) === undefined) {
    await quietly('restart the daemon', () => o.plugin!.start())
  }
  if (w !== undefined) {
    for (const a of w.registry.all()) if (a.cni !== undefined) w.pendingCni.set(a.key, a.cni)
    for (const [key, c] of w.pendingCni) {
      await quietly(`cni DEL ${key}`, () => w.teardownCni(key, { ...c, conf: { ...c.conf, daemon: false } }))
    }
  }
  await quietly('docker objects', () => removeDockerObjects(o.prefix))
  await quietly('the daemon, its chains, state directory and sockets', () => o.plugin?.dispose() ?? Promise.resolve())
  const netns = (await run(['ip', 'netns', 'list'])).stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(o.prefix))
  for (const n of netns) await run(['ip', 'netns', 'del', n])
  for (const l of await hostLinks().catch(() => [] as ReadonlyArray<HostLink>)) {
    const mine =
      l.ifname.startsWith(o.bridgePrefix) ||
      (isEndpointLink(l.ifname) &&
        !o.linksBefore.has(l.ifname) &&
        (o.ours.has(l.ifname) || w?.hostIfNames.has(l.ifname) === true))
    if (mine) await run(['ip', 'link', 'del', l.ifname])
  }
  await quietly('dockerd', () => o.daemonStartedHere?.stop() ?? Promise.resolve())
  console.log(`cleaned up: containers, networks, namespaces, links, chains and the state directory of ${o.prefix}`)
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (e: unknown) => {
    // eslint-disable-next-line no-restricted-syntax -- the stack, not causeText's message, is wanted here
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e))
    process.exitCode = 2
  }
)
