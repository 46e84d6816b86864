/**
 * The built-in control plane: networks get their pools and endpoints their addresses from
 * isthmus's own IPAM, or from the runtime's IPAM when the network says so (Docker with another
 * --ipam-driver, or Docker's RequestPool/RequestAddress answered by our IPAM driver first).
 * Every step that takes something gives it back when a later step fails (core's saga: an undo
 * that fails is logged with its step).
 */
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as A from 'fp-ts/lib/ReadonlyArray.js'
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import * as T from 'fp-ts/lib/Task.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { addressInUse, invalidConfig, type CoreError } from '../errors.js'
import { DEFAULT_LOCAL_SPACE, type AddressSpace } from '../ids.js'
import {
  contains,
  familyOf,
  joinCidr,
  splitCidr,
  type Family,
  type IpAddress,
  type MacAddress
} from '../model/Address.js'
import type { EndpointAddress } from '../model/Endpoint.js'
import { DOCKER_RUNTIME_OWNER, ownerText, sameOwner, type LeaseOwner, type Pool } from '../model/Ipam.js'
import type { Network, NetworkSubnet } from '../model/Network.js'
import type { AddressRequest, ControlPlane, NetworkBinding, NetworkSpec, SubnetRequest } from '../ports/ControlPlane.js'
import { silentLogger, type Logger } from '../ports/Logger.js'
import { ATTACHMENT_WRITE, type Store } from '../ports/Store.js'
import { begin, bindEach } from '../flows/saga.js'
import type { Ipam } from '../ipam/Ipam.js'
import { clusterOption } from '../ipam/clusterNetworks.js'
import { clusterNameOf } from '../model/Cluster.js'
import { clusterNetwork } from './cluster.js'
import { checkGiven, fromPool } from './pools.js'
import type { PoolRequest } from '../ipam/Pools.js'

const subnetsOf = (n: Network, f: Family): ReadonlyArray<NetworkSubnet> => (f === 4 ? n.ipv4 : n.ipv6)

const endpointAddress = (ns: NetworkSubnet, address: IpAddress, fromRuntime = false): EndpointAddress => ({
  cidr: joinCidr(address, splitCidr(ns.subnet).prefix),
  ...(ns.poolId === undefined ? {} : { poolId: ns.poolId }),
  ...(ns.gateway === undefined ? {} : { gateway: ns.gateway }),
  ...(fromRuntime && ns.poolId !== undefined ? { fromRuntime: true } : {})
})

/** Every task in order, all of them run; the first failure, if any (deletes go on past one). */
const allOf = (tasks: ReadonlyArray<TE.TaskEither<CoreError, unknown>>): TE.TaskEither<CoreError, void> =>
  pipe(
    T.sequenceSeqArray(tasks),
    T.map((rs) => {
      const bad = rs.find(E.isLeft)
      return bad === undefined ? E.right(undefined) : E.left(bad.left)
    })
  )

/** An address taken for an endpoint, and how to give it back if a later one cannot be had. */
interface Taken {
  readonly address: EndpointAddress
  readonly giveBack?: TE.TaskEither<CoreError, unknown>
}

/** The runtime's pools a spec names, checked against its requests, and the space they decide. */
interface GivenPools {
  readonly given: ReadonlyMap<SubnetRequest, Pool>
  readonly space: AddressSpace | undefined
}

const poolRequestOf = (req: SubnetRequest, addressSpace: AddressSpace): PoolRequest => ({
  addressSpace,
  family: req.family,
  ...(req.subnet === undefined ? {} : { subnet: req.subnet }),
  ...(req.ranges === undefined ? {} : { ranges: req.ranges }),
  ...(req.gateway === undefined ? {} : { gateway: req.gateway }),
  ...(req.aux === undefined ? {} : { aux: req.aux }),
  ...(req.excluded === undefined ? {} : { excluded: req.excluded })
})

/**
 * The ControlPlane port over the built-in IPAM. `store` serves the lease hand-over of addresses
 * Docker requested before the endpoint existed; `log` hears of a give-back that failed.
 *
 * @category constructors
 */
export const builtinControlPlane = (ipam: Ipam, store: Store, log: Logger = silentLogger): ControlPlane => {
  // ---------------------------------------------------------------------------------
  // networks
  // ---------------------------------------------------------------------------------

  // 1) pools the runtime requested decide the address space when the spec does not
  const givenPools = (spec: NetworkSpec): TE.TaskEither<CoreError, GivenPools> =>
    pipe(
      spec.subnets,
      A.reduce(TE.right<CoreError, GivenPools>({ given: new Map(), space: spec.addressSpace }), (acc, req) =>
        req.poolId === undefined
          ? acc
          : pipe(
              acc,
              TE.chain(({ given, space }) =>
                pipe(
                  ipam.getPool(req.poolId!),
                  TE.chainEitherK((pool) => checkGiven(req, pool, space)),
                  TE.map((pool) => ({ given: new Map(given).set(req, pool), space: space ?? pool.addressSpace }))
                )
              )
            )
      )
    )

  // 2) our own pools, given back if a later one fails
  const subnetFor =
    (spec: NetworkSpec, given: ReadonlyMap<SubnetRequest, Pool>, addressSpace: AddressSpace) =>
    (req: SubnetRequest): TE.TaskEither<CoreError, NetworkSubnet> => {
      const pool = given.get(req)
      if (pool !== undefined) return TE.right(fromPool(pool, false))
      if (spec.managedAddresses) {
        return pipe(
          ipam.requestPool(poolRequestOf(req, addressSpace)),
          TE.map((p) => fromPool(p, true))
        )
      }
      return req.subnet === undefined
        ? TE.left(invalidConfig(`network ${spec.name}: the runtime's IPAM must name the subnet`))
        : TE.right({ subnet: req.subnet, ...(req.gateway === undefined ? {} : { gateway: req.gateway }) })
    }

  // Not idempotent by itself: each call takes pool references. The ensureNetwork flow returns a
  // stored network without calling it.
  const ensureNetwork: ControlPlane['ensureNetwork'] = (spec) =>
    pipe(
      TE.fromEither(clusterOption(spec.options)),
      TE.chain((named) =>
        named !== undefined
          ? clusterNetwork(ipam, spec, named)
          : pipe(
              givenPools(spec),
              TE.chain((gp) => {
                // Docker with `--ipam-opt isthmus.cluster=<name>` only: its pool says which cluster network
                const ofCluster = [...gp.given.values()]
                  .map((p) => clusterNameOf(p.options))
                  .find((n) => n !== undefined)
                return ofCluster !== undefined ? clusterNetwork(ipam, spec, ofCluster) : localNetwork(spec, gp)
              })
            )
      )
    )

  const localNetwork = (spec: NetworkSpec, { given, space }: GivenPools): TE.TaskEither<CoreError, NetworkBinding> => {
    const addressSpace = space ?? DEFAULT_LOCAL_SPACE
    return pipe(
      begin(`ensureNetwork ${spec.name}`),
      bindEach(
        'subnets',
        () => spec.subnets,
        (req) => () => subnetFor(spec, given, addressSpace)(req),
        (_req, ns) => () =>
          ns.ownedPool === true && ns.poolId !== undefined ? ipam.releasePool(ns.poolId) : TE.right(undefined)
      ),
      RTE.map(({ subnets }): NetworkBinding => ({
        addressSpace,
        ipv4: subnets.filter((ns) => familyOf(ns.subnet) === 4),
        ipv6: subnets.filter((ns) => familyOf(ns.subnet) !== 4)
      }))
    )({ log })
  }

  const deleteNetwork: ControlPlane['deleteNetwork'] = (network) =>
    allOf(
      [...network.ipv4, ...network.ipv6]
        .filter((ns) => ns.poolId !== undefined && ns.ownedPool === true)
        .map((ns) => ipam.releasePool(ns.poolId!))
    )

  // ---------------------------------------------------------------------------------
  // endpoints
  // ---------------------------------------------------------------------------------

  // The first subnet of the family, then the next ones while each is full.
  const any = (
    network: Network,
    family: Family,
    owner: LeaseOwner,
    mac: MacAddress | undefined
  ): TE.TaskEither<CoreError, Taken> => {
    const pooled = subnetsOf(network, family).filter((ns) => ns.poolId !== undefined)
    const tryFrom = (i: number, last: CoreError): TE.TaskEither<CoreError, Taken> => {
      const ns = pooled[i]
      if (ns === undefined) return TE.left(last)
      return pipe(
        ipam.allocate(ns.poolId!, owner, { ...ATTACHMENT_WRITE, ...(mac === undefined ? {} : { mac }) }),
        TE.map(({ address }) => ({
          address: endpointAddress(ns, address),
          giveBack: ipam.release(network.addressSpace, address, owner)
        })),
        TE.orElse((e) => (e._tag === 'PoolExhausted' ? tryFrom(i + 1, e) : TE.left(e)))
      )
    }
    return tryFrom(
      0,
      invalidConfig(`network ${network.name} has no IPv${family} subnet whose addresses isthmus assigns`)
    )
  }

  // Docker: RequestAddress (owner: the runtime) came first, CreateEndpoint hands it on. Not
  // durable: lost with the machine, the lease is the runtime's again, which dockerd releases
  // after the restart along with the endpoint (Store PutOptions). Undefined: not the runtime's.
  const handedOn = (
    space: AddressSpace,
    ns: NetworkSubnet,
    address: IpAddress,
    owner: LeaseOwner
  ): TE.TaskEither<CoreError, Taken | undefined> =>
    pipe(
      store.leases.transfer(space, address, DOCKER_RUNTIME_OWNER, owner, { durable: false }),
      TE.chain((moved) =>
        moved
          ? TE.right<CoreError, Taken | undefined>({
              address: endpointAddress(ns, address, true),
              giveBack: store.leases.transfer(space, address, owner, DOCKER_RUNTIME_OWNER)
            })
          : pipe(
              store.leases.get(space, address),
              TE.chainEitherK(
                O.fold(
                  () => E.right<CoreError, Taken | undefined>(undefined),
                  (l) =>
                    sameOwner(l.owner, owner)
                      ? E.right({ address: endpointAddress(ns, address, true) })
                      : E.left(addressInUse(address, space, ownerText(l.owner)))
                )
              )
            )
      )
    )

  const given = (
    network: Network,
    address: IpAddress,
    assigned: boolean,
    owner: LeaseOwner,
    mac: MacAddress | undefined
  ): TE.TaskEither<CoreError, Taken> => {
    const space = network.addressSpace
    const ns = subnetsOf(network, familyOf(address)).find((s) => contains(s.subnet, address))
    if (ns === undefined) return TE.left(invalidConfig(`address ${address} is in no subnet of network ${network.name}`))
    // the runtime's IPAM assigns this subnet: nothing to reserve here
    if (ns.poolId === undefined) return TE.right({ address: endpointAddress(ns, address) })
    const poolId = ns.poolId
    const allocate = pipe(
      ipam.allocate(poolId, owner, { ...ATTACHMENT_WRITE, address, ...(mac === undefined ? {} : { mac }) }),
      TE.map((): Taken => ({ address: endpointAddress(ns, address), giveBack: ipam.release(space, address, owner) }))
    )
    return assigned
      ? pipe(
          handedOn(space, ns, address, owner),
          TE.chain((t) => (t === undefined ? allocate : TE.right(t)))
        )
      : allocate
  }

  const addressFor = (
    network: Network,
    req: AddressRequest,
    owner: LeaseOwner,
    mac: MacAddress | undefined
  ): TE.TaskEither<CoreError, Taken> => {
    switch (req._tag) {
      case 'Any':
        return any(network, req.family, owner, mac)
      case 'Static':
        return given(network, req.address, false, owner, mac)
      case 'Assigned':
        return given(network, splitCidr(req.cidr).address, true, owner, mac)
    }
  }

  const createEndpoint: ControlPlane['createEndpoint'] = (network, req) => {
    const owner: LeaseOwner = { kind: 'endpoint', id: req.id }
    return pipe(
      begin(`createEndpoint ${req.id}`),
      bindEach(
        'addresses',
        () => req.addresses,
        (a) => () => addressFor(network, a, owner, req.mac),
        (_a, taken) => () => taken.giveBack ?? TE.right(undefined)
      ),
      RTE.map(({ addresses }) => ({
        addresses: addresses.map((t) => t.address),
        ...(req.mac === undefined ? {} : { mac: req.mac })
      }))
    )({ log })
  }

  const deleteEndpoint: ControlPlane['deleteEndpoint'] = (network, endpoint) => {
    const owner: LeaseOwner = { kind: 'endpoint', id: endpoint.id }
    // Docker sends ReleaseAddress after DeleteEndpoint: hand the addresses it requested back to
    // the runtime owner instead of freeing them, so that no other container can take one in
    // between and lose it to that ReleaseAddress.
    return allOf(
      endpoint.addresses
        .filter((a) => a.poolId !== undefined)
        .map((a) => {
          const address = splitCidr(a.cidr).address
          return a.fromRuntime === true
            ? store.leases.transfer(network.addressSpace, address, owner, DOCKER_RUNTIME_OWNER)
            : ipam.release(network.addressSpace, address, owner)
        })
    )
  }

  return { ensureNetwork, deleteNetwork, createEndpoint, deleteEndpoint }
}
