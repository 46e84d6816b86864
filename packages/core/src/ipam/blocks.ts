/**
 * Blocks of a cluster network's subnet: the pieces hosts claim (pure maths). A cluster pool keeps
 * the blocks its host holds as its `ranges`, one range per block, so the engine's spans and hints
 * serve a cluster pool unchanged and a restarted host knows its blocks without the cluster.
 */
import * as E from 'fp-ts/lib/Either.js'
import { invalidConfig, type CoreError } from '../errors.js'
import { boundsOf, familyOf, joinCidr, splitCidr, type Family, type IpAddress, type Subnet } from '../model/Address.js'
import type { IpRange } from '../model/Ipam.js'
import { addressValue, formatAddress, poolRangeOfSubnet } from './Range.js'

const bitsOf = (f: Family): number => (f === 4 ? 32 : 128)

/**
 * Whether `prefix` cuts `subnet` into blocks: longer than the subnet's own prefix (one block for
 * the whole subnet would make it one host's), and leaving at least four addresses per block, so
 * that a block holding the network address and the gateway still has one to hand out.
 *
 * @category utils
 */
export const checkBlockPrefix = (subnet: Subnet, prefix: number): E.Either<CoreError, number> => {
  const f = familyOf(subnet)
  const own = splitCidr(subnet).prefix
  if (!Number.isInteger(prefix) || prefix <= own || prefix > bitsOf(f) - 2) {
    return E.left(
      invalidConfig(
        `block prefix /${prefix} does not cut ${subnet} into blocks: give a prefix longer than /${own} and at most /${bitsOf(f) - 2}`
      )
    )
  }
  return E.right(prefix)
}

/** The block of `prefix` bits holding `address`. @category utils */
export const blockOf = (address: IpAddress, prefix: number): Subnet => {
  const f = familyOf(address)
  const host = BigInt(bitsOf(f) - prefix)
  return joinCidr(formatAddress((addressValue(address) >> host) << host, f), prefix) as Subnet
}

/** A block as a pool range (all of its addresses). @category utils */
export const rangeOfBlock = (block: Subnet): IpRange => poolRangeOfSubnet(block)

/** The blocks a cluster pool's ranges stand for. @category utils */
export const blocksOfRanges = (ranges: ReadonlyArray<IpRange>, prefix: number): ReadonlyArray<Subnet> =>
  ranges.map((r) => blockOf(r.start, prefix))

/** Whether `address` lies in one of `blocks`. @category utils */
export const inBlocks = (blocks: ReadonlyArray<Subnet>, address: IpAddress, prefix: number): boolean =>
  familyOf(address) === (blocks[0] === undefined ? familyOf(address) : familyOf(blocks[0])) &&
  blocks.includes(blockOf(address, prefix))

/** Ranges for `blocks`, in address order (what a pool record keeps). @category utils */
export const rangesOfBlocks = (blocks: ReadonlyArray<Subnet>): IpRange[] =>
  [...new Set(blocks)]
    .map((b) => ({ b, v: boundsOf(b).first }))
    .sort((x, y) => (x.v < y.v ? -1 : x.v > y.v ? 1 : 0))
    .map(({ b }) => rangeOfBlock(b))

/**
 * The first block of `subnet` (in address order) not in `taken`; undefined when every block is.
 * Walks only past taken blocks, so its cost grows with the blocks claimed, not the subnet's size.
 *
 * @category utils
 */
export const firstFreeBlock = (subnet: Subnet, prefix: number, taken: ReadonlySet<string>): Subnet | undefined => {
  const { first, last, family } = boundsOf(subnet)
  const size = 1n << BigInt(bitsOf(family) - prefix)
  for (let at = first; at <= last; at += size) {
    const block = joinCidr(formatAddress(at, family), prefix) as Subnet
    if (!taken.has(block)) return block
  }
  return undefined
}
