/**
 * Addresses as they cross boundaries: IP addresses, CIDRs (an address with its prefix, as an
 * interface carries it), subnets (no host bits) and MAC addresses. Each decodes to one canonical
 * string, so two spellings of one address compare equal and records round-trip unchanged.
 */
import * as t from 'io-ts'
import ipaddr from 'ipaddr.js'

/** An address family. @category codecs */
export const Family = t.union([t.literal(4), t.literal(6)], 'Family')
/** @category model */
export type Family = t.TypeOf<typeof Family>

export interface IpAddressBrand {
  readonly IpAddress: unique symbol
}
export interface CidrBrand {
  readonly Cidr: unique symbol
}
export interface SubnetBrand {
  readonly Subnet: unique symbol
}
export interface MacAddressBrand {
  readonly MacAddress: unique symbol
}

/** A canonical IPv4 dotted quad or compressed lowercase IPv6 address. @category model */
export type IpAddress = string & IpAddressBrand
/** An address with a prefix length, `10.0.0.5/24`. @category model */
export type Cidr = string & CidrBrand
/** A network: a CIDR whose host bits are zero, `10.0.0.0/24`. @category model */
export type Subnet = Cidr & SubnetBrand
/** A lowercase colon-separated 48-bit MAC address. @category model */
export type MacAddress = string & MacAddressBrand

// ipaddr.isValid accepts '0x7f.1' and other inet_aton forms: insist on four decimal parts.
const parseIp = (s: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined => {
  if (ipaddr.IPv4.isValidFourPartDecimal(s)) return ipaddr.IPv4.parse(s)
  if (s.includes(':') && ipaddr.IPv6.isValid(s) && !s.includes('%')) {
    return ipaddr.IPv6.parse(s)
  }
  return undefined
}

const canonical = (a: ipaddr.IPv4 | ipaddr.IPv6): string => a.toString()

/** @category utils */
export const familyOf = (a: IpAddress | Cidr): Family => (a.includes(':') ? 6 : 4)

/** @category codecs */
export const IpAddress = new t.Type<IpAddress, string, unknown>(
  'IpAddress',
  (u): u is IpAddress => typeof u === 'string' && parseIp(u) !== undefined && canonical(parseIp(u)!) === u,
  (u, c) => {
    if (typeof u !== 'string') return t.failure(u, c, 'an IP address')
    const a = parseIp(u)
    return a === undefined ? t.failure(u, c, 'an IP address') : t.success(canonical(a) as IpAddress)
  },
  (a) => a
)

const parseCidr = (s: string): { addr: ipaddr.IPv4 | ipaddr.IPv6; prefix: number } | undefined => {
  const slash = s.indexOf('/')
  if (slash < 0) return undefined
  const addr = parseIp(s.slice(0, slash))
  const p = s.slice(slash + 1)
  if (addr === undefined || !/^\d{1,3}$/.test(p)) return undefined
  const prefix = Number(p)
  return prefix > (addr.kind() === 'ipv4' ? 32 : 128) ? undefined : { addr, prefix }
}

/** @category codecs */
export const Cidr = new t.Type<Cidr, string, unknown>(
  'Cidr',
  (u): u is Cidr => typeof u === 'string' && isCanonicalCidr(u),
  (u, c) => {
    if (typeof u !== 'string') return t.failure(u, c, 'a CIDR such as 10.0.0.5/24')
    const p = parseCidr(u)
    return p === undefined
      ? t.failure(u, c, 'a CIDR such as 10.0.0.5/24')
      : t.success(`${canonical(p.addr)}/${p.prefix}` as Cidr)
  },
  (a) => a
)
const isCanonicalCidr = (s: string): boolean => {
  const p = parseCidr(s)
  return p !== undefined && `${canonical(p.addr)}/${p.prefix}` === s
}

/** @category codecs */
export const Subnet = new t.Type<Subnet, string, unknown>(
  'Subnet',
  (u): u is Subnet => typeof u === 'string' && isCanonicalCidr(u) && networkOf(u as Cidr) === u,
  (u, c) => {
    if (typeof u !== 'string') return t.failure(u, c, 'a subnet such as 10.0.0.0/24')
    const p = parseCidr(u)
    if (p === undefined) return t.failure(u, c, 'a subnet such as 10.0.0.0/24')
    const s = `${canonical(p.addr)}/${p.prefix}` as Cidr
    const net = networkOf(s)
    return net === s ? t.success(net) : t.failure(u, c, `a subnet without host bits (${net})`)
  },
  (a) => a
)

/** @category codecs */
export const MacAddress = new t.Type<MacAddress, string, unknown>(
  'MacAddress',
  (u): u is MacAddress => typeof u === 'string' && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(u),
  (u, c) => {
    if (typeof u !== 'string') return t.failure(u, c, 'a MAC address such as 02:42:0a:00:00:02')
    const s = u.trim().toLowerCase().replace(/-/g, ':')
    return /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(s)
      ? t.success(s as MacAddress)
      : t.failure(u, c, 'a MAC address such as 02:42:0a:00:00:02')
  },
  (a) => a
)

// -------------------------------------------------------------------------------------
// utils: pure CIDR maths shared by IPAM and the adapters
// -------------------------------------------------------------------------------------

const bitsOf = (f: Family): number => (f === 4 ? 32 : 128)

/** The address as an unsigned integer. @category utils */
export const toBigInt = (a: IpAddress): bigint => {
  const bytes = ipaddr.parse(a).toByteArray()
  let n = 0n
  for (const b of bytes) n = (n << 8n) | BigInt(b)
  return n
}

/** The address of an integer in a family. @category utils */
export const fromBigInt = (n: bigint, f: Family): IpAddress => {
  const len = f === 4 ? 4 : 16
  const bytes: number[] = new Array<number>(len)
  let v = n
  for (let i = len - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn)
    v >>= 8n
  }
  return canonical(ipaddr.fromByteArray(bytes)) as IpAddress
}

/** Split a CIDR into its address and prefix length. @category utils */
export const splitCidr = (c: Cidr): { readonly address: IpAddress; readonly prefix: number } => {
  const slash = c.indexOf('/')
  return { address: c.slice(0, slash) as IpAddress, prefix: Number(c.slice(slash + 1)) }
}

/** `address/prefix` as a CIDR. @category utils */
export const joinCidr = (address: IpAddress, prefix: number): Cidr => `${address}/${prefix}` as Cidr

/** The network a CIDR lies in. @category utils */
export const networkOf = (c: Cidr): Subnet => {
  const { address, prefix } = splitCidr(c)
  const f = familyOf(address)
  const host = bitsOf(f) - prefix
  const n = (toBigInt(address) >> BigInt(host)) << BigInt(host)
  return joinCidr(fromBigInt(n, f), prefix) as Subnet
}

/** First and last address of a subnet (network and broadcast for IPv4). @category utils */
export const boundsOf = (s: Subnet): { readonly first: bigint; readonly last: bigint; readonly family: Family } => {
  const { address, prefix } = splitCidr(s)
  const family = familyOf(address)
  const first = toBigInt(address)
  return { first, last: first + (1n << BigInt(bitsOf(family) - prefix)) - 1n, family }
}

/** Whether an address lies inside a subnet. @category utils */
export const contains = (s: Subnet, a: IpAddress): boolean => {
  if (familyOf(a) !== familyOf(s)) return false
  const { first, last } = boundsOf(s)
  const n = toBigInt(a)
  return n >= first && n <= last
}

/** Whether two subnets share any address. @category utils */
export const overlaps = (a: Subnet, b: Subnet): boolean => {
  if (familyOf(a) !== familyOf(b)) return false
  const x = boundsOf(a)
  const y = boundsOf(b)
  return x.first <= y.last && y.first <= x.last
}
