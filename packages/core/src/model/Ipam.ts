/**
 * IPAM records: pools (a subnet in an address space, with sub-ranges, gateway and reserved
 * addresses) and leases (one address held by one owner). An address is unique within its address
 * space, so leases are keyed by (space, address), never by pool.
 */
import * as t from 'io-ts'
import { AddressSpace, EndpointId, PoolId } from '../ids.js'
import { Family, IpAddress, MacAddress, Subnet } from './Address.js'

/**
 * An inclusive range of addresses inside a pool's subnet (CNI rangeStart..rangeEnd, Docker --ip-range).
 *
 * @category codecs
 */
export const IpRange = t.type({ start: IpAddress, end: IpAddress }, 'IpRange')
/** @category model */
export type IpRange = t.TypeOf<typeof IpRange>

/** An address the allocator must never hand out. @category codecs */
export const ReservedAddress = t.intersection(
  [t.type({ address: IpAddress, reason: t.keyof({ aux: null, excluded: null }) }), t.partial({ name: t.string })],
  'ReservedAddress'
)
/** @category model */
export type ReservedAddress = t.TypeOf<typeof ReservedAddress>

/**
 * A pool: where addresses come from. `ranges` empty means the whole subnet (less network,
 * broadcast and gateway). `refs` counts identical Docker RequestPool calls (same id each time).
 *
 * @category codecs
 */
export const Pool = t.intersection(
  [
    t.type({
      id: PoolId,
      addressSpace: AddressSpace,
      subnet: Subnet,
      family: Family,
      ranges: t.array(IpRange),
      reserved: t.array(ReservedAddress),
      options: t.record(t.string, t.string),
      refs: t.number
    }),
    t.partial({ gateway: IpAddress })
  ],
  'Pool'
)
/** @category model */
export type Pool = t.TypeOf<typeof Pool>

/**
 * Who holds a lease: an endpoint; the pool itself (gateway, aux addresses); or the runtime's
 * IPAM call before an endpoint exists (Docker RequestAddress carries no endpoint id).
 *
 * @category codecs
 */
export const LeaseOwner = t.union(
  [
    t.type({ kind: t.literal('endpoint'), id: EndpointId }),
    t.type({ kind: t.literal('gateway') }),
    t.type({ kind: t.literal('aux'), name: t.string }),
    t.type({ kind: t.literal('runtime'), ref: t.string })
  ],
  'LeaseOwner'
)
/** @category model */
export type LeaseOwner = t.TypeOf<typeof LeaseOwner>

/** @category codecs */
export const Lease = t.intersection(
  [
    t.type({
      address: IpAddress,
      addressSpace: AddressSpace,
      poolId: PoolId,
      owner: LeaseOwner,
      since: t.string
    }),
    t.partial({ mac: MacAddress })
  ],
  'Lease'
)
/** @category model */
export type Lease = t.TypeOf<typeof Lease>

/**
 * The owner of an address Docker asked our IPAM driver for (RequestAddress carries no endpoint
 * id); CreateEndpoint hands it on to the endpoint, DeleteEndpoint back, ReleaseAddress frees it.
 * The Docker frontend must use this owner, and allocate with `exclusive` (AllocateOptions): it is
 * one owner for every Docker request, so holding an address already never means "this request
 * again". Docker releases its addresses before their pool and deletes its endpoints before their
 * network, so such a lease left when its pool goes, or a Docker endpoint left when its network
 * goes, is one whose teardown call was lost (the plugin was down): ReleasePool and DeleteNetwork
 * finish it.
 *
 * @category constants
 */
export const DOCKER_RUNTIME_OWNER: LeaseOwner = { kind: 'runtime', ref: 'docker' }

/** A short text naming an owner, for messages and inspection. @category utils */
export const ownerText = (o: LeaseOwner): string => {
  switch (o.kind) {
    case 'endpoint':
      return `endpoint ${o.id}`
    case 'gateway':
      return 'the gateway'
    case 'aux':
      return `auxiliary address ${o.name}`
    case 'runtime':
      return `runtime reservation ${o.ref}`
  }
}

/** Whether two owners are the same holder. @category utils */
export const sameOwner = (a: LeaseOwner, b: LeaseOwner): boolean => ownerText(a) === ownerText(b)
