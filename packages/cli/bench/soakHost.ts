/**
 * What `pnpm bench:soak` reads from the host and the state directory to judge a run: links,
 * firewall rules, the addresses the kernel gives each sandbox, the daemon's memory, and the
 * records on disk (store-fs layout v1, read as files so that a record no codec accepts is counted,
 * not hidden). Everything here only reads.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { mustRun, run } from '@isthmus/testkit'

// -------------------------------------------------------------------------------------------------
// links
// -------------------------------------------------------------------------------------------------

/** One link of the host namespace as `ip -j -d link show` prints it (the fields read here). */
export interface HostLink {
  readonly ifname: string
  /** The bridge it is a port of. */
  readonly master?: string
  /** The peer of a veth still in this namespace (its name). */
  readonly link?: string
  readonly ifalias?: string
  readonly kind?: string
}

/** Every link of the host namespace. */
export const hostLinks = async (): Promise<ReadonlyArray<HostLink>> => {
  const out = (await mustRun(['ip', '-j', '-d', 'link', 'show'])).stdout
  return (
    JSON.parse(out) as Array<{
      ifname: string
      master?: string
      link?: string
      ifalias?: string
      linkinfo?: { info_kind?: string }
    }>
  ).map((l) => ({
    ifname: l.ifname,
    ...(l.master === undefined ? {} : { master: l.master }),
    ...(l.link === undefined ? {} : { link: l.link }),
    ...(l.ifalias === undefined ? {} : { ifalias: l.ifalias }),
    ...(l.linkinfo?.info_kind === undefined ? {} : { kind: l.linkinfo.info_kind })
  }))
}

/** Names of isthmus veth ends: `istv…` on the host side, `istc…` the sandbox side. */
export const isEndpointLink = (name: string): boolean => /^ist[vc]/.test(name)

// -------------------------------------------------------------------------------------------------
// firewall
// -------------------------------------------------------------------------------------------------

/** One rule of a chain under the run's prefix, with the owner tag isthmus puts in its comment. */
export interface PrefixedRule {
  readonly family: 4 | 6
  readonly table: string
  readonly text: string
  /** `isthmus:net:<id>` or `isthmus:ep:<veth>`; undefined for a rule without one (a jump). */
  readonly tag?: string
}

/** The rules of every chain whose name starts with `prefix` (`iptables-save`, both families). */
export const prefixedRules = async (prefix: string): Promise<ReadonlyArray<PrefixedRule>> => {
  const out: PrefixedRule[] = []
  for (const [family, save] of [
    [4, 'iptables-save'],
    [6, 'ip6tables-save']
  ] as const) {
    const r = await run([save])
    if (r.code !== 0) continue
    let table = ''
    for (const line of r.stdout.split('\n')) {
      if (line.startsWith('*')) table = line.slice(1)
      if (!line.startsWith(`-A ${prefix}-`)) continue
      const tag = /--comment "?(isthmus:(?:net|ep):[^"\s]+)/.exec(line)?.[1]
      out.push({ family, table, text: line, ...(tag === undefined ? {} : { tag }) })
    }
  }
  return out
}

/** Whether chains with `prefix` exist at all (a daemon makes them at its first network). */
export const chainsExist = async (prefix: string): Promise<boolean> =>
  (await run(['iptables-save'])).stdout.split('\n').some((l) => l.startsWith(`:${prefix}-`))

// -------------------------------------------------------------------------------------------------
// addresses in sandboxes, as the kernel has them
// -------------------------------------------------------------------------------------------------

const inet4 = (json: string): ReadonlyArray<string> =>
  (JSON.parse(json) as Array<{ ifname: string; addr_info?: Array<{ family: string; local: string }> }>)
    .filter((l) => l.ifname !== 'lo')
    .flatMap((l) => (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => a.local))

/** The IPv4 addresses of a named network namespace (loopback left out); undefined when it is gone. */
export const netnsAddresses = async (netns: string): Promise<ReadonlyArray<string> | undefined> => {
  const r = await run(['ip', '-n', netns, '-j', 'addr', 'show'])
  return r.code === 0 ? inet4(r.stdout) : undefined
}

/** The IPv4 addresses inside a running process's network namespace (a container's init). */
export const pidAddresses = async (pid: number): Promise<ReadonlyArray<string> | undefined> => {
  const r = await run(['nsenter', '-t', String(pid), '-n', 'ip', '-j', 'addr', 'show'])
  return r.code === 0 ? inet4(r.stdout) : undefined
}

// -------------------------------------------------------------------------------------------------
// the daemon's process
// -------------------------------------------------------------------------------------------------

/** Resident memory (VmRSS, KiB) and open descriptors of a process; undefined when it is gone. */
export const processSample = (pid: number): { readonly rssKiB: number; readonly fds: number } | undefined => {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    if (/^State:\s+Z/m.test(status)) return undefined
    const rss = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN)
    return { rssKiB: rss, fds: readdirSync(`/proc/${pid}/fd`).length }
  } catch {
    return undefined
  }
}

// -------------------------------------------------------------------------------------------------
// the state directory (store-fs layout v1)
// -------------------------------------------------------------------------------------------------

/** What the state directory holds: decoded enough to judge, and what could not be read. */
export interface StateView {
  readonly networks: ReadonlyArray<{
    readonly id: string
    readonly bridge?: string
    readonly pools: ReadonlyArray<string>
  }>
  readonly endpoints: ReadonlyArray<{ readonly id: string; readonly networkId: string; readonly hostIfName: string }>
  readonly pools: ReadonlyArray<{ readonly id: string; readonly subnet: string }>
  readonly leases: ReadonlyArray<{
    readonly address: string
    readonly poolId: string
    readonly owner: { readonly kind: string; readonly id?: string; readonly ref?: string }
  }>
  /** Record files that are not JSON envelopes with data (a torn write, a hand edit). */
  readonly unreadable: ReadonlyArray<string>
  /** Entries of `<stateDir>/v1/quarantine` (where the store moves records it cannot decode). */
  readonly quarantined: ReadonlyArray<string>
}

const recordFiles = (dir: string): ReadonlyArray<string> => {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.json') && !f.split('/').some((p) => p.startsWith('.')))
    .map((f) => join(dir, f))
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === 'object' && u !== null

/** Read the state directory's records as files. */
export const readState = (stateDir: string): StateView => {
  const root = join(stateDir, 'v1')
  const unreadable: string[] = []
  const data = (dir: string): ReadonlyArray<Record<string, unknown>> =>
    recordFiles(join(root, dir)).flatMap((file) => {
      try {
        const d = (JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown }).data
        if (isRecord(d)) return [d]
      } catch {
        // counted below
      }
      unreadable.push(file)
      return []
    })
  const networks = data('networks').map((n) => ({
    id: String(n['id']),
    ...(typeof n['bridge'] === 'string' ? { bridge: n['bridge'] } : {}),
    pools: [
      ...((n['ipv4'] as Array<{ poolId?: string }> | undefined) ?? []),
      ...((n['ipv6'] as Array<{ poolId?: string }> | undefined) ?? [])
    ].flatMap((s) => (s.poolId === undefined ? [] : [s.poolId]))
  }))
  const endpoints = data('endpoints').map((e) => ({
    id: String(e['id']),
    networkId: String(e['networkId']),
    hostIfName: String(e['hostIfName'])
  }))
  const pools = data('pools').map((p) => ({ id: String(p['id']), subnet: String(p['subnet']) }))
  const leases = data('leases').map((l) => ({
    address: String(l['address']),
    poolId: String(l['poolId']),
    owner: (l['owner'] ?? { kind: '?' }) as { kind: string; id?: string; ref?: string }
  }))
  const q = join(root, 'quarantine')
  const quarantined = existsSync(q) ? readdirSync(q, { recursive: true }).map(String) : []
  return { networks, endpoints, pools, leases, unreadable, quarantined }
}

/**
 * Leases whose owner no longer exists: an endpoint without its record, a pool's own address
 * (gateway, aux) without its pool, any lease of a pool that is gone, and a runtime reservation
 * (Docker's RequestAddress) whose address no live container of the run holds.
 */
export const orphanLeases = (s: StateView, liveDockerAddresses: ReadonlySet<string>): StateView['leases'] => {
  const endpoints = new Set(s.endpoints.map((e) => e.id))
  const pools = new Set(s.pools.map((p) => p.id))
  return s.leases.filter((l) => {
    if (!pools.has(l.poolId)) return true
    switch (l.owner.kind) {
      case 'endpoint':
        return !endpoints.has(l.owner.id ?? '')
      case 'runtime':
        return !liveDockerAddresses.has(l.address)
      default:
        return false
    }
  })
}
