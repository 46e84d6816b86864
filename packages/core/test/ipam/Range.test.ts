import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import * as E from 'fp-ts/lib/Either.js'
import ipaddr from 'ipaddr.js'
import { IpAddress, IpamRange, poolRangeOfSubnet, toBigInt, type IpRange, type Subnet } from '@isthmus/core'
import { big, text } from './helpers.js'

const { addressAt, addressValue, formatAddress, indexAtOrBefore, indexOf, usableSpan } = IpamRange

const groups = fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
  minLength: 8,
  maxLength: 8
})
const v6Value = groups.map((g) => g.reduce((n, x) => (n << 16n) | BigInt(x), 0n))
const v4Value = fc.integer({ min: 0, max: 2 ** 32 - 1 }).map(BigInt)

describe('Range: address text', () => {
  it('formats integers exactly as the IpAddress codec canonicalises them (RFC 5952)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          v4Value.map((n) => [n, 4] as const),
          v6Value.map((n) => [n, 6] as const)
        ),
        ([n, f]) => {
          const a = formatAddress(n, f)
          assert.equal(a, text(n, f))
          assert.ok(IpAddress.is(a))
        }
      ),
      { numRuns: 2000 }
    )
  })

  it('parses canonical addresses to the same integer as toBigInt', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          v4Value.map((n) => text(n, 4)),
          v6Value.map((n) => text(n, 6))
        ),
        (a) => {
          assert.equal(addressValue(a), toBigInt(a))
        }
      ),
      { numRuns: 2000 }
    )
  })
})

// a random v4 pool: subnet /22../30 in 10.0.0.0/8, ranges and excluded as offsets
const v4Input = fc
  .record({
    net: fc.integer({ min: 0, max: 2 ** 24 - 1 }),
    prefix: fc.integer({ min: 22, max: 30 }),
    cuts: fc.uniqueArray(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 4 }),
    excl: fc.uniqueArray(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 5 })
  })
  .map(({ net, prefix, cuts, excl }) => {
    const size = 2 ** (32 - prefix)
    const first = BigInt(((10 * 2 ** 24 + net) >>> (32 - prefix)) * size) // aligned
    const offs = [...new Set(cuts.map((c) => Math.min(size - 1, Math.floor(c * size))))].sort((a, b) => a - b)
    const ranges: IpRange[] = []
    for (let i = 0; i + 1 < offs.length; i += 2) {
      ranges.push({ start: text(first + BigInt(offs[i]!), 4), end: text(first + BigInt(offs[i + 1]!), 4) })
    }
    const subnet = `${text(first, 4)}/${prefix}` as Subnet
    const excluded = excl.map((e) => text(first + BigInt(Math.min(size - 1, Math.floor(e * size))), 4))
    return { subnet, ranges, excluded, first, size }
  })

describe('Range: usable span', () => {
  it('holds exactly the addresses in the subnet and ranges, less network, broadcast and excluded', () => {
    fc.assert(
      fc.property(v4Input, ({ subnet, ranges, excluded, first, size }) => {
        const expected: string[] = []
        for (let o = 1; o < size - 1; o++) {
          const n = first + BigInt(o)
          if (ranges.length > 0 && !ranges.some((r) => n >= big(r.start) && n <= big(r.end))) continue
          const a = text(n, 4)
          if (!excluded.includes(a)) expected.push(a)
        }
        const span = usableSpan({ subnet, ranges, excluded })
        if (expected.length === 0) {
          assert.ok(E.isLeft(span) && span.left._tag === 'InvalidConfig')
          return
        }
        assert.ok(E.isRight(span))
        const s = span.right
        assert.equal(s.size, BigInt(expected.length))
        expected.forEach((a, i) => {
          assert.equal(addressAt(s, BigInt(i)), a)
          assert.equal(indexOf(s, a as IpAddress), BigInt(i))
        })
        for (const x of excluded) assert.equal(indexOf(s, x), undefined)
        assert.equal(indexOf(s, text(first, 4)), undefined)
        assert.equal(indexOf(s, text(first + BigInt(size - 1), 4)), undefined)
      }),
      { numRuns: 300 }
    )
  })

  it('orders a cursor that is not in the span after the last usable address before it', () => {
    const s = usableSpan({ subnet: '10.0.0.0/29' as Subnet, ranges: [], excluded: ['10.0.0.3' as IpAddress] })
    assert.ok(E.isRight(s))
    // usable: .1 .2 .4 .5 .6
    assert.equal(indexAtOrBefore(s.right, big('10.0.0.3')), 1n)
    assert.equal(indexAtOrBefore(s.right, big('10.0.0.0')), -1n)
    assert.equal(indexAtOrBefore(s.right, big('10.0.0.7')), 4n)
    assert.equal(indexAtOrBefore(s.right, big('10.0.1.0')), 4n)
  })

  it('keeps the IPv6 last address but not the subnet-router anycast (all-zero host)', () => {
    const s = usableSpan({ subnet: 'fd00::/64' as Subnet, ranges: [], excluded: [] })
    assert.ok(E.isRight(s))
    assert.equal(s.right.size, 2n ** 64n - 1n)
    assert.equal(addressAt(s.right, 0n), 'fd00::1')
    assert.equal(addressAt(s.right, s.right.size - 1n), 'fd00::ffff:ffff:ffff:ffff')
    assert.equal(indexOf(s.right, 'fd00::' as IpAddress), undefined)
  })

  it('refuses subnets too small to allocate from, like host-local', () => {
    for (const subnet of ['10.0.0.0/31', '10.0.0.1/32', 'fd00::/127', 'fd00::1/128']) {
      const s = usableSpan({ subnet: subnet as Subnet, ranges: [], excluded: [] })
      assert.ok(E.isLeft(s) && s.left._tag === 'InvalidConfig' && s.left.detail.includes('too small'), subnet)
    }
  })

  it('refuses ranges outside the subnet, reversed or overlapping', () => {
    const bad: IpRange[][] = [
      [{ start: '10.0.1.1', end: '10.0.1.5' }],
      [{ start: '10.0.0.9', end: '10.0.0.5' }],
      [
        { start: '10.0.0.2', end: '10.0.0.9' },
        { start: '10.0.0.9', end: '10.0.0.20' }
      ]
    ] as IpRange[][]
    for (const ranges of bad) {
      const s = usableSpan({ subnet: '10.0.0.0/24' as Subnet, ranges, excluded: [] })
      assert.ok(E.isLeft(s) && s.left._tag === 'InvalidConfig', JSON.stringify(ranges))
    }
  })

  it('turns a Docker --ip-range sub-subnet into the range of all its addresses', () => {
    assert.deepEqual(poolRangeOfSubnet('10.0.0.128/25' as Subnet), { start: '10.0.0.128', end: '10.0.0.255' })
    assert.deepEqual(poolRangeOfSubnet('fd00::/120' as Subnet), { start: 'fd00::', end: 'fd00::ff' })
    assert.equal(ipaddr.parse('fd00::ff').toString(), 'fd00::ff')
  })
})
