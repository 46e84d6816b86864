/**
 * Which addresses a pool may hand out, as a dense index space: the pool's subnet, cut down to its
 * ranges, less the addresses no one may ever hold (network, IPv4 broadcast, IPv6 subnet-router
 * anycast, excluded addresses). Index `i` maps to the i-th such address, so the allocator can
 * keep a bitmap of indices. Pure; property-tested without a store.
 */
import * as E from 'fp-ts/lib/Either.js'
import { invalidConfig, type CoreError } from '../errors.js'
import { boundsOf, familyOf, splitCidr, toBigInt, type Family, type IpAddress, type Subnet } from '../model/Address.js'
import type { IpRange } from '../model/Ipam.js'

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** A run of consecutive usable addresses; `at` is the index of `first`. @category model */
export interface Segment {
  readonly first: bigint
  readonly last: bigint
  readonly at: bigint
}

/** The usable addresses of a pool, in ascending order. @category model */
export interface Span {
  readonly family: Family
  readonly subnet: Subnet
  readonly segments: ReadonlyArray<Segment>
  /** How many addresses the span holds. */
  readonly size: bigint
}

/** What decides a span: nothing else of a pool may change which addresses are usable. @category model */
export interface SpanInput {
  readonly subnet: Subnet
  readonly ranges: ReadonlyArray<IpRange>
  readonly excluded: ReadonlyArray<IpAddress>
}

// -------------------------------------------------------------------------------------
// address formatting (the hot path: no ipaddr.js objects, few BigInt operations)
// -------------------------------------------------------------------------------------

const formatV4 = (n: number): string => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`

// RFC 5952 §4.2: compress the longest run of two or more zero groups, the leftmost on a tie;
// this is what ipaddr.js prints, so the result equals the IpAddress codec's canonical form.
const formatV6 = (n: bigint): string => {
  const g: number[] = [0, 0, 0, 0, 0, 0, 0, 0]
  let v = n
  for (let k = 3; k >= 0; k--) {
    const w = Number(v & 0xffffffffn)
    g[2 * k] = w >>> 16
    g[2 * k + 1] = w & 0xffff
    v >>= 32n
  }
  let bestAt = -1
  let bestLen = 1
  let runAt = 0
  let runLen = 0
  for (let i = 0; i < 8; i++) {
    if (g[i] === 0) {
      if (runLen === 0) runAt = i
      runLen++
      if (runLen > bestLen) {
        bestLen = runLen
        bestAt = runAt
      }
    } else runLen = 0
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':')
  return bestAt < 0 ? hex(g) : `${hex(g.slice(0, bestAt))}::${hex(g.slice(bestAt + bestLen))}`
}

const parseV4 = (s: string): number => {
  let n = 0
  let part = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 46) {
      n = n * 256 + part
      part = 0
    } else part = part * 10 + (c - 48)
  }
  return n * 256 + part
}

const groupsToBigInt = (g: ReadonlyArray<number>): bigint => {
  let v = 0n
  for (let k = 0; k < 8; k += 2) v = (v << 32n) | BigInt((g[k]! * 65536 + g[k + 1]!) >>> 0)
  return v
}

const parseV6 = (s: string): bigint | undefined => {
  if (s.includes('.') || s.includes('%')) return undefined
  const gap = s.indexOf('::')
  const hex = (part: string): number[] => (part === '' ? [] : part.split(':').map((x) => parseInt(x, 16)))
  const head = hex(gap < 0 ? s : s.slice(0, gap))
  const tail = gap < 0 ? [] : hex(s.slice(gap + 2))
  const fill = 8 - head.length - tail.length
  if (fill < 0 || (gap < 0 && fill !== 0)) return undefined
  const g = [...head, ...new Array<number>(fill).fill(0), ...tail]
  return g.every((x) => x >= 0 && x <= 0xffff) ? groupsToBigInt(g) : undefined
}

/**
 * The integer of an address: `toBigInt` without ipaddr.js objects, for reading many leases.
 *
 * @category utils
 */
export const addressValue = (a: IpAddress): bigint => {
  if (!a.includes(':')) return BigInt(parseV4(a))
  return parseV6(a) ?? toBigInt(a)
}

/**
 * The canonical text of an address given as an integer (equal to what the IpAddress codec gives).
 *
 * @category utils
 */
export const formatAddress = (n: bigint, family: Family): IpAddress =>
  (family === 4 ? formatV4(Number(n)) : formatV6(n)) as IpAddress

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

const hostBits = (s: Subnet): number => (familyOf(s) === 4 ? 32 : 128) - splitCidr(s).prefix

/**
 * Whether a subnet has no room for a gateway and one address (IPv4 /31 and /32, IPv6 /127 and
 * /128), as host-local refuses them: "Network … too small to allocate from".
 *
 * @category utils
 */
export const tooSmall = (s: Subnet): boolean => hostBits(s) < 2

/**
 * A Docker `--ip-range` sub-subnet as a pool range: all of its addresses.
 *
 * @category constructors
 */
export const poolRangeOfSubnet = (s: Subnet): IpRange => {
  const { first, last, family } = boundsOf(s)
  return { start: formatAddress(first, family), end: formatAddress(last, family) }
}

/**
 * Ranges sorted by start, checked to lie in the subnet, to be in order and not to overlap
 * (a CNI range set must not overlap either).
 *
 * @category constructors
 */
export const normaliseRanges = (
  subnet: Subnet,
  ranges: ReadonlyArray<IpRange>
): E.Either<CoreError, ReadonlyArray<IpRange>> => {
  const b = boundsOf(subnet)
  const parsed: Array<{ r: IpRange; s: bigint; e: bigint }> = []
  for (const r of ranges) {
    if (familyOf(r.start) !== b.family || familyOf(r.end) !== b.family) {
      return E.left(invalidConfig(`range ${r.start}-${r.end} is not of the family of ${subnet}`))
    }
    const s = toBigInt(r.start)
    const e = toBigInt(r.end)
    if (s < b.first || e > b.last) return E.left(invalidConfig(`range ${r.start}-${r.end} is outside ${subnet}`))
    if (s > e) return E.left(invalidConfig(`range ${r.start}-${r.end} ends before it starts`))
    parsed.push({ r, s, e })
  }
  parsed.sort((x, y) => (x.s < y.s ? -1 : x.s > y.s ? 1 : 0))
  for (let i = 1; i < parsed.length; i++) {
    const prev = parsed[i - 1]!
    const cur = parsed[i]!
    if (cur.s <= prev.e) {
      return E.left(invalidConfig(`ranges ${prev.r.start}-${prev.r.end} and ${cur.r.start}-${cur.r.end} overlap`))
    }
  }
  return E.right(parsed.map((p) => p.r))
}

/**
 * The usable addresses of a pool: its ranges (the whole subnet when there are none) without the
 * network address (also the IPv6 subnet-router anycast), the IPv4 broadcast and the excluded
 * addresses. The gateway and auxiliary addresses stay in the span: they hold leases, and keeping
 * them makes the index space independent of a gateway that moves.
 *
 * @category constructors
 */
export const usableSpan = (input: SpanInput): E.Either<CoreError, Span> => {
  const { subnet } = input
  if (tooSmall(subnet)) return E.left(invalidConfig(`network ${subnet} too small to allocate from`))
  const b = boundsOf(subnet)
  return E.chain((ranges: ReadonlyArray<IpRange>) => {
    const allowed: Array<[bigint, bigint]> =
      ranges.length === 0 ? [[b.first, b.last]] : ranges.map((r) => [toBigInt(r.start), toBigInt(r.end)])
    const holes = new Set<bigint>([b.first])
    if (b.family === 4) holes.add(b.last)
    for (const x of input.excluded) if (familyOf(x) === b.family) holes.add(toBigInt(x))
    const sortedHoles = [...holes].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))
    const segments: Segment[] = []
    let at = 0n
    for (const [lo, hi] of allowed) {
      let start = lo
      for (const h of sortedHoles) {
        if (h < start || h > hi) continue
        if (h > start) {
          segments.push({ first: start, last: h - 1n, at })
          at += h - start
        }
        start = h + 1n
      }
      if (start <= hi) {
        segments.push({ first: start, last: hi, at })
        at += hi - start + 1n
      }
    }
    return at === 0n
      ? E.left(invalidConfig(`pool ${subnet} has no address left to hand out`))
      : E.right({ family: b.family, subnet, segments, size: at })
  })(normaliseRanges(subnet, input.ranges))
}

// -------------------------------------------------------------------------------------
// utils: index <-> address
// -------------------------------------------------------------------------------------

// The last segment whose index range starts at or before `i` (segments are few: binary search).
const segmentOfIndex = (span: Span, i: bigint): Segment => {
  const segs = span.segments
  let lo = 0
  let hi = segs.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (segs[mid]!.at <= i) lo = mid
    else hi = mid - 1
  }
  return segs[lo]!
}

/**
 * The integer of the address at index `i` (0 <= i < size).
 *
 * @category utils
 */
export const valueAt = (span: Span, i: bigint): bigint => {
  const s = segmentOfIndex(span, i)
  return s.first + (i - s.at)
}

/**
 * The address at index `i` (0 <= i < size).
 *
 * @category utils
 */
export const addressAt = (span: Span, i: bigint): IpAddress => formatAddress(valueAt(span, i), span.family)

/**
 * The index of the greatest usable address at or below `n`; -1 when there is none. A cursor
 * that names an address outside the span (a gateway, a pool since recreated) still orders.
 *
 * @category utils
 */
export const indexAtOrBefore = (span: Span, n: bigint): bigint => {
  let best = -1n
  for (const s of span.segments) {
    if (s.first > n) break
    best = n >= s.last ? s.at + (s.last - s.first) : s.at + (n - s.first)
  }
  return best
}

/**
 * The index of address `n`, or undefined when it is not usable.
 *
 * @category utils
 */
export const indexOfValue = (span: Span, n: bigint): bigint | undefined => {
  for (const s of span.segments) {
    if (n < s.first) return undefined
    if (n <= s.last) return s.at + (n - s.first)
  }
  return undefined
}

/**
 * The index of an address, or undefined when it is not usable (or of the other family).
 *
 * @category utils
 */
export const indexOf = (span: Span, a: IpAddress): bigint | undefined =>
  familyOf(a) === span.family ? indexOfValue(span, addressValue(a)) : undefined

/**
 * Why an address may never be handed out by a pool of `subnet`, or undefined when its place in
 * the subnet allows it (ranges, gateway and leases are checked elsewhere).
 *
 * @category utils
 */
export const forbiddenReason = (subnet: Subnet, a: IpAddress): string | undefined => {
  const b = boundsOf(subnet)
  if (familyOf(a) !== b.family) return `not an IPv${b.family} address`
  const n = toBigInt(a)
  if (n < b.first || n > b.last) return `outside ${subnet}`
  if (n === b.first) return b.family === 4 ? 'the network address' : 'the subnet-router anycast address'
  if (b.family === 4 && n === b.last) return 'the broadcast address'
  return undefined
}
