/**
 * The workload of `pnpm bench:soak`: Docker containers (`docker run --rm`, `docker run -d` and
 * `rm -f`), Docker network churn (`network create`, one container, `network rm`), and CNI ADD,
 * CHECK and DEL of the built CNI executable into namespaces made here, on a network of its own and
 * on the Docker networks (`dockerNetwork`), each call either run by the executable itself
 * (`daemon: false`) or handed to the daemon. Jobs are picked at random, by weight.
 *
 * Every attachment that is up is in the `Registry` with the address it was given: a second live
 * holder of an address is recorded the moment it appears. An attachment counts as gone from the
 * moment its removal starts (its address may then be handed out again), and a `docker run --rm`
 * container from the moment its command says goodbye.
 *
 * A failed ADD is followed by DELs, as a runtime does; what cannot be removed now is kept for the
 * teardown. Failures are counted per job kind, apart for jobs that overlapped a daemon kill (a
 * failure then is the expected kind: the plugin was not there).
 */
import { spawn } from 'node:child_process'
import { causeText } from '@isthmus/core'
import { DOCKER, docker, run, type PluginProcess, type RunResult } from '@isthmus/testkit'

// -------------------------------------------------------------------------------------------------
// the registry of live attachments
// -------------------------------------------------------------------------------------------------

export interface Attachment {
  /** A container name or a CNI container id. */
  readonly key: string
  readonly kind: 'container' | 'cni'
  /** `docker run --rm`: removed by its own job. */
  readonly transient: boolean
  /** The Docker network, or the CNI network's name. */
  readonly network: string
  readonly address: string
  state: 'live' | 'busy' | 'removing'
  readonly cni?: CniAttachment
}

export interface CniAttachment {
  readonly netns: string
  readonly conf: Record<string, unknown>
  readonly result: Record<string, unknown>
  readonly via: Via
}

export type Via = 'standalone' | 'daemon'

export interface Duplicate {
  readonly address: string
  readonly holders: readonly [string, string]
}

export class Registry {
  private readonly items = new Map<string, Attachment>()
  readonly duplicates: Duplicate[] = []
  /** Most attachments live at once. */
  peak = 0

  add(a: Attachment): void {
    for (const other of this.items.values()) {
      if (other.state !== 'removing' && other.address === a.address) {
        this.duplicates.push({ address: a.address, holders: [other.key, a.key] })
      }
    }
    this.items.set(a.key, a)
    this.peak = Math.max(this.peak, this.items.size)
  }

  remove(key: string): void {
    this.items.delete(key)
  }

  /** A random live attachment of a kind (not transient), marked with `state`; undefined if none. */
  take(kind: Attachment['kind'], state: 'busy' | 'removing'): Attachment | undefined {
    const live = [...this.items.values()].filter((a) => a.kind === kind && !a.transient && a.state === 'live')
    const a = live[Math.floor(Math.random() * live.length)]
    if (a !== undefined) a.state = state
    return a
  }

  count(kind: Attachment['kind']): number {
    return [...this.items.values()].filter((a) => a.kind === kind && !a.transient).length
  }

  all(): ReadonlyArray<Attachment> {
    return [...this.items.values()]
  }
}

// -------------------------------------------------------------------------------------------------
// the daemon, as the jobs see it
// -------------------------------------------------------------------------------------------------

/** Kills and restarts, so that a job can tell whether one happened while it ran. */
export interface DaemonWatch {
  /** Incremented at every kill (ours, or a death of its own). */
  readonly epoch: () => number
  readonly down: () => boolean
  /** When the daemon last answered again after a restart (ms since epoch). */
  readonly upSince: () => number
}

// -------------------------------------------------------------------------------------------------
// counting outcomes
// -------------------------------------------------------------------------------------------------

export interface KindStats {
  ok: number
  failed: number
  /** Failures of jobs that overlapped a kill or started within 2 s after the restart. */
  failedNearKill: number
  readonly ms: number[]
  /** A few failure texts: first those far from any kill. */
  readonly samples: string[]
  readonly nearKillSamples: string[]
}

export class Stats {
  readonly byKind = new Map<string, KindStats>()

  of(kind: string): KindStats {
    let s = this.byKind.get(kind)
    if (s === undefined) {
      this.byKind.set(kind, (s = { ok: 0, failed: 0, failedNearKill: 0, ms: [], samples: [], nearKillSamples: [] }))
    }
    return s
  }
}

// -------------------------------------------------------------------------------------------------
// the jobs
// -------------------------------------------------------------------------------------------------

export interface SoakSetup {
  /** Prefix of every name the run makes (containers, networks, namespaces, container ids). */
  readonly prefix: string
  /** Prefix of the run's bridge names (short: 15 characters in all). */
  readonly bridgePrefix: string
  readonly plugin: PluginProcess
  readonly image: string
  /** The built CNI executable. */
  readonly sea: string
  /** Long-lived Docker networks on the plugin. */
  readonly dockerNets: ReadonlyArray<{ readonly name: string; readonly subnet: string }>
  /** A CNI network (conflist `name`, its bridge and subnet) in the daemon's state directory. */
  readonly cniNet: { readonly name: string; readonly bridge: string; readonly subnet: string }
  /** Subnets for Docker networks made and removed by the churn job, one network each at a time. */
  readonly churnSubnets: ReadonlyArray<string>
  readonly maxContainers: number
  readonly maxCni: number
}

const CNI_TIMEOUT_MS = 90_000
const DOCKER_TIMEOUT_MS = 120_000

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(Math.random() * xs.length)]!
const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim().slice(0, 600)

/** One call of the CNI executable; its exit code and stdout. */
export const cniCall = (
  sea: string,
  command: string,
  cid: string,
  netns: string,
  conf: Record<string, unknown>
): Promise<RunResult> =>
  run([sea], {
    input: JSON.stringify(conf),
    timeoutMs: CNI_TIMEOUT_MS,
    env: {
      PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: cid,
      CNI_NETNS: netns === '' ? '' : `/var/run/netns/${netns}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/usr/lib/cni'
    }
  })

const failureText = (r: RunResult): string => oneLine(`exit ${r.code}: ${r.stdout.trim() || r.stderr.trim()}`)

export class Workload {
  readonly registry = new Registry()
  readonly stats = new Stats()
  /** CNI attachments whose DEL failed and containers `rm -f` did not remove: for the teardown. */
  readonly pendingCni = new Map<string, CniAttachment>()
  readonly pendingContainers = new Set<string>()
  readonly pendingNetworks = new Set<string>()
  /** Names of every namespace made (the cleanup removes those still there). */
  readonly netnsMade = new Set<string>()
  /** Docker endpoint ids of `docker run -d` containers: who a record left over belonged to. */
  readonly endpointOf = new Map<string, string>()
  /** Host veth names CNI results named (to attribute links to this run). */
  readonly hostIfNames = new Set<string>()
  private readonly churnBusy = new Set<number>()
  private seq = 0
  private stopping = false

  constructor(
    private readonly s: SoakSetup,
    private readonly daemon: DaemonWatch
  ) {}

  stop(): void {
    this.stopping = true
  }

  /** `n` workers, each running random jobs until `stop`. */
  async run(n: number): Promise<void> {
    await Promise.all(
      Array.from({ length: n }, async () => {
        while (!this.stopping) await this.oneJob()
      })
    )
  }

  private next(): number {
    return this.seq++
  }

  /** Run `job` as kind `kind`: timed, counted, its failure classified. */
  private async counted(kind: string, job: () => Promise<string | undefined>): Promise<void> {
    const epoch = this.daemon.epoch()
    const started = Date.now()
    const nearAtStart = this.daemon.down() || started - this.daemon.upSince() < 2_000
    let failure: string | undefined
    try {
      failure = await job()
    } catch (e) {
      failure = causeText(e)
    }
    const st = this.stats.of(kind)
    st.ms.push(Date.now() - started)
    if (failure === undefined) {
      st.ok++
      return
    }
    st.failed++
    const near = nearAtStart || this.daemon.epoch() !== epoch
    if (near) {
      st.failedNearKill++
      if (st.nearKillSamples.length < 2) st.nearKillSamples.push(oneLine(failure))
    } else if (st.samples.length < 5) st.samples.push(oneLine(failure))
  }

  private async oneJob(): Promise<void> {
    const s = this.s
    const containers = this.registry.count('container')
    const cnis = this.registry.count('cni')
    const jobs: Array<readonly [number, () => Promise<void>]> = [
      [3, () => this.counted('docker run --rm', () => this.runRm(pick(s.dockerNets).name))],
      [
        containers < s.maxContainers ? 2 : 0,
        () => this.counted('docker run -d', () => this.runDetached(pick(s.dockerNets).name))
      ],
      [containers > 0 ? 2 : 0, () => this.counted('docker rm -f', () => this.removeContainer())],
      [
        this.churnBusy.size < s.churnSubnets.length ? 1 : 0,
        () => this.counted('network create+run+rm', () => this.churn())
      ],
      [cnis < s.maxCni ? 3 : 0, () => this.cniAdd('cni')],
      [cnis < s.maxCni ? 2 : 0, () => this.cniAdd('docker')],
      [cnis > 0 ? 3 : 0, () => this.counted('cni DEL', () => this.cniDel())],
      [cnis > 0 ? 2 : 0, () => this.counted('cni CHECK', () => this.cniCheck())]
    ]
    const total = jobs.reduce((a, [w]) => a + w, 0)
    let r = Math.random() * total
    for (const [w, job] of jobs) {
      if ((r -= w) < 0) return job()
    }
  }

  // ---- Docker ------------------------------------------------------------------------------------

  /** `docker run --rm` of a command that prints its address, waits 1 s and says goodbye. */
  private runRm(network: string): Promise<string | undefined> {
    const name = `${this.s.prefix}-r${this.next()}`
    return new Promise((resolve) => {
      const child = spawn(
        DOCKER,
        [
          'run',
          '--rm',
          '--name',
          name,
          '--net',
          network,
          this.s.image,
          'sh',
          '-c',
          'ip -4 -o addr show dev eth0; sleep 1; echo soak-bye'
        ],
        {
          stdio: ['ignore', 'pipe', 'pipe']
        }
      )
      let out = ''
      let err = ''
      let registered = false
      const timer = setTimeout(() => child.kill('SIGKILL'), DOCKER_TIMEOUT_MS)
      child.stdout.setEncoding('utf8')
      child.stderr.setEncoding('utf8')
      child.stdout.on('data', (c: string) => {
        out += c
        const address = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(out)?.[1]
        if (!registered && address !== undefined) {
          registered = true
          this.registry.add({ key: name, kind: 'container', transient: true, network, address, state: 'live' })
        }
        if (out.includes('soak-bye')) {
          const a = this.registry.all().find((x) => x.key === name)
          if (a !== undefined) a.state = 'removing'
        }
      })
      child.stderr.on('data', (c: string) => (err += c))
      child.on('close', (code) => {
        clearTimeout(timer)
        this.registry.remove(name)
        if (code === 0 && registered) return resolve(undefined)
        // a container that did not run to its end may still be there
        this.pendingContainers.add(name)
        void docker('rm', '-f', name).then((r) => {
          if (r.code === 0) this.pendingContainers.delete(name)
          resolve(oneLine(`exit ${code}: ${err.trim() || out.trim() || 'no address printed'}`))
        })
      })
    })
  }

  /** `docker run -d` of a container that stays until `docker rm -f`, sometimes publishing a port. */
  private async runDetached(network: string): Promise<string | undefined> {
    const name = `${this.s.prefix}-d${this.next()}`
    // loopback only, and a port range outside the kernel's ephemeral one; no traffic is sent
    const publish = Math.random() < 0.3 ? ['-p', `127.0.0.1:${61_000 + Math.floor(Math.random() * 1_000)}:80`] : []
    const r = await run(
      [DOCKER, 'run', '-d', '--name', name, '--net', network, ...publish, this.s.image, 'sleep', '3600'],
      { timeoutMs: DOCKER_TIMEOUT_MS }
    )
    if (r.code !== 0) {
      if ((await docker('rm', '-f', name)).code !== 0) this.pendingContainers.add(name)
      return failureText(r)
    }
    const i = await docker(
      'inspect',
      '--format',
      `{{with index .NetworkSettings.Networks "${network}"}}{{.IPAddress}} {{.EndpointID}}{{end}}`,
      name
    )
    const [address = '', endpointId = ''] = i.stdout.trim().split(' ')
    this.endpointOf.set(endpointId, `container ${name}${publish.length > 0 ? ` (${publish[1]})` : ''}`)
    if (i.code !== 0 || address === '') {
      if ((await docker('rm', '-f', name)).code !== 0) this.pendingContainers.add(name)
      return `running, but docker inspect shows no address: ${failureText(i)}`
    }
    this.registry.add({ key: name, kind: 'container', transient: false, network, address, state: 'live' })
    return undefined
  }

  private async removeContainer(): Promise<string | undefined> {
    const a = this.registry.take('container', 'removing')
    if (a === undefined) return undefined
    const r = await docker('rm', '-f', a.key)
    this.registry.remove(a.key)
    if (r.code === 0) return undefined
    this.pendingContainers.add(a.key)
    return failureText(r)
  }

  /** A Docker network made, used by one `docker run --rm`, and removed. */
  private async churn(): Promise<string | undefined> {
    const slot = this.s.churnSubnets.findIndex((_, i) => !this.churnBusy.has(i))
    if (slot < 0) return undefined
    this.churnBusy.add(slot)
    const name = `${this.s.prefix}-x${this.next()}`
    const bridge = `${this.s.bridgePrefix}x${slot.toString(16)}`
    const p = this.s.plugin.name
    const made = await run(
      [
        DOCKER,
        'network',
        'create',
        '-d',
        p,
        '--ipam-driver',
        p,
        '--subnet',
        this.s.churnSubnets[slot]!,
        '-o',
        `com.docker.network.bridge.name=${bridge}`,
        name
      ],
      {
        timeoutMs: DOCKER_TIMEOUT_MS
      }
    )
    let failure = made.code === 0 ? await this.runRm(name) : `network create: ${failureText(made)}`
    const removed = await docker('network', 'rm', name)
    if (removed.code !== 0 && (await docker('network', 'inspect', name)).code === 0) {
      // still there: the slot stays taken until the teardown removes it
      this.pendingNetworks.add(name)
      failure ??= `network rm: ${failureText(removed)}`
      return failure
    }
    this.churnBusy.delete(slot)
    return failure
  }

  // ---- CNI ---------------------------------------------------------------------------------------

  private conf(target: 'cni' | 'docker', via: Via): Record<string, unknown> {
    const s = this.s
    const common = {
      cniVersion: '1.0.0',
      type: 'isthmus',
      stateDir: s.plugin.stateDir,
      chainPrefix: s.plugin.chainPrefix,
      daemon: via === 'daemon' ? s.plugin.cniSocket : false
    }
    return target === 'cni'
      ? { ...common, name: s.cniNet.name, bridge: s.cniNet.bridge, ipam: { ranges: [[{ subnet: s.cniNet.subnet }]] } }
      : { ...common, name: `${s.prefix}-dn`, dockerNetwork: { network: pick(s.dockerNets).name } }
  }

  private cniAdd(target: 'cni' | 'docker'): Promise<void> {
    const via: Via = Math.random() < 0.5 ? 'standalone' : 'daemon'
    return this.counted(`cni ADD ${target === 'cni' ? 'cni network' : 'docker network'}, ${via}`, async () => {
      const key = `${this.s.prefix}-k${this.next()}`
      const made = await run(['ip', 'netns', 'add', key])
      if (made.code !== 0) return `ip netns add: ${failureText(made)}`
      this.netnsMade.add(key)
      const conf = this.conf(target, via)
      const network = String(target === 'cni' ? conf['name'] : (conf['dockerNetwork'] as { network: string }).network)
      const r = await cniCall(this.s.sea, 'ADD', key, key, conf)
      let result: Record<string, unknown> | undefined
      try {
        result = r.code === 0 ? (JSON.parse(r.stdout) as Record<string, unknown>) : undefined
      } catch {
        result = undefined
      }
      const address =
        String((result?.['ips'] as Array<{ address?: string }> | undefined)?.[0]?.address ?? '').split('/')[0] ?? ''
      const attachment: CniAttachment = { netns: key, conf, result: result ?? {}, via }
      if (result === undefined || address === '') {
        // as a runtime does after a failed ADD: DEL until it succeeds
        await this.delUntilGone(key, attachment)
        return `ADD ${failureText(r)}`
      }
      for (const i of (result['interfaces'] as Array<{ name?: string; sandbox?: string }> | undefined) ?? []) {
        if (i.name !== undefined && i.sandbox === undefined) this.hostIfNames.add(i.name)
      }
      this.registry.add({ key, kind: 'cni', transient: false, network, address, state: 'live', cni: attachment })
      return undefined
    })
  }

  /** DEL (a few tries); on success the namespace goes too, else both wait for the teardown. */
  private async delUntilGone(key: string, a: CniAttachment, tries = 3): Promise<string | undefined> {
    let last: RunResult | undefined
    for (let i = 0; i < tries; i++) {
      if (i > 0) await sleep(1_000)
      last = await cniCall(this.s.sea, 'DEL', key, a.netns, a.conf)
      if (last.code === 0) {
        this.pendingCni.delete(key)
        await run(['ip', 'netns', 'del', a.netns])
        this.netnsMade.delete(a.netns)
        return undefined
      }
    }
    this.pendingCni.set(key, a)
    return `DEL ${failureText(last!)}`
  }

  private async cniDel(): Promise<string | undefined> {
    const a = this.registry.take('cni', 'removing')
    if (a?.cni === undefined) return undefined
    const failure = await this.delUntilGone(a.key, a.cni)
    this.registry.remove(a.key)
    return failure
  }

  private async cniCheck(): Promise<string | undefined> {
    const a = this.registry.take('cni', 'busy')
    if (a?.cni === undefined) return undefined
    try {
      const r = await cniCall(this.s.sea, 'CHECK', a.key, a.cni.netns, { ...a.cni.conf, prevResult: a.cni.result })
      return r.code === 0 ? undefined : `CHECK ${failureText(r)}`
    } finally {
      a.state = 'live'
    }
  }

  /** CHECK one attachment (the end-of-run check of every live one). */
  check(a: Attachment): Promise<RunResult> {
    return cniCall(this.s.sea, 'CHECK', a.key, a.cni!.netns, { ...a.cni!.conf, prevResult: a.cni!.result })
  }

  /** DEL one attachment, for the teardown; true when it is gone. */
  async teardownCni(key: string, a: CniAttachment): Promise<boolean> {
    return (await this.delUntilGone(key, a, 5)) === undefined
  }
}
