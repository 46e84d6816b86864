/**
 * A hierarchical bitmap over [0, size): level 0 holds one bit per index (set = used), each level
 * above holds one bit per word of the level below (set = that word is full). Finding the next
 * clear bit at or after a position climbs and descends the levels: O(log32 size) word reads
 * whatever the fill, which keeps an allocation's cost flat as a pool fills up.
 */

/** @category model */
export interface Bitmap {
  readonly size: number
  readonly has: (i: number) => boolean
  readonly set: (i: number) => void
  readonly clear: (i: number) => void
  /** The smallest clear index >= `from`, or -1 when every index from there on is set. */
  readonly nextClear: (from: number) => number
  /** Clear every bit. */
  readonly reset: () => void
  /** How many bits are set. */
  readonly count: () => number
}

const FULL = -1 // an Int32 word with all 32 bits set

// Index of the lowest zero bit of a word that is not FULL.
const lowestZero = (word: number): number => {
  const x = ~word
  return 31 - Math.clz32(x & -x)
}

/**
 * A bitmap of `size` clear bits (size >= 1).
 *
 * @category constructors
 */
export const bitmap = (size: number): Bitmap => {
  // lengths[h] = number of meaningful bits at level h
  const lengths: number[] = [size]
  while (lengths[lengths.length - 1]! > 32) lengths.push(Math.ceil(lengths[lengths.length - 1]! / 32))
  const levels = lengths.map((n) => new Int32Array(Math.ceil(n / 32)))
  let used = 0

  // Bits past the end count as set, so that they are never found and full words are detectable.
  const pad = (): void => {
    for (let h = 0; h < levels.length; h++) {
      const n = lengths[h]!
      const words = levels[h]!
      const tail = n & 31
      if (tail !== 0) words[words.length - 1] = ~((1 << tail) - 1)
    }
  }
  pad()

  const has = (i: number): boolean => ((levels[0]![i >>> 5]! >>> (i & 31)) & 1) === 1

  const set = (i: number): void => {
    if (has(i)) return
    used++
    let idx = i
    for (let h = 0; h < levels.length; h++) {
      const words = levels[h]!
      const w = idx >>> 5
      const word = words[w]! | (1 << (idx & 31))
      words[w] = word
      if (word !== FULL) return
      idx = w
    }
  }

  const clear = (i: number): void => {
    if (!has(i)) return
    used--
    let idx = i
    for (let h = 0; h < levels.length; h++) {
      const words = levels[h]!
      const w = idx >>> 5
      const wasFull = words[w] === FULL
      words[w] = words[w]! & ~(1 << (idx & 31))
      if (!wasFull) return
      idx = w
    }
  }

  const nextClear = (from: number): number => {
    if (from >= size) return -1
    let h = 0
    let i = from < 0 ? 0 : from
    // climb: at level h, look for a clear bit >= i in i's word; if none, the answer lies after
    // that word, which is the next bit one level up
    for (;;) {
      const words = levels[h]!
      const w = i >>> 5
      if (w >= words.length) return -1
      const word = words[w]! | ((1 << (i & 31)) - 1)
      if (word !== FULL) {
        i = (w << 5) + lowestZero(word)
        break
      }
      h++
      if (h === levels.length) return -1
      i = w + 1
    }
    // descend: a clear bit at level h names a word below with a clear bit in it
    while (h > 0) {
      h--
      const w = i
      i = (w << 5) + lowestZero(levels[h]![w]!)
    }
    return i
  }

  const reset = (): void => {
    for (const words of levels) words.fill(0)
    used = 0
    pad()
  }

  return { size, has, set, clear, nextClear, reset, count: () => used }
}
