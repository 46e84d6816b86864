/** Shared helpers of the IPAM tests: unwrapping results and an independent address oracle. */
import ipaddr from 'ipaddr.js'
import type { IpAddress, Pool } from '@isthmus/core'

export const clock = { now: () => new Date('2026-01-01T00:00:00Z') }

// Address maths through ipaddr.js only, so the oracle shares no code with the engine.
const bytesToBig = (bytes: number[]): bigint => bytes.reduce((n, b) => (n << 8n) | BigInt(b), 0n)
export const big = (a: string): bigint => bytesToBig(ipaddr.parse(a).toByteArray())
export const text = (n: bigint, family: 4 | 6): IpAddress => {
  const len = family === 4 ? 4 : 16
  const bytes: number[] = []
  for (let i = 0; i < len; i++) bytes.push(Number((n >> BigInt(8 * (len - 1 - i))) & 0xffn))
  return ipaddr.fromByteArray(bytes).toString() as IpAddress
}

/**
 * Every address a pool may hand out, in order, computed the slow way from the pool record:
 * in the subnet, in a range if there are ranges, not network/broadcast/anycast, not gateway,
 * not excluded or aux.
 */
export const usableOf = (pool: Pool): IpAddress[] => {
  const [addr, prefix] = ipaddr.parseCIDR(pool.subnet)
  const family = addr.kind() === 'ipv4' ? 4 : 6
  const bits = family === 4 ? 32 : 128
  const first = big(addr.toString())
  const last = first + (1n << BigInt(bits - prefix)) - 1n
  const ranges = pool.ranges.map((r) => [big(r.start), big(r.end)] as const)
  const never = new Set([pool.gateway, ...pool.reserved.map((r) => r.address)])
  const out: IpAddress[] = []
  for (let n = first + 1n; n <= (family === 4 ? last - 1n : last); n++) {
    if (ranges.length > 0 && !ranges.some(([s, e]) => n >= s && n <= e)) continue
    const a = text(n, family)
    if (!never.has(a)) out.push(a)
  }
  return out
}

// One pair for every suite: @isthmus/core/testing's.
export { left, right } from '@isthmus/core/testing'
