/**
 * Pool requests and the pool records they become: validation, the default subnets, pool ids
 * and the "identical request" rule Docker relies on. Pure; the engine (Ipam.ts) adds the store.
 */
import * as E from 'fp-ts/lib/Either.js'
import { invalidConfig, type CoreError } from '../errors.js'
import type { AddressSpace, PoolId } from '../ids.js'
import {
  boundsOf,
  familyOf,
  joinCidr,
  splitCidr,
  toBigInt,
  type Family,
  type IpAddress,
  type Subnet
} from '../model/Address.js'
import type { IpRange, Pool, ReservedAddress } from '../model/Ipam.js'
import { forbiddenReason, formatAddress, normaliseRanges, usableSpan } from './Range.js'

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/**
 * What a frontend asks a pool for. Docker RequestPool gives space, subnet (`Pool`), one range
 * (`SubPool`, see `poolRangeOfSubnet`) and options; a CNI range set gives subnet, rangeStart/
 * rangeEnd as `ranges`, gateway and excluded addresses.
 *
 * @category model
 */
export interface PoolRequest {
  readonly addressSpace: AddressSpace
  readonly family: Family
  /** Absent: the first free default subnet of the family (see DEFAULT_V4_POOLS, DEFAULT_V6_POOLS). */
  readonly subnet?: Subnet
  /** Inclusive ranges inside the subnet to hand out from; empty or absent means the whole subnet. */
  readonly ranges?: ReadonlyArray<IpRange>
  /** Absent: the first address of the subnet (network + 1), as Docker and host-local do. */
  readonly gateway?: IpAddress
  /** Named addresses held for the network (Docker --aux-address); each gets a lease. */
  readonly aux?: Readonly<Record<string, IpAddress>>
  /** Addresses never to hand out, with no lease (CNI `exclude`-style lists). */
  readonly excluded?: ReadonlyArray<IpAddress>
  readonly options?: Readonly<Record<string, string>>
}

// -------------------------------------------------------------------------------------
// constants
// -------------------------------------------------------------------------------------

/**
 * Where pools without a subnet come from (IPv4): /24s of 10.200.0.0/16. A /16 of RFC 1918 space
 * away from Docker's own defaults (172.17-31.0.0/16, 192.168.0.0/16 in /20s) and from the
 * usual 10.0.0.0/8 LAN /24s at its start; 256 networks of 253 containers each.
 *
 * @category constants
 */
export const DEFAULT_V4_POOLS = { base: '10.200.0.0/16' as Subnet, prefix: 24 } as const

/**
 * Where pools without a subnet come from (IPv6): /64s of the ULA fd69:7374:686d::/48. RFC 4193
 * wants a random global id per site; this fixed one ("isthm" in ASCII) keeps defaults
 * predictable, and an operator who routes ULAs between sites should give subnets explicitly.
 *
 * @category constants
 */
export const DEFAULT_V6_POOLS = { base: 'fd69:7374:686d::/48' as Subnet, prefix: 64 } as const

// -------------------------------------------------------------------------------------
// utils
// -------------------------------------------------------------------------------------

/**
 * The first subnet of the family's default list that overlaps none of `taken`.
 *
 * @category utils
 */
export const pickSubnet = (family: Family, taken: ReadonlyArray<Subnet>): Subnet | undefined => {
  const d = family === 4 ? DEFAULT_V4_POOLS : DEFAULT_V6_POOLS
  const base = boundsOf(d.base)
  const block = 1n << BigInt((family === 4 ? 32 : 128) - d.prefix)
  const others = taken.filter((s) => familyOf(s) === family).map(boundsOf)
  let cand = base.first
  while (cand + block - 1n <= base.last) {
    const end = cand + block - 1n
    const clash = others.find((o) => o.first <= end && cand <= o.last)
    if (clash === undefined) return joinCidr(formatAddress(cand, family), d.prefix) as Subnet
    // skip to the first block after the clashing subnet
    const next = ((clash.last + 1n + block - 1n) / block) * block
    cand = next > cand ? next : cand + block
  }
  return undefined
}

/** A short text naming a list of ranges (`a-b,c`), for ids and comparisons. @category utils */
export const rangesKey = (ranges: ReadonlyArray<IpRange>): string =>
  ranges.map((r) => (r.start === r.end ? r.start : `${r.start}-${r.end}`)).join(',')

// FNV-1a 32: only to shorten ids that would pass the PoolId length limit.
const fnv32 = (s: string): string => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0).toString(16).padStart(8, '0')
}

/**
 * A pool's id: `<space>/<subnet>`, then `/<ranges>` and `/x<excluded>` when present. It names
 * everything that decides which addresses the pool may hand out, so a process that cached a
 * pool under this id is never wrong about its span, even after the pool was deleted and created
 * again by another process. (Gateway and auxiliary addresses are protected by leases instead.)
 *
 * @category utils
 */
export const poolIdOf = (
  space: AddressSpace,
  subnet: Subnet,
  ranges: ReadonlyArray<IpRange>,
  excluded: ReadonlyArray<IpAddress>
): PoolId => {
  let id = `${space}/${subnet}`
  if (ranges.length > 0) id += `/${rangesKey(ranges)}`
  if (excluded.length > 0) id += `/x${excluded.join(',')}`
  return (id.length <= 512 ? id : `${space}/${subnet}/h${fnv32(id)}${fnv32(`${id}\0`)}`) as PoolId
}

/**
 * Whether a pool answers a request Docker considers identical (same space, subnet and ranges):
 * such a request gets the same pool id with one more reference.
 *
 * @category utils
 */
export const isIdentical = (pool: Pool, space: AddressSpace, subnet: Subnet, ranges: ReadonlyArray<IpRange>): boolean =>
  pool.addressSpace === space && pool.subnet === subnet && rangesKey(pool.ranges) === rangesKey(ranges)

/** The excluded addresses of a pool. @category utils */
export const excludedOf = (p: Pool): ReadonlyArray<IpAddress> =>
  p.reserved.filter((r) => r.reason === 'excluded').map((r) => r.address)

/** The auxiliary addresses of a pool, with their names. @category utils */
export const auxOf = (p: Pool): ReadonlyArray<{ readonly name: string; readonly address: IpAddress }> =>
  p.reserved.filter((r) => r.reason === 'aux').map((r) => ({ name: r.name ?? r.address, address: r.address }))

const byValue = (a: IpAddress, b: IpAddress): number => {
  const x = toBigInt(a)
  const y = toBigInt(b)
  return x < y ? -1 : x > y ? 1 : 0
}

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

/**
 * The pool record (one reference) for a request, once its subnet is known. Checks that every
 * address lies in the subnet and is not its network or broadcast address, that the ranges do
 * not overlap, and that something is left to hand out.
 *
 * @category constructors
 */
export const buildPool = (req: PoolRequest, subnet: Subnet): E.Either<CoreError, Pool> => {
  if (familyOf(subnet) !== req.family) {
    return E.left(invalidConfig(`subnet ${subnet} is not an IPv${req.family} subnet`))
  }
  const inSubnet = (what: string, a: IpAddress): E.Either<CoreError, IpAddress> => {
    const why = forbiddenReason(subnet, a)
    return why === undefined ? E.right(a) : E.left(invalidConfig(`${what} ${a} is ${why}`))
  }
  const ranges = normaliseRanges(subnet, req.ranges ?? [])
  if (E.isLeft(ranges)) return ranges

  const excludedSet = new Set<IpAddress>()
  for (const x of req.excluded ?? []) {
    const ok = inSubnet('excluded address', x)
    if (E.isLeft(ok)) return ok
    excludedSet.add(x)
  }
  const excluded = [...excludedSet].sort(byValue)
  const span = usableSpan({ subnet, ranges: ranges.right, excluded })
  if (E.isLeft(span)) return span

  const aux = Object.entries(req.aux ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  const auxAddresses = new Set<IpAddress>()
  for (const [name, a] of aux) {
    const ok = inSubnet(`auxiliary address ${name}`, a)
    if (E.isLeft(ok)) return ok
    if (auxAddresses.has(a)) return E.left(invalidConfig(`auxiliary address ${a} is given twice`))
    if (excludedSet.has(a)) return E.left(invalidConfig(`auxiliary address ${name} ${a} is also excluded`))
    auxAddresses.add(a)
  }

  let gateway: IpAddress
  if (req.gateway !== undefined) {
    const ok = inSubnet('gateway', req.gateway)
    if (E.isLeft(ok)) return ok
    if (excludedSet.has(req.gateway)) return E.left(invalidConfig(`gateway ${req.gateway} is also excluded`))
    if (auxAddresses.has(req.gateway)) {
      return E.left(invalidConfig(`gateway ${req.gateway} is also an auxiliary address`))
    }
    gateway = req.gateway
  } else {
    const b = boundsOf(subnet)
    let n = b.first + 1n
    const last = b.family === 4 ? b.last - 1n : b.last
    while (n <= last && (excludedSet.has(formatAddress(n, b.family)) || auxAddresses.has(formatAddress(n, b.family)))) {
      n++
    }
    if (n > last) return E.left(invalidConfig(`no address of ${subnet} is left for the gateway`))
    gateway = formatAddress(n, b.family)
  }

  const reserved: ReservedAddress[] = [
    ...aux.map(([name, address]): ReservedAddress => ({ address, reason: 'aux', name })),
    ...excluded.map((address): ReservedAddress => ({ address, reason: 'excluded' }))
  ]
  return E.right({
    id: poolIdOf(req.addressSpace, subnet, ranges.right, excluded),
    addressSpace: req.addressSpace,
    subnet,
    family: req.family,
    ranges: [...ranges.right],
    reserved,
    options: { ...(req.options ?? {}) },
    refs: 1,
    gateway
  })
}

/** The prefix length of a pool's subnet (for `address/prefix` CIDRs). @category utils */
export const prefixOf = (p: Pool): number => splitCidr(p.subnet).prefix
