import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import * as E from 'fp-ts/lib/Either.js'
import {
  makeIpam,
  type AddressSpace,
  type EndpointId,
  type Ipam,
  type IpAddress,
  type IpRange,
  type LeaseOwner,
  type Pool,
  type PoolRequest,
  type Subnet
} from '@isthmus/core'
import { memoryStore } from '@isthmus/core/testing'
import { big, clock, right, text, usableOf } from './helpers.js'

const SPACE = 'tenant-a' as AddressSpace

// small IPv4 pools (/26../30) with optional ranges, gateway, aux and excluded addresses, given
// as fractions of the subnet so that every generated request is meaningful
const poolRequest = fc
  .record({
    prefix: fc.integer({ min: 27, max: 30 }),
    range: fc.option(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }))),
    gateway: fc.option(fc.double({ min: 0, max: 1, noNaN: true })),
    aux: fc.uniqueArray(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 2 }),
    excluded: fc.uniqueArray(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 3 })
  })
  .map(({ prefix, range, gateway, aux, excluded }): PoolRequest => {
    const size = 2 ** (32 - prefix)
    const first = big('10.9.8.0')
    // host offsets 1..size-2 only: network and broadcast are refused elsewhere (unit tests)
    const at = (f: number) => text(first + BigInt(1 + Math.min(size - 3, Math.floor(f * (size - 2)))), 4)
    const ranges: IpRange[] = range === null ? [] : [{ start: at(Math.min(...range)), end: at(Math.max(...range)) }]
    const auxAddrs = [...new Set(aux.map(at))]
    const excl = [...new Set(excluded.map(at))].filter((x) => !auxAddrs.includes(x))
    const gw = gateway === null ? undefined : at(gateway)
    return {
      addressSpace: SPACE,
      family: 4,
      subnet: `10.9.8.0/${prefix}` as Subnet,
      ranges,
      ...(gw === undefined || excl.includes(gw) || auxAddrs.includes(gw) ? {} : { gateway: gw }),
      aux: Object.fromEntries(auxAddrs.map((a, i) => [`aux${i}`, a])),
      excluded: excl
    }
  })

type Op =
  | { readonly kind: 'alloc'; readonly via: number }
  | { readonly kind: 'release'; readonly pick: number; readonly via: number }
  | { readonly kind: 'static'; readonly offset: number; readonly via: number }
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('alloc' as const), via: fc.nat(1) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat(), via: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('static' as const), offset: fc.nat(63), via: fc.nat(1) }) }
)

const endpoint = (n: number): LeaseOwner => ({ kind: 'endpoint', id: `ep${n}` as EndpointId })

/**
 * Drive one or two Ipam instances over one store and check each outcome against a model:
 * `held` (address -> owner) is what the tests were handed. With one instance the next dynamic
 * address must be exactly host-local's round-robin choice.
 */
const drive = async (req: PoolRequest, ops: ReadonlyArray<Op>, instances: 1 | 2): Promise<void> => {
  const store = memoryStore()
  const ipams: Ipam[] = [makeIpam({ store, clock }), makeIpam({ store, clock })]
  const created = await ipams[0]!.requestPool(req)()
  if (E.isLeft(created)) {
    // only a pool with nothing left to hand out may be refused
    assert.equal(created.left._tag, 'InvalidConfig')
    assert.equal(usableOf({ ...poolOf(req), gateway: req.gateway ?? text(big('10.9.8.1'), 4) }).length, 0)
    return
  }
  const pool = created.right
  const usable = usableOf(pool)
  const held = new Map<IpAddress, LeaseOwner>()
  let cursor = -1 // index in `usable` of the last dynamic allocation
  let n = 0
  for (const o of ops) {
    const ipam = ipams[instances === 1 ? 0 : o.via]!
    if (o.kind === 'alloc') {
      const owner = endpoint(n++)
      const r = await ipam.allocate(pool.id, owner)()
      if (E.isLeft(r)) {
        assert.equal(r.left._tag, 'PoolExhausted', JSON.stringify(r.left))
        assert.equal(held.size, usable.length, 'exhausted while an address was free')
        continue
      }
      const a = r.right.address
      assert.ok(!held.has(a), `${a} handed out twice`)
      assert.ok(usable.includes(a), `${a} is not usable in ${JSON.stringify(pool)}`)
      if (instances === 1) {
        let want: IpAddress | undefined
        for (let k = 1; k <= usable.length && want === undefined; k++) {
          const cand = usable[(cursor + k) % usable.length]!
          if (!held.has(cand)) want = cand
        }
        assert.equal(a, want, 'not the round-robin choice')
        cursor = usable.indexOf(a)
      }
      held.set(a, owner)
    } else if (o.kind === 'release') {
      const all = [...held.keys()]
      if (all.length === 0) continue
      const a = all[o.pick % all.length]!
      await right(ipam.release(SPACE, a, held.get(a)))
      held.delete(a)
    } else {
      const a = text(big('10.9.8.0') + BigInt(o.offset), 4)
      const owner = endpoint(n++)
      const r = await ipam.allocate(pool.id, owner, { address: a })()
      const inRanges =
        pool.ranges.length === 0 || pool.ranges.some((r) => big(a) >= big(r.start) && big(a) <= big(r.end))
      // an aux address holds a lease; outside the ranges it is refused for its place first
      const isAux = inRanges && pool.reserved.some((x) => x.reason === 'aux' && x.address === a)
      if (usable.includes(a) && !held.has(a)) {
        assert.ok(E.isRight(r) && r.right.address === a, JSON.stringify(r))
        held.set(a, owner)
      } else if (held.has(a) || isAux) {
        assert.ok(E.isLeft(r) && r.left._tag === 'AddressInUse', JSON.stringify(r))
      } else assert.ok(E.isLeft(r) && r.left._tag === 'InvalidConfig', `${a}: ${JSON.stringify(r)}`)
    }
    // the store holds exactly the model's leases plus the pool's own
    const leases = await right(ipams[0]!.leases(SPACE, pool.id))
    const mine = leases.filter((l) => l.owner.kind === 'endpoint')
    assert.equal(mine.length, held.size)
    for (const l of mine) assert.equal(held.get(l.address)?.kind, 'endpoint')
    assert.ok(leases.some((l) => l.owner.kind === 'gateway' && l.address === pool.gateway))
  }
}

const poolOf = (req: PoolRequest): Pool => ({
  id: 'x' as Pool['id'],
  addressSpace: req.addressSpace,
  subnet: req.subnet!,
  family: 4,
  ranges: [...(req.ranges ?? [])],
  reserved: [
    ...Object.entries(req.aux ?? {}).map(([name, address]) => ({ address, reason: 'aux' as const, name })),
    ...(req.excluded ?? []).map((address) => ({ address, reason: 'excluded' as const }))
  ],
  options: {},
  refs: 1
})

describe('Ipam properties', () => {
  it('one process: unique, usable, round-robin addresses; exhausted only when full', async () => {
    await fc.assert(
      fc.asyncProperty(poolRequest, fc.array(op, { minLength: 20, maxLength: 120, size: 'max' }), (req, ops) =>
        drive(req, ops, 1)
      ),
      { numRuns: 120 }
    )
  })

  it('two processes with stale hints on one store: no duplicates; exhausted only when full', async () => {
    await fc.assert(
      fc.asyncProperty(poolRequest, fc.array(op, { minLength: 20, maxLength: 120, size: 'max' }), (req, ops) =>
        drive(req, ops, 2)
      ),
      { numRuns: 120 }
    )
  })

  it('filling a pool, releasing some and allocating again hands back exactly those', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 26, max: 29 }),
        fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }),
        async (prefix, drop) => {
          const ipam = makeIpam({ store: memoryStore(), clock })
          const pool = await right(
            ipam.requestPool({ addressSpace: SPACE, family: 4, subnet: `10.9.8.0/${prefix}` as Subnet })
          )
          const got: IpAddress[] = []
          for (;;) {
            const r = await ipam.allocate(pool.id, endpoint(got.length))()
            if (E.isLeft(r)) {
              assert.equal(r.left._tag, 'PoolExhausted')
              break
            }
            got.push(r.right.address)
          }
          assert.equal(got.length, 2 ** (32 - prefix) - 3)
          const freed = got.filter((_, i) => drop[i])
          for (const a of freed) await right(ipam.release(SPACE, a))
          const again: IpAddress[] = []
          for (let i = 0; i < freed.length; i++) {
            again.push((await right(ipam.allocate(pool.id, endpoint(100 + i)))).address)
          }
          assert.deepEqual([...again].sort(), [...freed].sort())
          const r = await ipam.allocate(pool.id, endpoint(999))()
          assert.ok(E.isLeft(r) && r.left._tag === 'PoolExhausted')
        }
      ),
      { numRuns: 40 }
    )
  })

  it('round robin: right after releasing X the next address is not X while others are free', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 12 }), fc.nat(), async (k, pick) => {
        const ipam = makeIpam({ store: memoryStore(), clock })
        const pool = await right(ipam.requestPool({ addressSpace: SPACE, family: 4, subnet: '10.9.8.0/28' as Subnet }))
        const got: IpAddress[] = []
        for (let i = 0; i < k; i++) got.push((await right(ipam.allocate(pool.id, endpoint(i)))).address)
        const x = got[pick % got.length]!
        await right(ipam.release(SPACE, x))
        const next = (await right(ipam.allocate(pool.id, endpoint(99)))).address
        // 13 usable addresses: X is the only free one only when all others are held
        if (k < 13) assert.notEqual(next, x)
      }),
      { numRuns: 60 }
    )
  })

  it('the same CIDR in two address spaces: each address once per space', async () => {
    const store = memoryStore()
    const a = makeIpam({ store, clock })
    const b = makeIpam({ store, clock })
    const spaces = ['red', 'blue'] as AddressSpace[]
    const pools = [
      await right(a.requestPool({ addressSpace: spaces[0]!, family: 4, subnet: '10.9.8.0/28' as Subnet })),
      await right(b.requestPool({ addressSpace: spaces[1]!, family: 4, subnet: '10.9.8.0/28' as Subnet }))
    ]
    const seen = [new Set<string>(), new Set<string>()]
    for (let i = 0; i < 40; i++) {
      const which = i % 3 === 0 ? 1 : 0
      const r = await (which === 0 ? a : b).allocate(pools[which]!.id, endpoint(i))()
      if (E.isLeft(r)) {
        assert.equal(r.left._tag, 'PoolExhausted')
        assert.equal(seen[which]!.size, 13)
        continue
      }
      assert.ok(!seen[which]!.has(r.right.address))
      seen[which]!.add(r.right.address)
    }
    assert.deepEqual([...seen[0]!].sort(), [...seen[1]!].sort())
  })
})
