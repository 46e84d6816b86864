/**
 * The IPAM of cluster networks: simulated hosts, each with its own memory Store and Ipam, sharing
 * one memory Cluster. What is checked is what a cluster must never get wrong: one address handed
 * out twice across hosts, a block held by two hosts, a block kept when its last lease went, a
 * lease left behind by a failed claim.
 */
import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import ipaddr from 'ipaddr.js'
import {
  CLUSTER_BLOCK_OPTION,
  CLUSTER_OPTION,
  DEFAULT_LOCAL_SPACE,
  describe as describeError,
  makeIpam,
  removeHost,
  transient,
  type Cluster,
  type EndpointId,
  type HostName,
  type IpAddress,
  type Ipam,
  type Lease,
  type LeaseOwner,
  type Store,
  type Subnet
} from '@isthmus/core'
import { memoryCluster, memoryStore, type MemoryCluster } from '@isthmus/core/testing'
import { clock, left, right } from '../ipam/helpers.js'

const SPACE = DEFAULT_LOCAL_SPACE
const ep = (n: number | string): LeaseOwner => ({ kind: 'endpoint', id: `ep${n}` as EndpointId })
const sub = (s: string) => s as Subnet
const ip = (s: string) => s as IpAddress

interface Host {
  readonly name: HostName
  readonly store: Store
  readonly ipam: Ipam
  readonly cluster: Cluster
}

const host = (m: MemoryCluster, name: string, cluster: Cluster = m.state.connect().port): Host => {
  const store = memoryStore()
  return {
    name: name as HostName,
    store,
    cluster,
    ipam: makeIpam({ store, clock, cluster: { cluster, host: name as HostName } })
  }
}

const clusterPool = (h: Host, name = 'blue', subnet = '10.40.0.0/24', options: Record<string, string> = {}) =>
  right(
    h.ipam.requestPool({
      addressSpace: SPACE,
      family: 4,
      subnet: sub(subnet),
      options: { [CLUSTER_OPTION]: name, ...options }
    })
  )

const inBlock = (address: string, block: string): boolean => {
  const [net, bits] = ipaddr.parseCIDR(block)
  return ipaddr.parse(address).match(net, bits)
}

const handedOut = async (h: Host): Promise<ReadonlyArray<Lease>> =>
  (await right(h.store.leases.list(SPACE))).filter((l) => l.owner.kind !== 'gateway')

/** No address twice across hosts; every lease inside a block its host holds; local blocks = the cluster's. */
const checkCluster = async (m: MemoryCluster, hosts: ReadonlyArray<Host>, network = 'blue'): Promise<void> => {
  const blocks = m.state.snapshot().blocks.filter((b) => b.network === network)
  const seen = new Map<string, string>()
  for (const h of hosts) {
    const mine = blocks.filter((b) => b.host === h.name).map((b) => b.cidr)
    for (const l of await handedOut(h)) {
      const other = seen.get(l.address)
      assert.equal(other, undefined, `${l.address} handed out by ${other} and ${h.name}`)
      seen.set(l.address, h.name)
      assert.ok(
        mine.some((b) => inBlock(l.address, b)),
        `${h.name}'s ${l.address} lies in none of its blocks ${mine.join(', ')}`
      )
    }
    const pools = (await right(h.store.pools.list())).filter((p) => p.options[CLUSTER_OPTION] === network)
    const local = pools.flatMap((p) => p.ranges.map((r) => r.start))
    assert.deepEqual(
      [...local].sort(),
      mine.map((b) => b.split('/')[0]).sort(),
      `${h.name}: its pool's blocks are the cluster's`
    )
  }
}

describe('cluster IPAM: one host', () => {
  it('claims a block at the first allocation, the next when it is full, never the gateway, network or broadcast', async () => {
    const m = memoryCluster()
    const h = host(m, 'h1', m.port)
    const pool = await clusterPool(h)
    assert.equal(pool.id, `${SPACE}/10.40.0.0/24`)
    assert.equal(pool.gateway, '10.40.0.1')
    assert.deepEqual(pool.ranges, [], 'no block before the first address')
    assert.deepEqual(m.state.snapshot().blocks, [])
    const cn = await right(m.port.networks.get('blue' as never))
    assert.ok(O.isSome(cn))
    assert.equal(cn.value.vni, 4096)
    assert.equal(cn.value.blockPrefix, 26)

    const got: string[] = []
    for (let i = 0; i < 62; i++) got.push((await right(h.ipam.allocate(pool.id, ep(i)))).address)
    assert.deepEqual(
      m.state.snapshot().blocks.map((b) => b.cidr),
      ['10.40.0.0/26']
    )
    assert.ok(!got.includes('10.40.0.0') && !got.includes('10.40.0.1'))
    got.push((await right(h.ipam.allocate(pool.id, ep(62)))).address)
    assert.deepEqual(
      m.state
        .snapshot()
        .blocks.map((b) => b.cidr)
        .sort(),
      ['10.40.0.0/26', '10.40.0.64/26']
    )
    assert.equal(got.at(-1), '10.40.0.64', 'the first address of the second block')
    // fill the subnet: 4 blocks, less network, gateway and broadcast
    for (let i = 63; i < 253; i++) got.push((await right(h.ipam.allocate(pool.id, ep(i)))).address)
    assert.equal(new Set(got).size, 253)
    assert.ok(!got.includes('10.40.0.255'))
    const full = await left(h.ipam.allocate(pool.id, ep('x')))
    assert.equal(full._tag, 'PoolExhausted')
    assert.match(describeError(full), /cluster network blue/)
    await checkCluster(m, [h])
  })

  it('gives a block back when its last lease goes, and keeps it while one remains', async () => {
    const m = memoryCluster()
    const h = host(m, 'h1')
    const pool = await clusterPool(h)
    const a = await right(h.ipam.allocate(pool.id, ep(1)))
    const b = await right(h.ipam.allocate(pool.id, ep(2)))
    await right(h.ipam.release(SPACE, a.address, ep(1)))
    assert.equal(m.state.snapshot().blocks.length, 1)
    await right(h.ipam.release(SPACE, b.address, ep(2)))
    assert.deepEqual(m.state.snapshot().blocks, [])
    assert.deepEqual((await right(h.ipam.getPool(pool.id))).ranges, [])
    // and the gateway lease stays with the pool
    assert.ok(O.isSome(await right(h.store.leases.get(SPACE, ip('10.40.0.1')))))
    await checkCluster(m, [h])
  })

  it('a second request of the same cluster network gets the same pool; a subnet of its own is refused', async () => {
    const m = memoryCluster()
    const h = host(m, 'h1')
    const a = await clusterPool(h)
    const b = await right(h.ipam.requestPool({ addressSpace: SPACE, family: 4, options: { [CLUSTER_OPTION]: 'blue' } }))
    assert.equal(b.id, a.id)
    assert.equal(b.refs, 2)
    const other = host(m, 'h2')
    const e = await left(
      other.ipam.requestPool({
        addressSpace: SPACE,
        family: 4,
        subnet: sub('10.41.0.0/24'),
        options: { [CLUSTER_OPTION]: 'blue' }
      })
    )
    assert.equal(e._tag, 'InvalidConfig')
    assert.match(describeError(e), /cluster network blue has subnet 10\.40\.0\.0\/24, not 10\.41\.0\.0\/24/)
    const undefinedNet = await left(
      other.ipam.requestPool({ addressSpace: SPACE, family: 4, options: { [CLUSTER_OPTION]: 'green' } })
    )
    assert.match(describeError(undefinedNet), /not defined yet/)
  })

  it('refuses a block prefix not longer than the subnet, and ranges', async () => {
    const m = memoryCluster()
    const h = host(m, 'h1')
    const e = await left(
      h.ipam.requestPool({
        addressSpace: SPACE,
        family: 4,
        subnet: sub('10.40.0.0/24'),
        options: { [CLUSTER_OPTION]: 'blue', [CLUSTER_BLOCK_OPTION]: '24' }
      })
    )
    assert.match(describeError(e), /block prefix \/24 does not cut 10\.40\.0\.0\/24/)
    const r = await left(
      h.ipam.requestPool({
        addressSpace: SPACE,
        family: 4,
        subnet: sub('10.40.0.0/24'),
        ranges: [{ start: ip('10.40.0.10'), end: ip('10.40.0.20') }],
        options: { [CLUSTER_OPTION]: 'blue' }
      })
    )
    assert.match(describeError(r), /address ranges .* are not supported/)
    assert.deepEqual(await right(h.store.pools.list()), [])
  })
})

describe('cluster IPAM: several hosts', () => {
  it('hundreds of parallel allocations on three hosts: no duplicate, blocks only as needed, all given back', async () => {
    const m = memoryCluster()
    const hosts = ['h1', 'h2', 'h3'].map((n) => host(m, n))
    const pools = await Promise.all(hosts.map((h) => clusterPool(h, 'blue', '10.40.0.0/20')))
    const per = 150
    const leases = await Promise.all(
      hosts.flatMap((h, i) =>
        Array.from({ length: per }, (_, k) => right(h.ipam.allocate(pools[i]!.id, ep(`${h.name}-${k}`))))
      )
    )
    assert.equal(new Set(leases.map((l) => l.address)).size, hosts.length * per)
    await checkCluster(m, hosts)
    // only as needed: of each host's blocks, at most one has room left
    for (const h of hosts) {
      const mine = m.state.snapshot().blocks.filter((b) => b.host === h.name)
      assert.equal(mine.length, 3, `${h.name} holds ${mine.map((b) => b.cidr).join(', ')}`)
    }
    // all released, in parallel: every block goes back
    await Promise.all(
      hosts.flatMap((h) =>
        leases
          .filter((l) => l.owner.kind === 'endpoint' && l.owner.id.startsWith(`ep${h.name}-`))
          .map((l) => right(h.ipam.release(SPACE, l.address, l.owner)))
      )
    )
    assert.deepEqual(m.state.snapshot().blocks, [])
    await checkCluster(m, hosts)
  })

  it('property: any interleaving of allocations and releases on three hosts (one with two processes) keeps the cluster consistent', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.array(fc.record({ host: fc.integer({ min: 0, max: 3 }), release: fc.boolean(), pick: fc.nat() }), {
            minLength: 1,
            maxLength: 12
          }),
          { minLength: 1, maxLength: 8 }
        ),
        async (batches) => {
          const m = memoryCluster()
          const hosts = ['h1', 'h2', 'h3'].map((n) => host(m, n))
          // small blocks in a small subnet: blocks fill, run out and come back often
          const pools = await Promise.all(
            hosts.map((h) => clusterPool(h, 'blue', '10.40.0.0/26', { [CLUSTER_BLOCK_OPTION]: '29' }))
          )
          // h1's store has a second process (a CNI executable beside the daemon): its own Ipam and hints
          const h1 = hosts[0]!
          const twin: Host = {
            ...h1,
            ipam: makeIpam({ store: h1.store, clock, cluster: { cluster: h1.cluster, host: h1.name } })
          }
          const actors = [...hosts, twin]
          pools.push(pools[0]!)
          const held: Array<Array<Lease>> = actors.map(() => [])
          let n = 0
          for (const batch of batches) {
            await Promise.all(
              batch.map(async (op) => {
                const h = actors[op.host]!
                const mine = held[op.host]!
                if (op.release && mine.length > 0) {
                  const [l] = mine.splice(op.pick % mine.length, 1)
                  await right(h.ipam.release(SPACE, l!.address, l!.owner))
                  return
                }
                const r = await h.ipam.allocate(pools[op.host]!.id, ep(n++))()
                if (r._tag === 'Right') mine.push(r.right)
                else assert.equal(r.left._tag, 'PoolExhausted', describeError(r.left))
              })
            )
            await checkCluster(m, hosts)
          }
          for (const [i, h] of actors.entries()) {
            for (const l of held[i]!) await right(h.ipam.release(SPACE, l.address, l.owner))
          }
          assert.deepEqual(m.state.snapshot().blocks, [])
          await checkCluster(m, hosts)
        }
      ),
      { numRuns: 40 }
    )
  })

  it('a process whose hint still shows a block given back by another process of its host does not hand it out', async () => {
    const m = memoryCluster()
    const [h1, h2] = [host(m, 'h1'), host(m, 'h2')]
    // the daemon and a CNI executable of h1: one store, two engines
    const cni = makeIpam({ store: h1.store, clock, cluster: { cluster: h1.cluster, host: h1.name } })
    const [p1, p2] = [await clusterPool(h1), await clusterPool(h2)]
    const first: Lease[] = []
    for (let i = 0; i < 62; i++) first.push(await right(h1.ipam.allocate(p1.id, ep(i))))
    const y = await right(h1.ipam.allocate(p1.id, ep('y')))
    assert.equal(y.address, '10.40.0.64')
    // the CNI process learns the pool now, with both blocks
    await right(h1.ipam.release(SPACE, first[8]!.address, first[8]!.owner))
    await right(cni.allocate(p1.id, ep('c1'), { address: first[8]!.address }))
    // the daemon gives the second block back, and h2 claims it
    await right(h1.ipam.release(SPACE, y.address, y.owner))
    assert.equal(await right(h2.ipam.allocate(p2.id, ep('h2'))).then((l) => l.address), '10.40.0.64')
    // the CNI process allocates: not in the block it still believes its host's
    const c = await right(cni.allocate(p1.id, ep('c2')))
    assert.ok(!inBlock(c.address, '10.40.0.64/26'), `${c.address} lies in h2's block`)
    await checkCluster(m, [h1, h2])
  })

  it('a static address in another host’s block is refused, naming that host; one in a free block claims it', async () => {
    const m = memoryCluster()
    const [h1, h2] = [host(m, 'h1'), host(m, 'h2')]
    const [p1, p2] = [await clusterPool(h1), await clusterPool(h2)]
    const a = await right(h1.ipam.allocate(p1.id, ep(1)))
    assert.equal(a.address, '10.40.0.2')
    const e = await left(h2.ipam.allocate(p2.id, ep(2), { address: ip('10.40.0.9') }))
    assert.equal(e._tag, 'InvalidConfig')
    assert.match(describeError(e), /10\.40\.0\.9 lies in block 10\.40\.0\.0\/26 .* which host h1 holds/)
    assert.equal((await handedOut(h2)).length, 0)
    const s = await right(h2.ipam.allocate(p2.id, ep(3), { address: ip('10.40.0.200') }))
    assert.equal(s.address, '10.40.0.200')
    assert.deepEqual(
      m.state
        .snapshot()
        .blocks.map((b) => `${b.host} ${b.cidr}`)
        .sort(),
      ['h1 10.40.0.0/26', 'h2 10.40.0.192/26']
    )
    // the gateway is nobody's to hand out, in any block
    const gw = await left(h1.ipam.allocate(p1.id, ep(4), { address: ip('10.40.0.1') }))
    assert.match(describeError(gw), /is its gateway/)
    // the next dynamic address of h2 comes from its own block
    assert.ok(inBlock((await right(h2.ipam.allocate(p2.id, ep(5)))).address, '10.40.0.192/26'))
    await checkCluster(m, [h1, h2])
  })

  it('a cluster that fails during a claim leaves no lease and no block; a claim whose answer was lost is given back', async () => {
    const m = memoryCluster()
    const client = m.state.connect()
    const h = host(m, 'h1', client.port)
    const pool = await clusterPool(h)
    client.probe.failAt({ method: 'blocks.claim', nth: 1, error: transient('etcd unreachable') })
    const e = await left(h.ipam.allocate(pool.id, ep(1)))
    assert.equal(e._tag, 'Transient')
    assert.deepEqual(await handedOut(h), [])
    assert.deepEqual(m.state.snapshot().blocks, [])
    assert.deepEqual((await right(h.ipam.getPool(pool.id))).ranges, [])

    // The claim is made but its answer is lost: the block is given back as the failure unwinds.
    const lossy: Cluster = {
      ...client.port,
      blocks: {
        ...client.port.blocks,
        claim: (b) =>
          pipe(
            client.port.blocks.claim(b),
            TE.chain(() => TE.left(transient('the answer was lost')))
          )
      }
    }
    const h2 = { ...h, ipam: makeIpam({ store: h.store, clock, cluster: { cluster: lossy, host: h.name } }) }
    assert.equal((await left(h2.ipam.allocate(pool.id, ep(2))))._tag, 'Transient')
    assert.deepEqual(await handedOut(h), [])
    assert.deepEqual(m.state.snapshot().blocks, [])

    // and the next allocation works
    const ok = await right(h.ipam.allocate(pool.id, ep(3)))
    assert.equal(ok.address, '10.40.0.2')
    await checkCluster(m, [h])
  })

  it('a block the cluster says is this host’s but its pool lacks is taken in, not claimed again', async () => {
    const m = memoryCluster()
    const h = host(m, 'h1')
    const pool = await clusterPool(h)
    await right(
      m.port.blocks.claim({
        network: 'blue' as never,
        cidr: sub('10.40.0.128/26'),
        host: h.name,
        claimedAt: clock.now().toISOString()
      })
    )
    const a = await right(h.ipam.allocate(pool.id, ep(1)))
    assert.equal(a.address, '10.40.0.128')
    assert.equal(m.state.snapshot().blocks.length, 1)
    await checkCluster(m, [h])
  })

  it('without a cluster, a cluster pool hands out nothing outside its blocks', async () => {
    const m = memoryCluster()
    const h = host(m, 'h1')
    const pool = await clusterPool(h)
    await right(h.ipam.allocate(pool.id, ep(1)))
    // the same store, restarted without a cluster store
    const alone = makeIpam({ store: h.store, clock })
    const inBlock1 = await right(alone.allocate(pool.id, ep(2)))
    assert.equal(inBlock1.address, '10.40.0.3')
    const e = await left(alone.allocate(pool.id, ep(3), { address: ip('10.40.0.100') }))
    assert.match(describeError(e), /no cluster store/)
  })

  it('a host removed with removeHost has its blocks given back, for the others to claim', async () => {
    const m = memoryCluster()
    const [h1, h2] = [host(m, 'h1'), host(m, 'h2')]
    const [p1, p2] = [await clusterPool(h1), await clusterPool(h2)]
    await right(h1.ipam.allocate(p1.id, ep(1)))
    await right(h1.ipam.allocate(p1.id, ep(2), { address: ip('10.40.0.70') }))
    const reg = await right(
      h1.cluster.hosts.register(
        { name: h1.name, underlay: ip('192.0.2.1'), vtepMac: '02:00:00:00:00:01' as never, since: 'x' },
        30
      )
    )
    const refused = await left(removeHost(m.port, h1.name, { force: false }))
    assert.match(describeError(refused), /h1 is alive/)
    await reg.close()
    const removed = await right(removeHost(m.port, h1.name, { force: false }))
    assert.deepEqual(removed.blocks.map((b) => b.cidr).sort(), ['10.40.0.0/26', '10.40.0.64/26'])
    assert.deepEqual(m.state.snapshot().blocks, [])
    const s = await right(h2.ipam.allocate(p2.id, ep(3), { address: ip('10.40.0.70') }))
    assert.equal(s.address, '10.40.0.70')
    const d = await right(h2.ipam.allocate(p2.id, ep(4)))
    assert.ok(inBlock(d.address, '10.40.0.64/26'), `${d.address}: in the block h2 holds now`)
    await checkCluster(m, [h2])
  })
})
