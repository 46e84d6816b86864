import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import * as O from 'fp-ts/lib/Option.js'
import {
  DEFAULT_LOCAL_SPACE,
  DOCKER_RUNTIME_OWNER,
  makeIpam,
  missLimit,
  poolRangeOfSubnet,
  type AddressSpace,
  type EndpointId,
  type IpAddress,
  type IpRange,
  type LeaseOwner,
  type PoolId,
  type Subnet
} from '@isthmus/core'
import { instrument, memoryStore } from '@isthmus/core/testing'
import { clock, left, right } from './helpers.js'

const SPACE = DEFAULT_LOCAL_SPACE
const ep = (n: number | string): LeaseOwner => ({ kind: 'endpoint', id: `ep${n}` as EndpointId })
const sub = (s: string) => s as Subnet
const ip = (s: string) => s as IpAddress

describe('Ipam: pools', () => {
  it('answers an identical RequestPool with the same id and one more reference', async () => {
    const store = memoryStore()
    const ipam = makeIpam({ store, clock })
    const req = {
      addressSpace: SPACE,
      family: 4 as const,
      subnet: sub('10.1.0.0/24'),
      ranges: [poolRangeOfSubnet(sub('10.1.0.128/25'))]
    }
    const a = await right(ipam.requestPool(req))
    const b = await right(ipam.requestPool(req))
    assert.equal(b.id, a.id)
    assert.equal(a.refs, 1)
    assert.equal(b.refs, 2)
    assert.equal((await right(ipam.getPool(a.id))).refs, 2)
    assert.equal(a.gateway, '10.1.0.1')
    // the first release keeps the pool and its gateway lease, the last one removes both
    await right(ipam.allocate(a.id, { kind: 'runtime', ref: 'r' }))
    await right(ipam.release(SPACE, ip('10.1.0.128'), { kind: 'runtime', ref: 'r' }))
    await right(ipam.releasePool(a.id))
    assert.equal((await right(ipam.getPool(a.id))).refs, 1)
    assert.ok(O.isSome(await right(store.leases.get(SPACE, ip('10.1.0.1')))))
    assert.ok(O.isSome(await right(store.leases.getCursor(a.id))))
    await right(ipam.releasePool(a.id))
    assert.equal((await left(ipam.getPool(a.id)))._tag, 'NotFound')
    assert.ok(O.isNone(await right(store.leases.get(SPACE, ip('10.1.0.1')))))
    assert.ok(O.isNone(await right(store.leases.getCursor(a.id))), 'the cursor goes with the pool')
    // an unknown pool releases fine
    await right(ipam.releasePool(a.id))
  })

  it("the last ReleasePool frees the addresses Docker still holds in the pool (a lost ReleaseAddress), and no other owner's", async () => {
    const store = memoryStore()
    const ipam = makeIpam({ store, clock })
    const req = { addressSpace: SPACE, family: 4 as const, subnet: sub('10.1.7.0/24') }
    const pool = await right(ipam.requestPool(req))
    await right(ipam.requestPool(req))
    const docker = await right(ipam.allocate(pool.id, DOCKER_RUNTIME_OWNER, { exclusive: true }))
    const other = await right(ipam.allocate(pool.id, { kind: 'runtime', ref: 'contrail-reservation' }))
    const endpoint = await right(ipam.allocate(pool.id, ep(1)))
    // another network still uses the pool: Docker's address may be its container's
    await right(ipam.releasePool(pool.id))
    assert.ok(O.isSome(await right(store.leases.get(SPACE, docker.address))))
    await right(ipam.releasePool(pool.id))
    assert.ok(O.isNone(await right(store.leases.get(SPACE, docker.address))), "Docker's goes with the pool")
    assert.ok(O.isSome(await right(store.leases.get(SPACE, other.address))), 'another runtime reservation stays')
    assert.ok(
      O.isSome(await right(store.leases.get(SPACE, endpoint.address))),
      "an endpoint's stays (its record releases it)"
    )
  })

  it('refuses a subnet overlapping another pool of the space, but not of another space', async () => {
    const ipam = makeIpam({ store: memoryStore(), clock })
    const first = await right(ipam.requestPool({ addressSpace: SPACE, family: 4, subnet: sub('10.1.0.0/24') }))
    const e = await left(ipam.requestPool({ addressSpace: SPACE, family: 4, subnet: sub('10.1.0.128/25') }))
    assert.deepEqual(e, { _tag: 'PoolOverlap', requested: '10.1.0.128/25', existing: '10.1.0.0/24', space: SPACE })
    // same subnet, other sub-range: not identical, so an overlap too
    const r = await left(
      ipam.requestPool({
        addressSpace: SPACE,
        family: 4,
        subnet: sub('10.1.0.0/24'),
        ranges: [poolRangeOfSubnet(sub('10.1.0.0/26'))]
      })
    )
    assert.equal(r._tag, 'PoolOverlap')
    const other = await right(
      ipam.requestPool({ addressSpace: 'tenant-b' as AddressSpace, family: 4, subnet: sub('10.1.0.0/24') })
    )
    assert.notEqual(other.id, first.id)
  })

  it('picks default subnets that overlap nothing in the space', async () => {
    const ipam = makeIpam({ store: memoryStore(), clock })
    const a = await right(ipam.requestPool({ addressSpace: SPACE, family: 4 }))
    assert.equal(a.subnet, '10.200.0.0/24')
    await right(ipam.requestPool({ addressSpace: SPACE, family: 4, subnet: sub('10.200.1.0/25') }))
    await right(ipam.requestPool({ addressSpace: SPACE, family: 4, subnet: sub('10.200.2.0/23') }))
    const b = await right(ipam.requestPool({ addressSpace: SPACE, family: 4 }))
    assert.equal(b.subnet, '10.200.4.0/24')
    const v6 = await right(ipam.requestPool({ addressSpace: SPACE, family: 6 }))
    assert.equal(v6.subnet, 'fd69:7374:686d::/64')
    assert.equal(v6.gateway, 'fd69:7374:686d::1')
  })

  it('refuses too-small subnets, gateways and aux addresses outside the subnet, and family mix-ups', async () => {
    const ipam = makeIpam({ store: memoryStore(), clock })
    const bad = [
      { addressSpace: SPACE, family: 4 as const, subnet: sub('10.1.0.0/31') },
      { addressSpace: SPACE, family: 6 as const, subnet: sub('fd00::/127') },
      { addressSpace: SPACE, family: 4 as const, subnet: sub('10.1.0.0/24'), gateway: ip('10.1.1.1') },
      { addressSpace: SPACE, family: 4 as const, subnet: sub('10.1.0.0/24'), gateway: ip('10.1.0.255') },
      { addressSpace: SPACE, family: 4 as const, subnet: sub('10.1.0.0/24'), aux: { db: ip('10.1.0.0') } },
      { addressSpace: SPACE, family: 6 as const, subnet: sub('10.1.0.0/24') },
      { addressSpace: SPACE, family: 4 as const, ranges: [{ start: ip('10.1.0.1'), end: ip('10.1.0.9') }] }
    ]
    for (const req of bad) {
      const e = await left(ipam.requestPool(req))
      assert.equal(e._tag, 'InvalidConfig', JSON.stringify(req))
    }
    const small = await left(ipam.requestPool(bad[0]!))
    assert.ok(small._tag === 'InvalidConfig' && small.detail.includes('too small to allocate from'))
  })

  it('gives the gateway and aux addresses leases of their own and never hands them out', async () => {
    const store = memoryStore()
    const ipam = makeIpam({ store, clock })
    const pool = await right(
      ipam.requestPool({ addressSpace: SPACE, family: 4, subnet: sub('10.1.0.0/29'), aux: { router: ip('10.1.0.2') } })
    )
    const own = await right(ipam.leases(SPACE, pool.id))
    assert.deepEqual(
      own.map((l) => [l.address, l.owner]),
      [
        ['10.1.0.1', { kind: 'gateway' }],
        ['10.1.0.2', { kind: 'aux', name: 'router' }]
      ]
    )
    // even with their leases gone (Docker releases the gateway before the pool), they stay out
    await right(ipam.release(SPACE, ip('10.1.0.1')))
    await right(ipam.release(SPACE, ip('10.1.0.2')))
    const got: string[] = []
    for (let i = 0; i < 4; i++) got.push((await right(ipam.allocate(pool.id, ep(i)))).address)
    assert.deepEqual(got, ['10.1.0.3', '10.1.0.4', '10.1.0.5', '10.1.0.6'])
    assert.equal((await left(ipam.allocate(pool.id, ep(9))))._tag, 'PoolExhausted')
  })
})

describe('Ipam: allocation', () => {
  it('hands out sub-range addresses (Docker --ip-range) and CNI rangeStart..rangeEnd', async () => {
    const ipam = makeIpam({ store: memoryStore(), clock })
    const docker = await right(
      ipam.requestPool({
        addressSpace: SPACE,
        family: 4,
        subnet: sub('10.2.0.0/24'),
        ranges: [poolRangeOfSubnet(sub('10.2.0.252/30'))]
      })
    )
    const d: string[] = []
    for (let i = 0; i < 3; i++) d.push((await right(ipam.allocate(docker.id, ep(i)))).address)
    assert.deepEqual(d, ['10.2.0.252', '10.2.0.253', '10.2.0.254'])
    assert.equal(docker.gateway, '10.2.0.1')
    assert.equal((await left(ipam.allocate(docker.id, ep(9))))._tag, 'PoolExhausted')

    const ranges: IpRange[] = [
      { start: ip('10.3.0.40'), end: ip('10.3.0.41') },
      { start: ip('10.3.0.10'), end: ip('10.3.0.11') }
    ]
    const cni = await right(ipam.requestPool({ addressSpace: SPACE, family: 4, subnet: sub('10.3.0.0/24'), ranges }))
    const c: string[] = []
    for (let i = 0; i < 4; i++) c.push((await right(ipam.allocate(cni.id, ep(`c${i}`)))).address)
    assert.deepEqual(c, ['10.3.0.10', '10.3.0.11', '10.3.0.40', '10.3.0.41'])
  })

  it('gives a requested address or says why not: in use (naming the owner), gateway, outside', async () => {
    const ipam = makeIpam({ store: memoryStore(), clock })
    const pool = await right(
      ipam.requestPool({
        addressSpace: SPACE,
        family: 4,
        subnet: sub('10.4.0.0/24'),
        ranges: [{ start: ip('10.4.0.100'), end: ip('10.4.0.199') }],
        excluded: [ip('10.4.0.150')]
      })
    )
    const l = await right(
      ipam.allocate(pool.id, ep(1), { address: ip('10.4.0.120'), mac: '02:42:0a:04:00:78' as never })
    )
    assert.equal(l.address, '10.4.0.120')
    assert.equal(l.mac, '02:42:0a:04:00:78')
    // the same owner asking again gets the same lease (a retried ADD)
    assert.deepEqual(await right(ipam.allocate(pool.id, ep(1), { address: ip('10.4.0.120') })), l)
    assert.deepEqual(await left(ipam.allocate(pool.id, ep(2), { address: ip('10.4.0.120') })), {
      _tag: 'AddressInUse',
      address: '10.4.0.120',
      space: SPACE,
      owner: 'endpoint ep1'
    })
    for (const a of ['10.4.0.1', '10.4.0.0', '10.4.0.255', '10.4.0.50', '10.4.0.150', '10.5.0.120', 'fd00::1']) {
      assert.equal((await left(ipam.allocate(pool.id, ep(3), { address: ip(a) })))._tag, 'InvalidConfig', a)
    }
    // a static address is skipped by dynamic allocation
    const next = await right(ipam.allocate(pool.id, ep(4), { address: ip('10.4.0.100') }))
    assert.equal(next.address, '10.4.0.100')
    assert.equal((await right(ipam.allocate(pool.id, ep(5)))).address, '10.4.0.101')
  })

  it('gives an address out exclusively when the claim says so, even to the owner that holds it (Docker’s one runtime owner)', async () => {
    const ipam = makeIpam({ store: memoryStore(), clock })
    const pool = await right(ipam.requestPool({ addressSpace: SPACE, family: 4, subnet: sub('10.4.1.0/24') }))
    const docker: LeaseOwner = { kind: 'runtime', ref: 'docker' }
    const first = await right(ipam.allocate(pool.id, docker, { address: ip('10.4.1.9'), exclusive: true }))
    assert.equal(first.address, '10.4.1.9')
    assert.deepEqual(await left(ipam.allocate(pool.id, docker, { address: ip('10.4.1.9'), exclusive: true })), {
      _tag: 'AddressInUse',
      address: '10.4.1.9',
      space: SPACE,
      owner: 'runtime reservation docker'
    })
    // held by an endpoint: refused too; given back: exclusive again for the next one
    await right(ipam.allocate(pool.id, ep(1), { address: ip('10.4.1.10') }))
    assert.equal(
      (await left(ipam.allocate(pool.id, docker, { address: ip('10.4.1.10'), exclusive: true })))._tag,
      'AddressInUse'
    )
    await right(ipam.release(SPACE, ip('10.4.1.9'), docker))
    assert.equal(
      (await right(ipam.allocate(pool.id, docker, { address: ip('10.4.1.9'), exclusive: true }))).address,
      '10.4.1.9'
    )
    // a dynamic pick never lands on a held address
    assert.equal((await right(ipam.allocate(pool.id, docker, { exclusive: true }))).address, '10.4.1.2')
  })

  it('moves the gateway when Docker asks for another one (RequestAddress of type gateway)', async () => {
    const store = memoryStore()
    const ipam = makeIpam({ store, clock })
    const pool = await right(ipam.requestPool({ addressSpace: SPACE, family: 4, subnet: sub('10.6.0.0/29') }))
    const same = await right(ipam.allocate(pool.id, { kind: 'gateway' }))
    assert.equal(same.address, '10.6.0.1')
    const moved = await right(ipam.allocate(pool.id, { kind: 'gateway' }, { address: ip('10.6.0.6') }))
    assert.equal(moved.address, '10.6.0.6')
    assert.equal((await right(ipam.getPool(pool.id))).gateway, '10.6.0.6')
    const got: string[] = []
    for (let i = 0; i < 5; i++) got.push((await right(ipam.allocate(pool.id, ep(i)))).address)
    assert.deepEqual(got, ['10.6.0.1', '10.6.0.2', '10.6.0.3', '10.6.0.4', '10.6.0.5'])
    assert.equal(
      (await left(ipam.allocate(pool.id, { kind: 'gateway' }, { address: ip('10.6.0.3') })))._tag,
      'AddressInUse'
    )
  })

  it('releases only for the owner given, and reuses the address after wrapping', async () => {
    const ipam = makeIpam({ store: memoryStore(), clock })
    const pool = await right(ipam.requestPool({ addressSpace: SPACE, family: 4, subnet: sub('10.7.0.0/29') }))
    const a = await right(ipam.allocate(pool.id, ep(1)))
    await right(ipam.release(SPACE, a.address, ep(2)))
    assert.equal((await right(ipam.leases(SPACE, pool.id))).length, 2)
    await right(ipam.release(SPACE, a.address, ep(1)))
    await right(ipam.release(SPACE, a.address, ep(1)))
    const got: string[] = []
    for (let i = 0; i < 5; i++) got.push((await right(ipam.allocate(pool.id, ep(10 + i)))).address)
    assert.deepEqual(got, ['10.7.0.3', '10.7.0.4', '10.7.0.5', '10.7.0.6', '10.7.0.2'])
  })

  it('says NotFound for an unknown pool', async () => {
    const ipam = makeIpam({ store: memoryStore(), clock })
    assert.deepEqual(await left(ipam.allocate('nope' as PoolId, ep(1))), { _tag: 'NotFound', kind: 'pool', id: 'nope' })
  })

  it('continues round robin where another process left off (the cursor is in the store)', async () => {
    const store = memoryStore()
    const a = makeIpam({ store, clock })
    const pool = await right(a.requestPool({ addressSpace: SPACE, family: 4, subnet: sub('10.8.0.0/24') }))
    for (let i = 0; i < 3; i++) await right(a.allocate(pool.id, ep(i)))
    await right(a.release(SPACE, ip('10.8.0.2')))
    const b = makeIpam({ store, clock })
    assert.equal((await right(b.allocate(pool.id, ep(9)))).address, '10.8.0.5')
  })

  it('costs one reserve per allocation however full the pool, and no lease listing', async () => {
    const [store, probe] = instrument('store', memoryStore())
    const ipam = makeIpam({ store, clock })
    const pool = await right(ipam.requestPool({ addressSpace: SPACE, family: 4, subnet: sub('10.9.0.0/22') }))
    probe.reset()
    for (let i = 0; i < 1021; i++) await right(ipam.allocate(pool.id, ep(i)))
    assert.equal(probe.callsOf('leases.reserve').length, 1021)
    assert.equal(probe.callsOf('leases.list').length, 0)
    assert.equal(probe.callsOf('pools.get').length, 1)
  })

  it('knows after wrapping around what it handed out: one reserve finds the one free address', async () => {
    const [store, probe] = instrument('store', memoryStore())
    const ipam = makeIpam({ store, clock })
    const pool = await right(ipam.requestPool({ addressSpace: SPACE, family: 4, subnet: sub('10.9.4.0/26') }))
    for (let i = 0; i < 61; i++) await right(ipam.allocate(pool.id, ep(i)))
    await right(ipam.release(SPACE, ip('10.9.4.40')))
    probe.reset()
    assert.equal((await right(ipam.allocate(pool.id, ep('last')))).address, '10.9.4.40')
    assert.equal(probe.callsOf('leases.reserve').length, 1)
    assert.equal(probe.callsOf('leases.list').length, 0)
  })

  it('with a stale hint probes at most missLimit taken addresses, then reads the leases once', async () => {
    const [store, probe] = instrument('store', memoryStore())
    const a = makeIpam({ store, clock })
    const b = makeIpam({ store, clock })
    const pool = await right(a.requestPool({ addressSpace: SPACE, family: 4, subnet: sub('10.10.0.0/22') }))
    await right(a.allocate(pool.id, ep('a0')))
    // b takes the next 600 addresses a knows nothing about
    for (let i = 0; i < 600; i++) await right(b.allocate(pool.id, ep(`b${i}`)))
    probe.reset()
    const l = await right(a.allocate(pool.id, ep('a1')))
    assert.equal(l.address, '10.10.2.91') // .2 by a, .3 .. 2.90 by b
    assert.equal(probe.callsOf('leases.reserve').length, missLimit(1021n) + 1)
    assert.equal(probe.callsOf('leases.list').length, 1)
    probe.reset()
    await right(a.allocate(pool.id, ep('a2')))
    assert.equal(probe.callsOf('leases.reserve').length, 1)
  })

  it('allocates in an IPv6 /64 from ::2 on, skipping the anycast and gateway', async () => {
    const [store, probe] = instrument('store', memoryStore())
    const ipam = makeIpam({ store, clock })
    const pool = await right(ipam.requestPool({ addressSpace: SPACE, family: 6, subnet: sub('fd00:1:2:3::/64') }))
    probe.reset()
    const seen = new Set<string>()
    for (let i = 0; i < 3000; i++) seen.add((await right(ipam.allocate(pool.id, ep(i)))).address)
    assert.equal(seen.size, 3000)
    assert.ok(seen.has('fd00:1:2:3::2') && seen.has('fd00:1:2:3::bb9') && !seen.has('fd00:1:2:3::1'))
    assert.equal(probe.callsOf('leases.reserve').length, 3000)
    const s = await right(ipam.allocate(pool.id, ep('s'), { address: ip('fd00:1:2:3:ffff:ffff:ffff:ffff') }))
    assert.equal(s.address, 'fd00:1:2:3:ffff:ffff:ffff:ffff')
    assert.equal((await left(ipam.allocate(pool.id, ep('t'), { address: ip('fd00:1:2:3::') })))._tag, 'InvalidConfig')
  })

  it('gives concurrent allocations in one process different addresses without wasted reserves', async () => {
    const [store, probe] = instrument('store', memoryStore())
    const ipam = makeIpam({ store, clock })
    const pool = await right(ipam.requestPool({ addressSpace: SPACE, family: 4, subnet: sub('10.11.0.0/26') }))
    probe.reset()
    const got = await Promise.all(Array.from({ length: 61 }, (_, i) => right(ipam.allocate(pool.id, ep(i)))))
    assert.equal(new Set(got.map((l) => l.address)).size, 61)
    assert.equal(probe.callsOf('leases.reserve').length, 61)
    assert.equal(probe.callsOf('pools.get').length, 1)
  })
})
