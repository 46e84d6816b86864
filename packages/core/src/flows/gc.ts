/**
 * gc: remove what no live attachment owns (CNI GC, `cni.dev/valid-attachments`; a plugin
 * restart's clean-up). It keeps going past individual failures and reports them all.
 */
import * as O from 'fp-ts/lib/Option.js'
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type { CoreError } from '../errors.js'
import {
  HOST_IF_PREFIX,
  isIfName,
  PEER_IF_PREFIX,
  type AddressSpace,
  type ContainerId,
  type EndpointId,
  type IfName,
  type NetworkId,
  type PoolId
} from '../ids.js'
import type { IpAddress } from '../model/Address.js'
import type { Endpoint } from '../model/Endpoint.js'
import type { Lease } from '../model/Ipam.js'
import type { Network } from '../model/Network.js'
import type { DataplaneInventory } from '../ports/Dataplane.js'
import type { Env, Flow } from '../ports/Env.js'
import { call } from './call.js'
import { deleteEndpoint } from './deleteEndpoint.js'
import { getEndpoint, getNetwork, listEndpoints, locked, lockedEndpoint } from './records.js'

/** One attachment the runtime still uses: CNI (containerID, ifname). @category flows */
export interface GcAttachment {
  readonly containerId: ContainerId
  readonly ifName: IfName
}

/** @category flows */
export interface GcOptions {
  /** The network to collect; all stored networks when absent. */
  readonly networkId?: NetworkId
  /**
   * The attachments to keep; every other container attachment of the networks is deleted.
   * `'keep-all-endpoints'` deletes none and only collects orphans (a plugin restart).
   * Docker-owned endpoints are always kept: Docker never tells which of them it still uses.
   */
  readonly valid: ReadonlyArray<GcAttachment> | 'keep-all-endpoints'
  /**
   * An endpoint with no record whose lease was taken less than this long ago (by `env.clock`) is
   * left alone, its leases and its links: it may be a Docker endpoint being created by the
   * daemon, whose lock is the daemon's own (see `gc`). 0 (the default) in the daemon itself.
   */
  readonly leaseGraceMs?: number
  /**
   * Which networks only this caller ever makes (the daemon: Docker's, named by 64 hex digits).
   * A host device the dataplane shows as its own (`DataplaneInventory.devices`) for such a network
   * with no record is what a creation cut short left (the daemon killed inside CreateNetwork,
   * whose failure dockerd then forgets): it is removed, under the network's lock, after reading
   * again that there is no record. Without it no device is removed: a network of another state
   * directory may use the same dataplane.
   */
  readonly orphanDevices?: (id: NetworkId) => boolean
}

/** @category flows */
export interface ReleasedLease {
  readonly addressSpace: AddressSpace
  readonly address: IpAddress
  readonly endpointId: EndpointId
}

/** Something gc tried and could not do; `target` names the endpoint, lease, link or listing. @category flows */
export interface GcFailure {
  readonly step: 'endpoint' | 'leases' | 'lease' | 'inventory' | 'link' | 'device'
  readonly target: string
  readonly error: CoreError
}

/** @category flows */
export interface GcReport {
  readonly endpointsRemoved: ReadonlyArray<EndpointId>
  readonly leasesReleased: ReadonlyArray<ReleasedLease>
  readonly linksRemoved: ReadonlyArray<IfName>
  /** Host devices of networks with no record (`orphanDevices`). */
  readonly devicesRemoved: ReadonlyArray<IfName>
  /**
   * What failed, in order. gc itself succeeds once it could list the networks and endpoints; a
   * frontend that must fail (CNI GC: "keep going on errors and report them") maps `failures[0]`.
   */
  readonly failures: ReadonlyArray<GcFailure>
}

/**
 * Collect garbage.
 *
 * Steps: 1. the networks in scope, 2. each container attachment of them not in `valid` is
 * deleted as a DEL would, 3. the orphans: leases of those networks' pools held by an endpoint with
 * no record, and links of ours (`istv…`, `istc…`) on their devices that no stored endpoint owns,
 * 4. each orphan endpoint's links are removed and then its leases released (an address is never
 * free while a link that carried it is still there), 5. links that name no endpoint are removed,
 * 6. with `orphanDevices`, the host devices of networks with no record, each under its network's
 * lock.
 * Orphans are judged against the endpoints of EVERY network: a lease or link of an endpoint on
 * another network is not an orphan.
 *
 * In flight: an endpoint creation holds its endpoint's lock from its addresses to its record
 * (createEndpoint), and the dataplane names the endpoint each link was made for
 * (`DataplaneInventory.endpoints`). Step 4 works on one endpoint at a time under that lock, after
 * reading again that it has no record, so an ADD running in another process at that moment is
 * waited for rather than swept (the daemon's gc at start, a CNI GC). A Docker endpoint's lock is
 * the daemon's own (LockScope `process`), which a gc in another process does not see: there
 * `leaseGraceMs` leaves an endpoint whose lease is young. A link that names no endpoint was made
 * by an older isthmus or by hand; the Linux dataplane looks at such links twice, a second apart,
 * so a pair whose name is still being written is not one of them.
 *
 * @category flows
 */
export const gc = (options: GcOptions): Flow<GcReport> =>
  pipe(
    RTE.Do,
    // 1. The networks in scope.
    RTE.bind('networks', () => networksInScope(options.networkId)),
    // 2. Attachments the runtime no longer has.
    RTE.bind('endpoints', ({ networks }) => removeStale(networks, options.valid)),
    // 3. Orphans, judged by what is stored now, on any network.
    RTE.bind('remaining', () => listEndpoints),
    RTE.bind('orphans', ({ networks, remaining }) =>
      findOrphans(networks, remaining, options.leaseGraceMs ?? 0, options.orphanDevices)
    ),
    // 4. and 5.
    RTE.bind('swept', ({ orphans }) => sweep(orphans)),
    // 6. Devices of networks with no record.
    RTE.bind('devices', ({ orphans }) => removeDevices(orphans.devices)),
    RTE.map(({ endpoints, orphans, swept, devices }): GcReport => ({
      endpointsRemoved: endpoints.done,
      leasesReleased: swept.leases,
      linksRemoved: swept.links,
      devicesRemoved: devices.done.filter((d): d is IfName => d !== undefined),
      failures: [...endpoints.failed, ...orphans.failed, ...swept.failed, ...devices.failed]
    }))
  )

// -------------------------------------------------------------------------------------
// steps
// -------------------------------------------------------------------------------------

interface Outcome<A> {
  readonly done: ReadonlyArray<A>
  readonly failed: ReadonlyArray<GcFailure>
}

const outcome = <A>(done: ReadonlyArray<A>, failed: ReadonlyArray<GcFailure>): Outcome<A> => ({ done, failed })

/** Try `f` on each item in turn; a failure is recorded and the next item is tried. */
const eachOf =
  <T, A>(step: GcFailure['step'], target: (t: T) => string, f: (t: T) => Flow<A>) =>
  (items: ReadonlyArray<T>): Flow<Outcome<A>> =>
    pipe(
      items,
      RTE.traverseSeqArray((t) =>
        pipe(
          f(t),
          RTE.map((a): Outcome<A> => outcome([a], [])),
          RTE.orElse((error) => RTE.right(outcome<A>([], [{ step, target: target(t), error }])))
        )
      ),
      RTE.map((all) =>
        outcome(
          all.flatMap((o) => o.done),
          all.flatMap((o) => o.failed)
        )
      )
    )

const networksInScope = (id: NetworkId | undefined): Flow<ReadonlyArray<Network>> =>
  id === undefined
    ? (env) => env.store.networks.list()
    : pipe(
        getNetwork(id),
        RTE.map((o) => (o._tag === 'Some' ? [o.value] : []))
      )

const removeStale = (networks: ReadonlyArray<Network>, valid: GcOptions['valid']): Flow<Outcome<EndpointId>> => {
  const inScope = new Set<string>(networks.map((n) => n.id))
  const stale = (e: Endpoint): boolean =>
    valid !== 'keep-all-endpoints' &&
    inScope.has(e.networkId) &&
    e.owner.kind === 'container' &&
    !valid.some(
      (v) => e.owner.kind === 'container' && v.containerId === e.owner.containerId && v.ifName === e.owner.ifName
    )
  return pipe(
    listEndpoints,
    RTE.map((all) => all.filter(stale)),
    RTE.chain(
      eachOf(
        'endpoint',
        (e) => e.id,
        (e) =>
          pipe(
            deleteEndpoint(e.id),
            RTE.map(() => e.id)
          )
      )
    )
  )
}

interface PoolRef {
  readonly space: AddressSpace
  readonly pool: PoolId
}

type EndpointLease = Lease & { readonly owner: { readonly kind: 'endpoint'; readonly id: EndpointId } }

/** What an endpoint with no record left behind. */
interface Leftovers {
  readonly leases: ReadonlyArray<EndpointLease>
  readonly links: ReadonlyArray<IfName>
}

interface Orphans {
  readonly byEndpoint: ReadonlyMap<EndpointId, Leftovers>
  /** Links of ours no record owns that name no endpoint. */
  readonly unnamed: ReadonlyArray<IfName>
  /** Devices of networks with no record, as `orphanDevices` picks them. */
  readonly devices: ReadonlyArray<readonly [IfName, NetworkId]>
  /** Listing failures (a pool's leases, the inventory). */
  readonly failed: ReadonlyArray<GcFailure>
}

const findOrphans = (
  networks: ReadonlyArray<Network>,
  remaining: ReadonlyArray<Endpoint>,
  graceMs: number,
  orphanDevices: GcOptions['orphanDevices']
): Flow<Orphans> =>
  pipe(
    RTE.Do,
    RTE.bind('leases', () => listLeases(networks)),
    RTE.bind('inventory', () => listLinks(networks)),
    RTE.bind('now', () => RTE.asks((env) => env.clock.now().getTime())),
    RTE.map(({ leases, inventory, now }): Orphans => {
      const live = new Set<string>(remaining.map((e) => e.id))
      const owned = new Set<string>(remaining.flatMap((e) => [e.hostIfName, e.peerIfName]))
      // A `since` that does not parse counts as old: the lease is judged by its owner alone.
      const young = (l: Lease): boolean => graceMs > 0 && Date.parse(l.since) > now - graceMs
      const held = leases.done.filter((l): l is EndpointLease => l.owner.kind === 'endpoint' && !live.has(l.owner.id))
      const inFlight = new Set<string>(held.filter(young).map((l) => l.owner.id))
      const byEndpoint = new Map<EndpointId, { leases: EndpointLease[]; links: IfName[] }>()
      const of = (id: EndpointId): { leases: EndpointLease[]; links: IfName[] } => {
        const known = byEndpoint.get(id)
        if (known !== undefined) return known
        const fresh = { leases: [], links: [] }
        byEndpoint.set(id, fresh)
        return fresh
      }
      for (const l of held) if (!inFlight.has(l.owner.id)) of(l.owner.id).leases.push(l)
      const unnamed: IfName[] = []
      // Our prefixes are checked here too: a dataplane's inventory that lists too much must not
      // make gc delete an operator's link.
      for (const name of inventory.done.flatMap((inv) => inv.links)) {
        if (owned.has(name) || !(name.startsWith(HOST_IF_PREFIX) || name.startsWith(PEER_IF_PREFIX))) continue
        const id = inventory.done[0]?.endpoints?.[name]
        if (id === undefined) unnamed.push(name)
        else if (!live.has(id) && !inFlight.has(id)) of(id).links.push(name)
      }
      const stored = new Set<string>(networks.map((n) => n.id))
      const devices = Object.entries(inventory.done[0]?.devices ?? {}).flatMap(
        ([device, id]): Array<readonly [IfName, NetworkId]> =>
          orphanDevices !== undefined && orphanDevices(id) && !stored.has(id) && isIfName(device)
            ? [[device as IfName, id]]
            : []
      )
      return { byEndpoint, unnamed, devices, failed: [...leases.failed, ...inventory.failed] }
    })
  )

/** The leases of the networks' pools, each pool once: identical Docker RequestPools share one pool id. */
const listLeases = (networks: ReadonlyArray<Network>): Flow<Outcome<Lease>> => {
  const pools = new Map<string, PoolRef>()
  for (const n of networks) {
    for (const s of [...n.ipv4, ...n.ipv6]) {
      if (s.poolId !== undefined) pools.set(`${n.addressSpace}\0${s.poolId}`, { space: n.addressSpace, pool: s.poolId })
    }
  }
  return pipe(
    [...pools.values()],
    eachOf(
      'leases',
      (p) => `${p.space}/${p.pool}`,
      (p: PoolRef): Flow<ReadonlyArray<Lease>> =>
        (env) =>
          env.store.leases.list(p.space, p.pool)
    ),
    RTE.map((listed) => outcome(listed.done.flat(), listed.failed))
  )
}

/** Only the links on this store's networks: another isthmus instance may share the host. */
const listLinks = (networks: ReadonlyArray<Network>): Flow<Outcome<DataplaneInventory>> =>
  pipe(
    call((env) => env.dataplane.inventory(networks)),
    RTE.map((inv) => outcome([inv], [])),
    RTE.orElse((error) =>
      RTE.right(outcome<DataplaneInventory>([], [{ step: 'inventory', target: 'dataplane', error }]))
    )
  )

interface Swept {
  readonly leases: ReadonlyArray<ReleasedLease>
  readonly links: ReadonlyArray<IfName>
  readonly failed: ReadonlyArray<GcFailure>
}

const removeLinks = eachOf(
  'link',
  (name: IfName) => name,
  (name: IfName) =>
    pipe(
      call((env) => env.dataplane.removeLink(name)),
      RTE.map(() => name)
    )
)

const releaseLeases = eachOf(
  'lease',
  (l: EndpointLease) => `${l.addressSpace}/${l.address}`,
  (l: EndpointLease): Flow<ReleasedLease> =>
    pipe(
      // With the owner, so a lease handed to a new endpoint meanwhile stays.
      call((env) => env.store.leases.release(l.addressSpace, l.address, l.owner)),
      RTE.map(() => ({ addressSpace: l.addressSpace, address: l.address, endpointId: l.owner.id }))
    )
)

const done = (s: Swept): Flow<Swept> => RTE.right(s)

/** One orphan endpoint, under its lock: still no record? Its links go, then (all gone) its leases. */
const sweepEndpoint = (id: EndpointId, left: Leftovers): Flow<Swept> =>
  pipe(
    getEndpoint(id),
    RTE.chain(
      O.match(
        () =>
          pipe(
            removeLinks(left.links),
            RTE.chain((links) =>
              links.failed.length > 0
                ? done({ leases: [], links: links.done, failed: links.failed })
                : pipe(
                    releaseLeases(left.leases),
                    RTE.map((leases): Swept => ({ leases: leases.done, links: links.done, failed: leases.failed }))
                  )
            )
          ),
        // Its creation finished while gc was looking: nothing of it is an orphan.
        () => done({ leases: [], links: [], failed: [] })
      )
    ),
    lockedEndpoint(id, 'container'),
    RTE.orElse((error) =>
      done({
        leases: [],
        links: [],
        failed: [
          ...left.links.map((name): GcFailure => ({ step: 'link', target: name, error })),
          ...left.leases.map((l): GcFailure => ({ step: 'lease', target: `${l.addressSpace}/${l.address}`, error }))
        ]
      })
    )
  )

/** Each device, under its network's lock: still no record? It goes, with what the dataplane hung on it. */
const removeDevices = eachOf(
  'device',
  ([device]: readonly [IfName, NetworkId]) => device,
  ([device, id]: readonly [IfName, NetworkId]): Flow<IfName | undefined> =>
    pipe(
      getNetwork(id),
      RTE.chain(
        O.match(
          () =>
            pipe(
              call((env) => env.dataplane.removeLink(device)),
              RTE.map((): IfName | undefined => device)
            ),
          // made meanwhile (a creation that held the lock): not an orphan
          () => RTE.right<Env, CoreError, IfName | undefined>(undefined)
        )
      ),
      locked(`network:${id}`)
    )
)

const sweep = (orphans: Orphans): Flow<Swept> =>
  pipe(
    [...orphans.byEndpoint.entries()],
    RTE.traverseSeqArray(([id, left]) => sweepEndpoint(id, left)),
    RTE.bindTo('named'),
    RTE.bind('unnamed', () => removeLinks(orphans.unnamed)),
    RTE.map(({ named, unnamed }): Swept => ({
      leases: named.flatMap((s) => s.leases),
      links: [...named.flatMap((s) => s.links), ...unnamed.done],
      failed: [...named.flatMap((s) => s.failed), ...unnamed.failed]
    }))
  )
