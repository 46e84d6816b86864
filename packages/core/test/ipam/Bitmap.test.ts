import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { IpamAllocator, IpamBitmap } from '@isthmus/core'

const { bitmap } = IpamBitmap
const { freeSpace, nextCandidate } = IpamAllocator

// sizes around the word and level boundaries (32, 1024, 32768)
const size = fc.oneof(
  fc.constantFrom(1, 2, 31, 32, 33, 63, 64, 65, 1023, 1024, 1025, 32767, 32768, 32769),
  fc.integer({ min: 1, max: 70_000 })
)
type Op = { op: 'set' | 'clear' | 'next'; at: number }
const ops = fc.array(
  fc.record({
    op: fc.constantFrom<Op['op']>('set', 'set', 'clear', 'next'),
    at: fc.double({ min: 0, max: 1, noNaN: true })
  }),
  { maxLength: 200 }
)

describe('Bitmap', () => {
  it('finds the same next clear bit as a plain set, whatever the operations', () => {
    fc.assert(
      fc.property(size, ops, fc.boolean(), (n, steps, dense) => {
        const bm = bitmap(n)
        const used = new Set<number>()
        // a nearly full map exercises the summary levels
        if (dense) {
          for (let i = 0; i < n; i += 1 + (i % 3)) {
            bm.set(i)
            used.add(i)
          }
        }
        for (const s of steps) {
          const i = Math.min(n - 1, Math.floor(s.at * n))
          if (s.op === 'set') {
            bm.set(i)
            used.add(i)
          } else if (s.op === 'clear') {
            bm.clear(i)
            used.delete(i)
          } else {
            let want = -1
            for (let j = i; j < n; j++) {
              if (!used.has(j)) {
                want = j
                break
              }
            }
            assert.equal(bm.nextClear(i), want)
          }
          assert.equal(bm.count(), used.size)
          assert.equal(bm.has(i), used.has(i))
        }
      }),
      { numRuns: 300 }
    )
  })

  it('reports a full map and finds the one bit cleared in it', () => {
    const n = 33_000
    const bm = bitmap(n)
    for (let i = 0; i < n; i++) bm.set(i)
    assert.equal(bm.nextClear(0), -1)
    bm.clear(17)
    assert.equal(bm.nextClear(0), 17)
    assert.equal(bm.nextClear(18), -1)
    bm.reset()
    assert.equal(bm.count(), 0)
    assert.equal(bm.nextClear(n - 1), n - 1)
  })
})

describe('Allocator: candidate search', () => {
  it('gives the first index after the cursor not known used, wrapping (dense and sparse)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.boolean(),
        fc.uniqueArray(fc.nat(299), { maxLength: 300 }),
        fc.nat(300),
        (n, huge, usedRaw, cur) => {
          // a sparse space is tested on indices near its start; its size is past the bitmap limit
          const space = freeSpace(huge ? 1n << 40n : BigInt(n))
          const size = huge ? 1n << 40n : BigInt(n)
          const used = usedRaw.filter((u) => u < n).map(BigInt)
          for (const u of used) space.markUsed(u)
          const cursor = BigInt(cur % (n + 1)) - 1n
          const want = (() => {
            for (let k = 1n; k <= size && k <= BigInt(n) + 2n; k++) {
              const i = (cursor + k + size) % size
              if (!used.includes(i)) return i
            }
            return undefined
          })()
          const got = nextCandidate(space, cursor)
          if (huge || want !== undefined) assert.equal(got, want)
          else assert.equal(got, undefined)
        }
      ),
      { numRuns: 500 }
    )
  })

  it('says undefined only when every index is known used', () => {
    const space = freeSpace(5n)
    for (let i = 0n; i < 5n; i++) space.markUsed(i)
    assert.equal(nextCandidate(space, 2n), undefined)
    space.markFree(1n)
    assert.equal(nextCandidate(space, 2n), 1n)
  })
})
