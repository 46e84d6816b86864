/**
 * Inspection: read-only views of what the store holds, for the frontends' inspection answers
 * (the plugin socket's `IpamDriver.Leases`, `Networks`, `Metrics`; `isthmus leases`, `isthmus
 * networks`). They read the store only, so they take just `{ store }`: a CLI reading a state
 * directory needs no dataplane, and any full `Env` serves as well.
 */
import * as E from 'fp-ts/lib/Either.js'
import type * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { invalidConfig, notFound, type CoreError } from '../errors.js'
import type { AddressSpace, ContainerId, EndpointId, IfName, NetworkId, PoolId, SandboxKey } from '../ids.js'
import type { Cidr, Family, IpAddress, MacAddress, Subnet } from '../model/Address.js'
import type { Endpoint, EndpointOwner } from '../model/Endpoint.js'
import { ownerText, type IpRange, type Lease, type LeaseOwner, type Pool } from '../model/Ipam.js'
import type { Network } from '../model/Network.js'
import type { Env } from '../ports/Env.js'
import { excludedOf } from '../ipam/Pools.js'
import { indexOf, usableSpan } from '../ipam/Range.js'

/** A flow that reads the store and nothing else; any `Flow`'s Env serves. @category flows */
export type StoreQuery<A> = RTE.ReaderTaskEither<Pick<Env, 'store'>, CoreError, A>

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** One address of an attachment. @category inspection */
export interface AttachmentAddress {
  readonly cidr: Cidr
  readonly poolId?: PoolId
  readonly gateway?: IpAddress
}

/** One live attachment: exactly one endpoint record. @category inspection */
export interface Attachment {
  readonly endpointId: EndpointId
  /** CNI: (container id, ifName); Docker: its endpoint id. */
  readonly owner: EndpointOwner
  /** CNI: the owner's; Docker never names the container to its plugin. */
  readonly containerId?: ContainerId
  readonly networkId: NetworkId
  /** Absent only when the network record is gone (the endpoint outlived it). */
  readonly networkName?: string
  readonly addresses: ReadonlyArray<AttachmentAddress>
  readonly mac?: MacAddress
  readonly hostIfName: IfName
  /** Set once joined (Docker Join, CNI ADD). */
  readonly sandbox?: SandboxKey
  readonly sandboxIfName?: IfName
  /** The endpoint record's `createdAt`. */
  readonly since: string
}

/**
 * Why an address is held when no attachment holds it: the network's gateway, an auxiliary
 * address, the runtime's own IPAM call not yet bound to an endpoint (Docker RequestAddress before
 * CreateEndpoint), or an endpoint that has no record (one being created right now, or left by a
 * crash: gc releases it).
 *
 * @category inspection
 */
export type ReservationKind = 'gateway' | 'aux' | 'runtime' | 'orphan'

/** An address held by something other than a live attachment. @category inspection */
export interface Reservation {
  readonly kind: ReservationKind
  readonly address: IpAddress
  readonly addressSpace: AddressSpace
  readonly poolId: PoolId
  /** The network whose subnet the pool backs; absent for a pool no isthmus network uses. */
  readonly networkId?: NetworkId
  readonly networkName?: string
  /** The lease owner in words (`the gateway`, `auxiliary address printer`, `endpoint <id>`). */
  readonly holder: string
  /** aux: its name; runtime: the runtime's reference; orphan: the endpoint id. */
  readonly ref?: string
  readonly mac?: MacAddress
  readonly since: string
}

/** @category inspection */
export interface LeasesView {
  /** Exactly the live attachments: one per endpoint record. */
  readonly attachments: ReadonlyArray<Attachment>
  /** Every other held address. */
  readonly reserved: ReadonlyArray<Reservation>
}

/** @category inspection */
export interface LeasesFilter {
  /** A network id, name or unambiguous id prefix. */
  readonly network?: string
}

/**
 * A pool and how full it is. `size` counts the addresses the pool may hand out by itself (its
 * subnet or ranges, less network, broadcast and excluded addresses); `used` the leases among
 * them (the gateway's included); `leased` every lease of the pool, also an address given
 * explicitly outside its ranges (Docker --ip beside --ip-range).
 *
 * @category inspection
 */
export interface PoolUsage {
  readonly poolId: PoolId
  readonly addressSpace: AddressSpace
  readonly subnet: Subnet
  readonly family: Family
  readonly ranges: ReadonlyArray<IpRange>
  readonly gateway?: IpAddress
  readonly size: bigint
  readonly used: number
  readonly free: bigint
  readonly leased: number
}

/** One subnet of a network as recorded. @category inspection */
export interface NetworkSubnetView {
  readonly subnet: Subnet
  readonly gateway?: IpAddress
  /** Absent when another IPAM assigns the addresses (isthmus only records them). */
  readonly poolId?: PoolId
}

/** @category inspection */
export interface NetworkView {
  readonly id: NetworkId
  readonly name: string
  readonly addressSpace: AddressSpace
  readonly subnets: ReadonlyArray<NetworkSubnetView>
  readonly pools: ReadonlyArray<PoolUsage>
  readonly bridge?: IfName
  readonly mtu?: number
  readonly internal: boolean
  readonly ipMasquerade: boolean
  readonly endpoints: number
  readonly createdAt: string
}

/** @category inspection */
export interface NetworksView {
  readonly networks: ReadonlyArray<NetworkView>
  /** Pools no isthmus network uses: Docker networks of another driver on isthmus's IPAM. */
  readonly otherPools: ReadonlyArray<PoolUsage>
}

/** Leases by who holds them. @category inspection */
export type LeaseCounts = Readonly<Record<'attachment' | ReservationKind, number>>

/** The numbers a metrics endpoint exports. @category inspection */
export interface InspectSummary {
  readonly networks: number
  readonly endpoints: number
  readonly leases: LeaseCounts
  readonly pools: ReadonlyArray<PoolUsage>
}

// -------------------------------------------------------------------------------------
// reading the store
// -------------------------------------------------------------------------------------

interface Snapshot {
  readonly networks: ReadonlyArray<Network>
  readonly endpoints: ReadonlyArray<Endpoint>
  readonly pools: ReadonlyArray<Pool>
  readonly leases: ReadonlyArray<Lease>
}

// The store lists leases per address space only: the spaces are those of the pools (a lease
// always names its pool) and of the networks.
const leasesOf = (
  env: Pick<Env, 'store'>,
  spaces: ReadonlyArray<AddressSpace>
): TE.TaskEither<CoreError, ReadonlyArray<Lease>> =>
  pipe(
    [...new Set(spaces)].sort(),
    TE.traverseSeqArray((s) => env.store.leases.list(s)),
    TE.map((all) => all.flat())
  )

const snapshot: StoreQuery<Snapshot> = (env) =>
  pipe(
    TE.Do,
    TE.bind('networks', () => env.store.networks.list()),
    TE.bind('endpoints', () => env.store.endpoints.list()),
    TE.bind('pools', () => env.store.pools.list()),
    TE.bind('leases', ({ networks, pools }) =>
      leasesOf(env, [...pools.map((p) => p.addressSpace), ...networks.map((n) => n.addressSpace)])
    )
  )

const byString =
  <A>(key: (a: A) => string) =>
  (a: A, b: A): number => {
    const x = key(a)
    const y = key(b)
    return x < y ? -1 : x > y ? 1 : 0
  }

/** The network `ref` names: its id, its name, or a prefix of exactly one id. @category inspection */
export const resolveNetwork = (networks: ReadonlyArray<Network>, ref: string): E.Either<CoreError, Network> => {
  const exact = networks.find((n) => n.id === ref) ?? networks.find((n) => n.name === ref)
  if (exact !== undefined) return E.right(exact)
  const prefixed = ref === '' ? [] : networks.filter((n) => n.id.startsWith(ref))
  if (prefixed.length === 1) return E.right(prefixed[0]!)
  return prefixed.length === 0
    ? E.left(notFound('network', ref))
    : E.left(invalidConfig(`network ${ref} is ambiguous: it starts ${prefixed.length} network ids`))
}

const poolIdsOf = (n: Network): ReadonlyArray<PoolId> =>
  [...n.ipv4, ...n.ipv6].flatMap((s) => (s.poolId === undefined ? [] : [s.poolId]))

// -------------------------------------------------------------------------------------
// views
// -------------------------------------------------------------------------------------

const attachmentOf =
  (networks: ReadonlyMap<string, Network>) =>
  (e: Endpoint): Attachment => {
    const network = networks.get(e.networkId)
    // Docker never names the container of an endpoint to its plugin; a CNI owner does.
    const containerId = e.owner.kind === 'container' ? e.owner.containerId : undefined
    return {
      endpointId: e.id,
      owner: e.owner,
      ...(containerId === undefined ? {} : { containerId }),
      networkId: e.networkId,
      ...(network === undefined ? {} : { networkName: network.name }),
      addresses: e.addresses.map((a) => ({
        cidr: a.cidr,
        ...(a.poolId === undefined ? {} : { poolId: a.poolId }),
        ...(a.gateway === undefined ? {} : { gateway: a.gateway })
      })),
      ...(e.mac === undefined ? {} : { mac: e.mac }),
      hostIfName: e.hostIfName,
      ...(e.sandbox === undefined ? {} : { sandbox: e.sandbox }),
      ...(e.sandboxIfName === undefined ? {} : { sandboxIfName: e.sandboxIfName }),
      since: e.createdAt
    }
  }

// A lease is an attachment's when its owner is an endpoint with a record; anything else is a
// reservation of the kind its owner says.
const reservationKind = (o: LeaseOwner, endpoints: ReadonlySet<string>): ReservationKind | undefined => {
  switch (o.kind) {
    case 'endpoint':
      return endpoints.has(o.id) ? undefined : 'orphan'
    case 'gateway':
      return 'gateway'
    case 'aux':
      return 'aux'
    case 'runtime':
      return 'runtime'
  }
}

const refOf = (o: LeaseOwner): string | undefined =>
  o.kind === 'aux' ? o.name : o.kind === 'runtime' ? o.ref : o.kind === 'endpoint' ? o.id : undefined

/**
 * How full a pool is, from its leases (any list that holds at least the pool's own).
 *
 * @category inspection
 */
export const usageOf = (pool: Pool, leases: ReadonlyArray<Lease>): E.Either<CoreError, PoolUsage> =>
  pipe(
    usableSpan({ subnet: pool.subnet, ranges: pool.ranges, excluded: excludedOf(pool) }),
    E.map((span) => {
      const mine = leases.filter((l) => l.poolId === pool.id)
      const used = mine.filter((l) => indexOf(span, l.address) !== undefined).length
      const free = span.size - BigInt(used)
      return {
        poolId: pool.id,
        addressSpace: pool.addressSpace,
        subnet: pool.subnet,
        family: pool.family,
        ranges: pool.ranges,
        ...(pool.gateway === undefined ? {} : { gateway: pool.gateway }),
        size: span.size,
        used,
        free: free < 0n ? 0n : free,
        leased: mine.length
      }
    })
  )

const usagesOf = (s: Snapshot): E.Either<CoreError, ReadonlyArray<PoolUsage>> =>
  pipe(
    [...s.pools].sort(byString((p) => p.id)),
    E.traverseArray((p) => usageOf(p, s.leases))
  )

const leasesView = (s: Snapshot, filter: LeasesFilter): E.Either<CoreError, LeasesView> => {
  const scope = filter.network === undefined ? E.right(undefined) : resolveNetwork(s.networks, filter.network)
  if (E.isLeft(scope)) return scope
  const only = scope.right
  const networks = new Map(s.networks.map((n) => [n.id as string, n]))
  const networkOfPool = new Map<string, Network>()
  for (const n of s.networks) for (const p of poolIdsOf(n)) networkOfPool.set(p, n)
  const endpointIds = new Set<string>(s.endpoints.map((e) => e.id))

  const attachments = s.endpoints
    .filter((e) => only === undefined || e.networkId === only.id)
    .map(attachmentOf(networks))
    .sort(byString((a) => `${a.networkId} ${a.endpointId}`))
  const reserved = s.leases.flatMap((l): ReadonlyArray<Reservation> => {
    const kind = reservationKind(l.owner, endpointIds)
    const network = networkOfPool.get(l.poolId)
    if (kind === undefined || (only !== undefined && network?.id !== only.id)) return []
    const ref = refOf(l.owner)
    return [
      {
        kind,
        address: l.address,
        addressSpace: l.addressSpace,
        poolId: l.poolId,
        ...(network === undefined ? {} : { networkId: network.id, networkName: network.name }),
        holder: ownerText(l.owner),
        ...(ref === undefined ? {} : { ref }),
        ...(l.mac === undefined ? {} : { mac: l.mac }),
        since: l.since
      }
    ]
  })
  return E.right({ attachments, reserved: [...reserved].sort(byString((r) => `${r.poolId} ${r.address}`)) })
}

const networksView = (s: Snapshot): E.Either<CoreError, NetworksView> =>
  pipe(
    usagesOf(s),
    E.map((usages) => {
      const used = new Set<string>()
      const networks = [...s.networks].sort(byString((n) => n.name)).map((n): NetworkView => {
        const ids = poolIdsOf(n)
        for (const id of ids) used.add(id)
        return {
          id: n.id,
          name: n.name,
          addressSpace: n.addressSpace,
          subnets: [...n.ipv4, ...n.ipv6].map((x) => ({
            subnet: x.subnet,
            ...(x.gateway === undefined ? {} : { gateway: x.gateway }),
            ...(x.poolId === undefined ? {} : { poolId: x.poolId })
          })),
          pools: usages.filter((u) => ids.includes(u.poolId)),
          ...(n.bridge === undefined ? {} : { bridge: n.bridge }),
          ...(n.mtu === undefined ? {} : { mtu: n.mtu }),
          internal: n.internal,
          ipMasquerade: n.ipMasquerade,
          endpoints: s.endpoints.filter((e) => e.networkId === n.id).length,
          createdAt: n.createdAt
        }
      })
      return { networks, otherPools: usages.filter((u) => !used.has(u.poolId)) }
    })
  )

const summaryOf = (s: Snapshot): E.Either<CoreError, InspectSummary> =>
  pipe(
    usagesOf(s),
    E.map((pools) => {
      const endpointIds = new Set<string>(s.endpoints.map((e) => e.id))
      const leases = { attachment: 0, gateway: 0, aux: 0, runtime: 0, orphan: 0 }
      for (const l of s.leases) leases[reservationKind(l.owner, endpointIds) ?? 'attachment']++
      return { networks: s.networks.length, endpoints: s.endpoints.length, leases, pools }
    })
  )

// -------------------------------------------------------------------------------------
// queries
// -------------------------------------------------------------------------------------

const fromSnapshot =
  <A>(f: (s: Snapshot) => E.Either<CoreError, A>): StoreQuery<A> =>
  (env) =>
    pipe(snapshot(env), TE.chainEitherK(f))

/**
 * The live attachments and every other held address, optionally of one network (NotFound for
 * a name that matches none).
 *
 * @category inspection
 */
export const inspectLeases = (filter: LeasesFilter = {}): StoreQuery<LeasesView> =>
  fromSnapshot((s) => leasesView(s, filter))

/** Every network with its subnets, pools and usage, and the pools no network uses. @category inspection */
export const inspectNetworks: StoreQuery<NetworksView> = fromSnapshot(networksView)

/** Counts of networks, endpoints and leases, and each pool's usage. @category inspection */
export const inspectSummary: StoreQuery<InspectSummary> = fromSnapshot(summaryOf)
