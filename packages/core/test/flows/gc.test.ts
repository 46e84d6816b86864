import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import {
  createEndpoint,
  hostIfName,
  peerIfName,
  type Env,
  ensureNetwork,
  gc,
  io,
  join,
  type AddressSpace,
  type EndpointId,
  type IfName,
  type IpAddress,
  type LeaseOwner,
  type NetworkId,
  type PoolId
} from '@isthmus/core'
import { testEnv, type TestEnv } from '@isthmus/core/testing'
import {
  cid,
  cniRequest,
  dockerRequest,
  ifn,
  NET,
  NET2,
  netns,
  plugin,
  right,
  spec,
  storedEndpoint,
  storedEndpoints,
  subnet
} from './fixtures.js'

const SPACE = 'isthmus-local' as AddressSpace
const POOL1 = 'fake/isthmus-local/10.1.0.0/24' as PoolId
const POOL2 = 'fake/isthmus-local/10.2.0.0/24' as PoolId

const c1 = cniRequest('c1', 'eth0')
const c2 = cniRequest('c2', 'eth0')
const c3 = cniRequest('c3', 'eth1')
const c3eth0 = cniRequest('c3', 'eth0')
const dock = dockerRequest('dock1')
const other = cniRequest('c9', 'eth0', NET2)

/** net1: c1/eth0, c2/eth0, c3/eth1, c3/eth0 and a Docker endpoint; net2: c9/eth0. */
const world = async (): Promise<TestEnv> => {
  const t = testEnv()
  await right(t.run(ensureNetwork(spec())))
  await right(t.run(ensureNetwork(spec({ id: NET2, name: 'net2', subnets: [subnet('10.2.0.0/24')] }))))
  for (const r of [c1, c2, c3, c3eth0, dock]) await right(t.run(createEndpoint(NET, r)))
  await right(t.run(createEndpoint(NET2, other)))
  await right(t.run(join(c1.id, plugin('c1'))))
  return t
}

const lease = async (t: TestEnv, pool: PoolId, address: string, owner: LeaseOwner): Promise<void> => {
  const taken = await right(
    t.env.store.leases.reserve({
      address: address as IpAddress,
      addressSpace: SPACE,
      poolId: pool,
      owner,
      since: '2024-01-01T00:00:00.000Z'
    })()
  )
  assert.ok(taken)
}

const leases = async (t: TestEnv): Promise<ReadonlyArray<string>> =>
  (await right(t.env.store.leases.list(SPACE)())).map((l) => l.address).sort()

const ghost = (id: string): LeaseOwner => ({ kind: 'endpoint', id: id as EndpointId })
const valid = [
  { containerId: cid('c1'), ifName: ifn('eth0') },
  { containerId: cid('c3'), ifName: ifn('eth1') }
]

describe('gc', () => {
  it('deletes exactly the container attachments not named valid, on the network asked', async () => {
    const t = await world()
    const report = await right(t.run(gc({ networkId: NET, valid })))
    assert.deepEqual([...report.endpointsRemoved].sort(), [c2.id, c3eth0.id].sort())
    for (const gone of [c2, c3eth0]) {
      assert.equal(await storedEndpoint(t, gone.id), undefined)
      assert.deepEqual(t.dataplane.state.linksOf(gone.id), [])
      assert.deepEqual(t.controlPlane.state.heldBy(gone.id), [])
    }
    for (const kept of [c1, c3, dock, other]) {
      assert.ok(await storedEndpoint(t, kept.id), `${kept.id} kept`)
      assert.equal(t.dataplane.state.linksOf(kept.id).length, 2)
    }
    assert.equal(t.dataplane.state.linkIn(netns('c1'), ifn('eth0'))?.endpointId, c1.id)
    assert.deepEqual(report.linksRemoved, [])
    assert.deepEqual(report.failures, [])
  })

  it('keeps every endpoint with keep-all-endpoints, and collects every network when none is named', async () => {
    const t = await world()
    const keepAll = await right(t.run(gc({ valid: 'keep-all-endpoints' })))
    assert.deepEqual(keepAll.endpointsRemoved, [])
    assert.equal((await storedEndpoints(t)).length, 6)
    const all = await right(t.run(gc({ valid })))
    assert.deepEqual([...all.endpointsRemoved].sort(), [c2.id, c3eth0.id, other.id].sort())
    assert.ok(await storedEndpoint(t, dock.id), 'Docker endpoints are kept')
  })

  it('releases leases of endpoints that have no record, in the networks’ pools only', async () => {
    const t = await world()
    await lease(t, POOL1, '10.1.0.200', ghost('ghost1'))
    await lease(t, POOL1, '10.1.0.201', ghost(c1.id))
    await lease(t, POOL1, '10.1.0.254', { kind: 'gateway' })
    await lease(t, POOL1, '10.1.0.202', { kind: 'runtime', ref: 'docker-req-1' })
    await lease(t, POOL2, '10.2.0.200', ghost('ghost2'))

    const scoped = await right(t.run(gc({ networkId: NET, valid: 'keep-all-endpoints' })))
    assert.deepEqual(scoped.leasesReleased, [{ addressSpace: SPACE, address: '10.1.0.200', endpointId: 'ghost1' }])
    assert.deepEqual(await leases(t), ['10.1.0.201', '10.1.0.202', '10.1.0.254', '10.2.0.200'])

    const all = await right(t.run(gc({ valid: 'keep-all-endpoints' })))
    assert.deepEqual(
      all.leasesReleased.map((l) => l.address),
      ['10.2.0.200']
    )
    assert.deepEqual(await leases(t), ['10.1.0.201', '10.1.0.202', '10.1.0.254'])
  })

  it('with a grace period, leaves an orphan lease younger than it (a creation in flight) until it is older', async () => {
    const t = await world()
    // testEnv's clock says 2024-01-01T00:00:00Z; the first lease is an hour old, the second new
    t.clock.state.advance(3_600_000)
    await lease(t, POOL1, '10.1.0.200', ghost('old'))
    const young = await right(
      t.env.store.leases.reserve({
        address: '10.1.0.201' as IpAddress,
        addressSpace: SPACE,
        poolId: POOL1,
        owner: ghost('in-flight'),
        since: t.env.clock.now().toISOString()
      })()
    )
    assert.ok(young)
    const first = await right(t.run(gc({ networkId: NET, valid: 'keep-all-endpoints', leaseGraceMs: 60_000 })))
    assert.deepEqual(
      first.leasesReleased.map((l) => l.address),
      ['10.1.0.200']
    )
    assert.deepEqual(await leases(t), ['10.1.0.201'])
    t.clock.state.advance(59_000)
    const still = await right(t.run(gc({ networkId: NET, valid: 'keep-all-endpoints', leaseGraceMs: 60_000 })))
    assert.deepEqual(still.leasesReleased, [])
    t.clock.state.advance(2_000)
    const later = await right(t.run(gc({ networkId: NET, valid: 'keep-all-endpoints', leaseGraceMs: 60_000 })))
    assert.deepEqual(
      later.leasesReleased.map((l) => l.address),
      ['10.1.0.201']
    )
    assert.deepEqual(await leases(t), [])
  })

  it('removes links of ours on its networks that no endpoint owns, and nothing else', async () => {
    const t = await world()
    t.dataplane.state.addStrayLink('istv0000000000a' as IfName, 'istc0000000000a' as IfName, 'br-net1')
    // another isthmus instance's link (another state directory) on a bridge this store does not know
    t.dataplane.state.addStrayLink('istv0000000000b' as IfName, 'istc0000000000b' as IfName, 'br-elsewhere')
    t.dataplane.state.addStrayLink('veth1234' as IfName, undefined, 'br-net1')
    const report = await right(t.run(gc({ networkId: NET, valid: 'keep-all-endpoints' })))
    assert.deepEqual([...report.linksRemoved], ['istv0000000000a'])
    assert.equal(t.dataplane.state.link('istc0000000000a' as IfName), undefined, 'the peer went with it')
    assert.ok(t.dataplane.state.link('istv0000000000b' as IfName), "another instance's link stays")
    assert.ok(t.dataplane.state.link('veth1234' as IfName), 'a link not ours stays')
    for (const kept of [c1, c2, c3, c3eth0, dock, other]) assert.equal(t.dataplane.state.linksOf(kept.id).length, 2)
    assert.deepEqual(report.failures, [])
  })

  it('keeps going past failures and reports each one', async () => {
    const t = await world()
    t.dataplane.state.addStrayLink('istv0000000000a' as IfName, undefined, 'br-net1')
    t.dataplane.state.addStrayLink('istv0000000000b' as IfName, undefined, 'br-net1')
    const linkFailure = io('ip link del', 'busy')
    const endpointFailure = io('controller', 'unreachable')
    t.dataplane.probe.failAt({ method: 'removeLink', nth: 1, error: linkFailure })
    t.controlPlane.probe.failAt({ method: 'deleteEndpoint', nth: 1, error: endpointFailure })

    const report = await right(t.run(gc({ networkId: NET, valid })))
    assert.equal(report.endpointsRemoved.length, 1, 'the second stale endpoint was still deleted')
    assert.equal(report.linksRemoved.length, 1, 'the second stray link was still removed')
    assert.deepEqual(
      report.failures.map((f) => [f.step, f.error]),
      [
        ['endpoint', endpointFailure],
        ['link', linkFailure]
      ]
    )
    // The endpoint that failed keeps its record, and so its links are not taken for orphans.
    const failed = [c2, c3eth0].find((r) => r.id === report.failures[0]?.target)
    assert.ok(failed && (await storedEndpoint(t, failed.id)))
    assert.equal(t.dataplane.state.linksOf(failed.id).length, 0, 'deleteEndpoint got as far as the links')
  })

  it('reports a failed inventory and still returns what it did', async () => {
    const t = await world()
    await lease(t, POOL1, '10.1.0.200', ghost('ghost1'))
    t.dataplane.probe.failAt({ method: 'inventory' })
    const report = await right(t.run(gc({ networkId: 'nonet' as NetworkId, valid: [] })))
    assert.deepEqual(report.endpointsRemoved, [], 'no network, no endpoint of it')
    assert.deepEqual(report.leasesReleased, [])
    assert.deepEqual(
      report.failures.map((f) => f.step),
      ['inventory']
    )
  })

  describe('orphans named by their links', () => {
    const c4 = cniRequest('c4', 'eth0')
    const strayOf = (t: TestEnv, id: EndpointId): void =>
      t.dataplane.state.addStrayLink(hostIfName(id), peerIfName(id), 'br-net1', id)

    it('removes an orphan endpoint’s links, then releases its leases', async () => {
      const t = await world()
      const ghostId = 'ghost1' as EndpointId
      strayOf(t, ghostId)
      await lease(t, POOL1, '10.1.0.200', ghost(ghostId))
      const report = await right(t.run(gc({ networkId: NET, valid: 'keep-all-endpoints' })))
      assert.deepEqual(report.linksRemoved, [hostIfName(ghostId)])
      assert.deepEqual(
        report.leasesReleased.map((l) => l.address),
        ['10.1.0.200']
      )
      assert.deepEqual(t.dataplane.state.linksOf(ghostId), [])
      const order = t.journal.calls
        .map((c) => `${c.port}.${c.method}`)
        .filter((m) => m === 'dataplane.removeLink' || m === 'store.leases.release')
      assert.deepEqual(
        order,
        ['dataplane.removeLink', 'store.leases.release'],
        'no address is free while its link is there'
      )
      assert.ok(
        t.store.probe.calls.some((c) => c.method === 'withLock' && c.args[0] === `endpoint:${ghostId}`),
        'under the endpoint lock'
      )
    })

    it('keeps an orphan’s leases when one of its links cannot be removed, and reports that link', async () => {
      const t = await world()
      const ghostId = 'ghost1' as EndpointId
      strayOf(t, ghostId)
      await lease(t, POOL1, '10.1.0.200', ghost(ghostId))
      t.dataplane.probe.failAt({ method: 'removeLink', error: io('ip link del', 'busy') })
      const report = await right(t.run(gc({ networkId: NET, valid: 'keep-all-endpoints' })))
      assert.deepEqual(report.leasesReleased, [])
      assert.deepEqual(
        report.failures.map((f) => [f.step, f.target]),
        [['link', hostIfName(ghostId)]]
      )
      assert.deepEqual(await leases(t), ['10.1.0.200'])
    })

    it('waits for an endpoint creation in flight (its lock) and then sweeps nothing of it', async () => {
      const t = await world()
      let release!: () => void
      const gate = new Promise<void>((r) => (release = r))
      let signal!: () => void
      const linkMade = new Promise<void>((r) => (signal = r))
      // The creation stops between its link and its record, as a CNI ADD in another process can.
      const env: Env = {
        ...t.env,
        dataplane: {
          ...t.env.dataplane,
          ensureEndpoint: (s, p) =>
            pipe(
              t.env.dataplane.ensureEndpoint(s, p),
              TE.chainFirst(() =>
                TE.fromTask(async () => {
                  signal()
                  await gate
                })
              )
            )
        }
      }
      // Its address, as its control-plane step took it.
      await lease(t, POOL1, '10.1.0.210', ghost(c4.id))
      const creating = createEndpoint(NET, c4)(env)()
      await linkMade
      let swept = false
      const sweeping = gc({ networkId: NET, valid: 'keep-all-endpoints' })(env)().then((r) => {
        swept = true
        return r
      })
      await new Promise((r) => setTimeout(r, 50))
      assert.equal(swept, false, 'gc waits for the endpoint’s lock')
      release()
      await right(creating)
      const report = await right(sweeping)
      assert.deepEqual([report.linksRemoved, report.leasesReleased], [[], []])
      assert.equal(t.dataplane.state.linksOf(c4.id).length, 2)
      assert.ok((await leases(t)).includes('10.1.0.210'))
    })

    it('with a grace period, leaves the links of an endpoint whose lease is young (a Docker endpoint being made by the daemon)', async () => {
      const t = await world()
      const inFlight = 'dockerep' as EndpointId
      strayOf(t, inFlight)
      const taken = await right(
        t.env.store.leases.reserve({
          address: '10.1.0.220' as IpAddress,
          addressSpace: SPACE,
          poolId: POOL1,
          owner: ghost(inFlight),
          since: t.env.clock.now().toISOString()
        })()
      )
      assert.ok(taken)
      const report = await right(t.run(gc({ networkId: NET, valid: 'keep-all-endpoints', leaseGraceMs: 60_000 })))
      assert.deepEqual([report.linksRemoved, report.leasesReleased], [[], []])
      t.clock.state.advance(61_000)
      const later = await right(t.run(gc({ networkId: NET, valid: 'keep-all-endpoints', leaseGraceMs: 60_000 })))
      assert.deepEqual(later.linksRemoved, [hostIfName(inFlight)])
    })
  })
})
