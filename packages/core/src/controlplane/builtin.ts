/**
 * The built-in control plane: networks get their pools and endpoints their addresses from
 * isthmus's own IPAM, or from the runtime's IPAM when the network says so (Docker with another
 * --ipam-driver, or Docker's RequestPool/RequestAddress answered by our IPAM driver first).
 * Every step that takes something gives it back when a later step fails.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
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
import type { AddressRequest, ControlPlane, NetworkBinding, SubnetRequest } from '../ports/ControlPlane.js'
import type { Store } from '../ports/Store.js'
import type { Ipam } from '../ipam/Ipam.js'
import type { PoolRequest } from '../ipam/Pools.js'

type Undo = () => Promise<unknown>

const subnetsOf = (n: Network, f: Family): ReadonlyArray<NetworkSubnet> => (f === 4 ? n.ipv4 : n.ipv6)

const endpointAddress = (ns: NetworkSubnet, address: IpAddress, fromRuntime = false): EndpointAddress => ({
  cidr: joinCidr(address, splitCidr(ns.subnet).prefix),
  ...(ns.poolId === undefined ? {} : { poolId: ns.poolId }),
  ...(ns.gateway === undefined ? {} : { gateway: ns.gateway }),
  ...(fromRuntime && ns.poolId !== undefined ? { fromRuntime: true } : {})
})

const fromPool = (pool: Pool, ownedPool: boolean): NetworkSubnet => ({
  subnet: pool.subnet,
  poolId: pool.id,
  ...(pool.gateway === undefined ? {} : { gateway: pool.gateway }),
  ownedPool
})

const runAll = async (undo: ReadonlyArray<Undo>): Promise<void> => {
  for (const u of [...undo].reverse()) await u()
}

/**
 * The ControlPlane port over the built-in IPAM. `store` serves the lease hand-over of addresses
 * Docker requested before the endpoint existed.
 *
 * @category constructors
 */
export const builtinControlPlane = (ipam: Ipam, store: Store): ControlPlane => {
  // ---------------------------------------------------------------------------------
  // networks
  // ---------------------------------------------------------------------------------

  // Not idempotent by itself: each call takes pool references. The ensureNetwork flow returns a
  // stored network without calling it.
  const ensureNetwork: ControlPlane['ensureNetwork'] = (spec) => async () => {
    // 1) pools the runtime requested decide the address space when the spec does not
    const given = new Map<SubnetRequest, Pool>()
    let space: AddressSpace | undefined = spec.addressSpace
    for (const req of spec.subnets) {
      if (req.poolId === undefined) continue
      const got = await ipam.getPool(req.poolId)()
      if (E.isLeft(got)) return got
      const pool = got.right
      if (pool.family !== req.family) {
        return E.left(invalidConfig(`pool ${pool.id} is not an IPv${req.family} pool`))
      }
      if (req.subnet !== undefined && req.subnet !== pool.subnet) {
        return E.left(invalidConfig(`pool ${pool.id} is ${pool.subnet}, not ${req.subnet}`))
      }
      space ??= pool.addressSpace
      if (pool.addressSpace !== space) {
        return E.left(invalidConfig(`pool ${pool.id} is not in address space ${space}`))
      }
      given.set(req, pool)
    }
    const addressSpace = space ?? DEFAULT_LOCAL_SPACE

    // 2) our own pools, given back if a later one fails
    const undo: Undo[] = []
    const ipv4: NetworkSubnet[] = []
    const ipv6: NetworkSubnet[] = []
    for (const req of spec.subnets) {
      let ns: NetworkSubnet
      const pool = given.get(req)
      if (pool !== undefined) ns = fromPool(pool, false)
      else if (spec.managedAddresses) {
        const pr: PoolRequest = {
          addressSpace,
          family: req.family,
          ...(req.subnet === undefined ? {} : { subnet: req.subnet }),
          ...(req.ranges === undefined ? {} : { ranges: req.ranges }),
          ...(req.gateway === undefined ? {} : { gateway: req.gateway }),
          ...(req.aux === undefined ? {} : { aux: req.aux }),
          ...(req.excluded === undefined ? {} : { excluded: req.excluded })
        }
        const got = await ipam.requestPool(pr)()
        if (E.isLeft(got)) {
          await runAll(undo)
          return got
        }
        const id = got.right.id
        undo.push(() => ipam.releasePool(id)())
        ns = fromPool(got.right, true)
      } else {
        if (req.subnet === undefined) {
          await runAll(undo)
          return E.left(invalidConfig(`network ${spec.name}: the runtime's IPAM must name the subnet`))
        }
        ns = { subnet: req.subnet, ...(req.gateway === undefined ? {} : { gateway: req.gateway }) }
      }
      if (familyOf(ns.subnet) === 4) ipv4.push(ns)
      else ipv6.push(ns)
    }
    const binding: NetworkBinding = { addressSpace, ipv4, ipv6 }
    return E.right(binding)
  }

  const deleteNetwork: ControlPlane['deleteNetwork'] = (network) => async () => {
    let first: CoreError | undefined
    for (const ns of [...network.ipv4, ...network.ipv6]) {
      if (ns.poolId === undefined || ns.ownedPool !== true) continue
      const r = await ipam.releasePool(ns.poolId)()
      if (E.isLeft(r)) first ??= r.left
    }
    return first === undefined ? E.right(undefined) : E.left(first)
  }

  // ---------------------------------------------------------------------------------
  // endpoints
  // ---------------------------------------------------------------------------------

  const any = async (
    network: Network,
    family: Family,
    owner: LeaseOwner,
    mac: MacAddress | undefined,
    undo: Undo[]
  ): Promise<E.Either<CoreError, EndpointAddress>> => {
    const pooled = subnetsOf(network, family).filter((ns) => ns.poolId !== undefined)
    if (pooled.length === 0) {
      return E.left(invalidConfig(`network ${network.name} has no IPv${family} subnet whose addresses isthmus assigns`))
    }
    let last: CoreError | undefined
    // the first subnet of the family, then the next ones while each is full
    for (const ns of pooled) {
      const got = await ipam.allocate(ns.poolId!, owner, mac === undefined ? {} : { mac })()
      if (E.isRight(got)) {
        const address = got.right.address
        undo.push(() => ipam.release(network.addressSpace, address, owner)())
        return E.right(endpointAddress(ns, address))
      }
      if (got.left._tag !== 'PoolExhausted') return got
      last = got.left
    }
    return E.left(last!)
  }

  const given = async (
    network: Network,
    address: IpAddress,
    assigned: boolean,
    owner: LeaseOwner,
    mac: MacAddress | undefined,
    undo: Undo[]
  ): Promise<E.Either<CoreError, EndpointAddress>> => {
    const space = network.addressSpace
    const ns = subnetsOf(network, familyOf(address)).find((s) => contains(s.subnet, address))
    if (ns === undefined) {
      return E.left(invalidConfig(`address ${address} is in no subnet of network ${network.name}`))
    }
    // the runtime's IPAM assigns this subnet: nothing to reserve here
    if (ns.poolId === undefined) return E.right(endpointAddress(ns, address))
    const poolId = ns.poolId
    if (assigned) {
      // Docker: RequestAddress (owner: the runtime) came first, CreateEndpoint hands it on
      // Not durable: lost with the machine, the lease is the runtime's again, which dockerd
      // releases after the restart along with the endpoint (Store PutOptions).
      const moved = await store.leases.transfer(space, address, DOCKER_RUNTIME_OWNER, owner, { durable: false })()
      if (E.isLeft(moved)) return moved
      if (moved.right) {
        undo.push(() => store.leases.transfer(space, address, owner, DOCKER_RUNTIME_OWNER)())
        return E.right(endpointAddress(ns, address, true))
      }
      const held = await store.leases.get(space, address)()
      if (E.isLeft(held)) return held
      if (O.isSome(held.right)) {
        const l = held.right.value
        return sameOwner(l.owner, owner)
          ? E.right(endpointAddress(ns, address, true))
          : E.left(addressInUse(address, space, ownerText(l.owner)))
      }
    }
    const got = await ipam.allocate(poolId, owner, { address, ...(mac === undefined ? {} : { mac }) })()
    if (E.isLeft(got)) return got
    undo.push(() => ipam.release(space, address, owner)())
    return E.right(endpointAddress(ns, address))
  }

  const addressFor = (
    network: Network,
    req: AddressRequest,
    owner: LeaseOwner,
    mac: MacAddress | undefined,
    undo: Undo[]
  ): Promise<E.Either<CoreError, EndpointAddress>> => {
    switch (req._tag) {
      case 'Any':
        return any(network, req.family, owner, mac, undo)
      case 'Static':
        return given(network, req.address, false, owner, mac, undo)
      case 'Assigned':
        return given(network, splitCidr(req.cidr).address, true, owner, mac, undo)
    }
  }

  const createEndpoint: ControlPlane['createEndpoint'] = (network, req) => async () => {
    const owner: LeaseOwner = { kind: 'endpoint', id: req.id }
    const undo: Undo[] = []
    const addresses: EndpointAddress[] = []
    for (const a of req.addresses) {
      const r = await addressFor(network, a, owner, req.mac, undo)
      if (E.isLeft(r)) {
        await runAll(undo)
        return r
      }
      addresses.push(r.right)
    }
    return E.right({ addresses, ...(req.mac === undefined ? {} : { mac: req.mac }) })
  }

  const deleteEndpoint: ControlPlane['deleteEndpoint'] = (network, endpoint) => async () => {
    const owner: LeaseOwner = { kind: 'endpoint', id: endpoint.id }
    // Docker sends ReleaseAddress after DeleteEndpoint: hand the addresses it requested back to
    // the runtime owner instead of freeing them, so that no other container can take one in
    // between and lose it to that ReleaseAddress.
    let first: CoreError | undefined
    for (const a of endpoint.addresses) {
      if (a.poolId === undefined) continue
      const address = splitCidr(a.cidr).address
      const r =
        a.fromRuntime === true
          ? await store.leases.transfer(network.addressSpace, address, owner, DOCKER_RUNTIME_OWNER)()
          : await ipam.release(network.addressSpace, address, owner)()
      if (E.isLeft(r)) first ??= r.left
    }
    return first === undefined ? E.right(undefined) : E.left(first)
  }

  return { ensureNetwork, deleteNetwork, createEndpoint, deleteEndpoint }
}
