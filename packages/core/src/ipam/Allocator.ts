/**
 * The allocator's in-memory knowledge of a pool: which indices of its span are known to be used,
 * and where round-robin allocation continues. It is only a hint (the Store's `reserve` decides),
 * so "unknown" means "maybe free". Dense spans (up to 2^24 addresses) use a hierarchical bitmap;
 * larger ones (IPv6) a set of used indices, where the candidate after the cursor is almost
 * always free.
 */
import { bitmap } from './Bitmap.js'

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** @category model */
export interface FreeSpace {
  readonly size: bigint
  readonly isUsed: (i: bigint) => boolean
  readonly markUsed: (i: bigint) => void
  readonly markFree: (i: bigint) => void
  /** The first index at or after `from`, cyclically, not known to be used; undefined when all are. */
  readonly nextFree: (from: bigint) => bigint | undefined
  /** Forget everything (before reloading from the store). */
  readonly reset: () => void
  readonly usedCount: () => number
}

/** The largest span kept as a bitmap (2 MiB of bits at most). @category constants */
export const DENSE_LIMIT = 1n << 24n

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

const denseSpace = (size: bigint): FreeSpace => {
  const bm = bitmap(Number(size))
  return {
    size,
    isUsed: (i) => bm.has(Number(i)),
    markUsed: (i) => bm.set(Number(i)),
    markFree: (i) => bm.clear(Number(i)),
    nextFree: (from) => {
      const f = Number(from)
      let i = bm.nextClear(f)
      if (i < 0 && f > 0) i = bm.nextClear(0)
      return i < 0 ? undefined : BigInt(i)
    },
    reset: bm.reset,
    usedCount: bm.count
  }
}

// A walk from `from` meets at most `used.size` used indices before a free one, and in a span
// larger than 2^24 the walk from the round-robin cursor almost never meets any.
const sparseSpace = (size: bigint): FreeSpace => {
  const used = new Set<bigint>()
  return {
    size,
    isUsed: (i) => used.has(i),
    markUsed: (i) => {
      used.add(i)
    },
    markFree: (i) => {
      used.delete(i)
    },
    nextFree: (from) => {
      if (BigInt(used.size) >= size) return undefined
      let i = from
      while (used.has(i)) {
        i = i + 1n === size ? 0n : i + 1n
        if (i === from) return undefined
      }
      return i
    },
    reset: () => used.clear(),
    usedCount: () => used.size
  }
}

/**
 * An empty hint for a span of `size` addresses (size >= 1).
 *
 * @category constructors
 */
export const freeSpace = (size: bigint): FreeSpace => (size <= DENSE_LIMIT ? denseSpace(size) : sparseSpace(size))

// -------------------------------------------------------------------------------------
// utils
// -------------------------------------------------------------------------------------

/**
 * The next index to try after `cursor` (the index handed out last, -1 for none), wrapping at the
 * end of the span: host-local's round robin, so an address just released is not the next one
 * handed out. Undefined when every index is known to be used.
 *
 * @category utils
 */
export const nextCandidate = (space: FreeSpace, cursor: bigint): bigint | undefined => {
  const from = cursor + 1n
  return space.nextFree(from >= space.size || from < 0n ? 0n : from)
}
