/**
 * gc: remove what no live attachment owns (CNI GC, `cni.dev/valid-attachments`; a plugin
 * restart's clean-up). It keeps going past individual failures and reports them all.
 */
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type { CoreError } from '../errors.js'
import {
  HOST_IF_PREFIX,
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
import type { Flow } from '../ports/Env.js'
import { call } from './call.js'
import { deleteEndpoint } from './deleteEndpoint.js'
import { getNetwork, listEndpoints } from './records.js'

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
   * Leases held by an endpoint with no record are left when taken less than this long ago (by
   * `env.clock`): such a lease may be an endpoint creation's in flight, between its addresses
   * and its record. 0 (the default) when nothing can be creating meanwhile (see `gc`).
   */
  readonly leaseGraceMs?: number
}

/** @category flows */
export interface ReleasedLease {
  readonly addressSpace: AddressSpace
  readonly address: IpAddress
  readonly endpointId: EndpointId
}

/** Something gc tried and could not do; `target` names the endpoint, lease, link or listing. @category flows */
export interface GcFailure {
  readonly step: 'endpoint' | 'leases' | 'lease' | 'inventory' | 'link'
  readonly target: string
  readonly error: CoreError
}

/** @category flows */
export interface GcReport {
  readonly endpointsRemoved: ReadonlyArray<EndpointId>
  readonly leasesReleased: ReadonlyArray<ReleasedLease>
  readonly linksRemoved: ReadonlyArray<IfName>
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
 * deleted as a DEL would, 3. leases of those networks' pools held by an endpoint with no record
 * are released, 4. links of ours (`istv…`, `istc…`) in the host namespace that no stored endpoint
 * owns are removed. Orphans in 3 and 4 are judged against the endpoints of EVERY network: a lease
 * or link of an endpoint on another network is not an orphan.
 *
 * Precondition: no createEndpoint runs meanwhile on this host, unless `leaseGraceMs` covers it;
 * between its control-plane step and its stored record, its lease and links look orphaned (CNI
 * SPEC: the runtime never runs GC concurrently with ADD/DEL; a Docker frontend runs gc before it
 * serves). A CNI GC on a network dockerd also uses can meet a Docker CreateEndpoint: its lease is
 * young, and its link a taken spare, which the inventory leaves out.
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
    // 3. and 4. judge orphans by what is stored now, on any network.
    RTE.bind('remaining', () => listEndpoints),
    RTE.bind('leases', ({ networks, remaining }) => releaseOrphanLeases(networks, remaining, options.leaseGraceMs ?? 0)),
    RTE.bind('links', ({ networks, remaining }) => removeOrphanLinks(networks, remaining)),
    RTE.map(
      ({ endpoints, leases, links }): GcReport => ({
        endpointsRemoved: endpoints.done,
        leasesReleased: leases.done,
        linksRemoved: links.done,
        failures: [...endpoints.failed, ...leases.failed, ...links.failed]
      })
    )
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
      RTE.map((all) => outcome(all.flatMap((o) => o.done), all.flatMap((o) => o.failed)))
    )

const networksInScope = (id: NetworkId | undefined): Flow<ReadonlyArray<Network>> =>
  id === undefined
    ? (env) => env.store.networks.list()
    : pipe(
        getNetwork(id),
        RTE.map((o) => (o._tag === 'Some' ? [o.value] : []))
      )

const removeStale = (
  networks: ReadonlyArray<Network>,
  valid: GcOptions['valid']
): Flow<Outcome<EndpointId>> => {
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

const releaseOrphanLeases = (
  networks: ReadonlyArray<Network>,
  remaining: ReadonlyArray<Endpoint>,
  graceMs: number
): Flow<Outcome<ReleasedLease>> => (env) => releaseOrphansAt(networks, remaining, graceMs, env.clock.now().getTime())(env)

const releaseOrphansAt = (
  networks: ReadonlyArray<Network>,
  remaining: ReadonlyArray<Endpoint>,
  graceMs: number,
  now: number
): Flow<Outcome<ReleasedLease>> => {
  const live = new Set<string>(remaining.map((e) => e.id))
  // A `since` that does not parse counts as old: the lease is judged by its owner alone.
  const young = (l: Lease): boolean => graceMs > 0 && Date.parse(l.since) > now - graceMs
  // The pools of the networks in scope, once each: identical Docker RequestPools share one pool id.
  const pools = new Map<string, PoolRef>()
  for (const n of networks) {
    for (const s of [...n.ipv4, ...n.ipv6]) {
      if (s.poolId !== undefined) pools.set(`${n.addressSpace}\0${s.poolId}`, { space: n.addressSpace, pool: s.poolId })
    }
  }
  const orphaned = (l: Lease): l is EndpointLease => l.owner.kind === 'endpoint' && !live.has(l.owner.id) && !young(l)
  return pipe(
    [...pools.values()],
    eachOf(
      'leases',
      (p) => `${p.space}/${p.pool}`,
      (p: PoolRef): Flow<ReadonlyArray<Lease>> =>
        (env) =>
          env.store.leases.list(p.space, p.pool)
    ),
    RTE.chain((listed) =>
      pipe(
        listed.done.flat().filter(orphaned),
        eachOf(
          'lease',
          (l) => `${l.addressSpace}/${l.address}`,
          (l): Flow<ReleasedLease> =>
            pipe(
              // With the owner, so a lease handed to a new endpoint meanwhile stays.
              call((env) => env.store.leases.release(l.addressSpace, l.address, l.owner)),
              RTE.map(() => ({ addressSpace: l.addressSpace, address: l.address, endpointId: l.owner.id }))
            )
        ),
        RTE.map((released) => outcome(released.done, [...listed.failed, ...released.failed]))
      )
    )
  )
}

const removeOrphanLinks = (networks: ReadonlyArray<Network>, remaining: ReadonlyArray<Endpoint>): Flow<Outcome<IfName>> => {
  const owned = new Set<string>(remaining.flatMap((e) => [e.hostIfName, e.peerIfName]))
  // Our prefixes are checked here too: a dataplane's inventory that lists too much must not
  // make gc delete an operator's link.
  const orphan = (name: IfName): boolean =>
    !owned.has(name) && (name.startsWith(HOST_IF_PREFIX) || name.startsWith(PEER_IF_PREFIX))
  return pipe(
    // Only the links on this store's networks: another isthmus instance may share the host.
    call((env) => env.dataplane.inventory(networks)),
    RTE.map((inv): Outcome<ReadonlyArray<IfName>> => outcome([inv.links.filter(orphan)], [])),
    RTE.orElse((error) =>
      RTE.right(outcome<ReadonlyArray<IfName>>([], [{ step: 'inventory', target: 'dataplane', error }]))
    ),
    RTE.chain((listed) =>
      pipe(
        listed.done.flat(),
        eachOf(
          'link',
          (name) => name,
          (name) =>
            pipe(
              call((env) => env.dataplane.removeLink(name)),
              RTE.map(() => name)
            )
        ),
        RTE.map((removed) => outcome(removed.done, [...listed.failed, ...removed.failed]))
      )
    )
  )
}
