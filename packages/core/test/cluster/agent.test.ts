/**
 * The cluster agent and the dataplane of cluster networks, with a recording overlay: simulated
 * hosts (a memory Store, an Ipam, an agent and a decorated fake dataplane each) on one memory
 * Cluster whose lease clock the test moves.
 */
import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import {
  builtinControlPlane,
  clusterDataplane,
  CLUSTER_OPTION,
  createEndpoint,
  deleteEndpoint,
  deleteNetwork,
  describe as describeError,
  ensureNetwork,
  hostsReport,
  makeIpam,
  startClusterAgent,
  transient,
  type ClusterAgent,
  type HostName,
  type HostRecord,
  type IpAddress,
  type MacAddress,
  type NetworkId,
  type Store
} from '@isthmus/core'
import {
  fakeDataplane,
  fakeOverlay,
  left,
  memoryCluster,
  memoryStore,
  recordingLogger,
  right,
  testEnv,
  type FakeOverlay,
  type MemoryCluster,
  type MemoryClusterClient
} from '@isthmus/core/testing'
import { cniRequest, spec, subnet } from '../flows/fixtures.js'

const TTL = 10
const NET = 'bluenet' as NetworkId

const record = (name: string, n: number): HostRecord => ({
  name: name as HostName,
  underlay: `192.0.2.${n}` as IpAddress,
  vtepMac: `02:00:00:00:00:0${n}` as MacAddress,
  since: '2026-01-01T00:00:00.000Z'
})

interface SimHost {
  readonly name: string
  readonly client: MemoryClusterClient
  readonly overlay: FakeOverlay
  readonly agent: ClusterAgent
  readonly t: ReturnType<typeof testEnv>
  readonly dataplane: ReturnType<typeof fakeDataplane>
  readonly log: ReturnType<typeof recordingLogger>
  readonly store: Store
}

const boot = async (m: MemoryCluster, name: string, n: number, store = memoryStore()): Promise<SimHost> => {
  const client = m.state.connect()
  const overlay = fakeOverlay()
  const log = recordingLogger()
  const agent = await right(
    startClusterAgent({
      cluster: client.port,
      overlay: overlay.port,
      store,
      self: record(name, n),
      ttlSeconds: TTL,
      log: log.port,
      retryMs: 20
    })
  )
  const ipam = makeIpam({
    store,
    clock: { now: () => new Date() },
    cluster: { cluster: client.port, host: name as HostName }
  })
  const dataplane = fakeDataplane()
  const t = testEnv({
    env: {
      store,
      controlPlane: builtinControlPlane(ipam, store),
      dataplane: clusterDataplane(dataplane.port, agent)
    }
  })
  return { name, client, overlay, agent, t, dataplane, log, store }
}

const blueSpec = spec({
  id: NET,
  name: 'blue',
  subnets: [subnet('10.40.0.0/16')],
  options: { [CLUSTER_OPTION]: 'blue' }
})

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
const eventually = async (what: string, probe: () => boolean, ms = 3000): Promise<void> => {
  const until = Date.now() + ms
  while (!probe()) {
    if (Date.now() > until) assert.fail(`not within ${ms} ms: ${what}`)
    await sleep(10)
  }
}

const peersOf = (h: SimHost) => h.overlay.state.hostsOf(NET)

describe('cluster agent', () => {
  it('peers appear as hosts register and claim blocks, go when a registration expires, come back with it', async () => {
    const m = memoryCluster()
    const a = await boot(m, 'a', 1)
    const net = await right(a.t.run(ensureNetwork(blueSpec)))
    assert.equal(net.options['isthmus.cluster.vni'], '4096')
    assert.deepEqual(a.overlay.state.devices.get(NET), { vni: 4096, bridge: `br-${NET}` })
    assert.deepEqual(peersOf(a), [])

    const b = await boot(m, 'b', 2)
    await right(b.t.run(ensureNetwork(blueSpec)))
    assert.deepEqual(peersOf(b), [], "a holds no block yet: it is nobody's peer")
    const epB = await right(b.t.run(createEndpoint(NET, cniRequest('cb'))))
    await eventually('b is a peer of a', () => peersOf(a).join() === 'b')
    const peerB = a.overlay.state.peers.get(NET)![0]!
    assert.deepEqual(peerB, {
      host: 'b',
      underlay: '192.0.2.2',
      vtepMac: '02:00:00:00:00:02',
      blocks: ['10.40.0.0/26']
    })

    // c registers: no peer until it holds a block of blue
    const c = await boot(m, 'c', 3)
    await a.agent.refresh()
    assert.deepEqual(peersOf(a), ['b'])
    await right(c.t.run(ensureNetwork(blueSpec)))
    await right(c.t.run(createEndpoint(NET, cniRequest('cc'))))
    await eventually('c is a peer of a and b', () => peersOf(a).join() === 'b,c' && peersOf(b).join() === 'c')
    assert.deepEqual(peersOf(c), ['b'], 'a holds no block: not a peer of c')
    await right(a.t.run(createEndpoint(NET, cniRequest('ca'))))
    await eventually('a is a peer of b and c', () => peersOf(b).join() === 'a,c' && peersOf(c).join() === 'a,b')

    // b's daemon dies: its registration expires after its TTL, and the others forget it
    await b.client.port.close()
    m.state.advance((TTL - 1) * 1000)
    await a.agent.refresh()
    assert.deepEqual(peersOf(a), ['b', 'c'], 'still within its TTL')
    m.state.advance(1000)
    await eventually('b is forgotten', () => peersOf(a).join() === 'c' && peersOf(c).join() === 'a')
    // its block stays its own (never taken back on a timeout)
    const report = await right(hostsReport(m.port))
    assert.deepEqual(
      report.map((r) => `${r.name} ${r.live} ${JSON.stringify(r.blocks)}`),
      ['a true {"blue":["10.40.0.128/26"]}', 'b false {"blue":["10.40.0.0/26"]}', 'c true {"blue":["10.40.0.64/26"]}']
    )

    // b starts again, on its store: it registers and is back
    const b2 = await boot(m, 'b', 2, b.store)
    await eventually('b is back', () => peersOf(a).join() === 'b,c' && peersOf(c).join() === 'a,b')
    await right(b2.t.run(deleteEndpoint(epB.id)))
    await eventually('b gave its block back: no longer a peer', () => peersOf(a).join() === 'c')

    for (const h of [a, b2, c]) await h.agent.close()
  })

  it('the first container on a new network reaches the others at once; deleting the network removes its overlay for good', async () => {
    const m = memoryCluster()
    const [a, b] = [await boot(m, 'a', 1), await boot(m, 'b', 2)]
    await right(b.t.run(ensureNetwork(blueSpec)))
    await right(b.t.run(createEndpoint(NET, cniRequest('cb'))))
    await eventually('a has seen b’s block', () => a.agent.view()?.blocks.length === 1)
    // a makes the network now: its overlay points at b before ensureNetwork answers
    await right(a.t.run(ensureNetwork(blueSpec)))
    assert.deepEqual(peersOf(a), ['b'])
    await right(a.t.run(deleteNetwork(NET)))
    assert.equal(a.overlay.state.devices.has(NET), false)
    assert.deepEqual(a.dataplane.state.networks(), [])
    // later views do not make it again
    await right(b.t.run(createEndpoint(NET, cniRequest('cb2'))))
    await sleep(50)
    await a.agent.refresh()
    assert.equal(a.overlay.state.devices.has(NET), false)
    for (const h of [a, b]) await h.agent.close()
  })

  it('an overlay that cannot be made fails the network, and leaves neither device nor record', async () => {
    const m = memoryCluster()
    const a = await boot(m, 'a', 1)
    a.overlay.probe.failAt({ method: 'ensure', nth: 1 })
    const e = await left(a.t.run(ensureNetwork(blueSpec)))
    assert.equal(e._tag, 'Io', describeError(e))
    assert.deepEqual(a.dataplane.state.networks(), [])
    assert.deepEqual(await right(a.store.networks.list()), [])
    // a retried ADD makes it
    await right(a.t.run(ensureNetwork(blueSpec)))
    assert.ok(a.overlay.state.devices.has(NET))
    await a.agent.close()
  })

  it('a failing overlay or store never stops reconciling: logged, then tried again', async () => {
    const m = memoryCluster()
    const [a, b] = [await boot(m, 'a', 1), await boot(m, 'b', 2)]
    await right(a.t.run(ensureNetwork(blueSpec)))
    a.overlay.probe.failAt({ method: 'setPeers', nth: 2, error: transient('netlink busy') })
    a.overlay.probe.failAt({ method: 'setPeers', nth: 3, error: transient('netlink busy') })
    await right(b.t.run(ensureNetwork(blueSpec)))
    await right(b.t.run(createEndpoint(NET, cniRequest('cb'))))
    await eventually('b is a peer of a after the failures', () => peersOf(a).join() === 'b')
    assert.ok(a.overlay.probe.callsOf('setPeers').length >= 4)
    assert.ok(a.log.state.entries.some((l) => l.level === 'warn' && /netlink busy/.test(l.msg)))
    for (const h of [a, b]) await h.agent.close()
  })

  it('a host whose registration was lost (cut off longer than its TTL) registers again; an outage is logged, not fatal', async () => {
    const m = memoryCluster()
    const [a, b] = [await boot(m, 'a', 1), await boot(m, 'b', 2)]
    await right(a.t.run(ensureNetwork(blueSpec)))
    await right(a.t.run(createEndpoint(NET, cniRequest('ca'))))
    await right(b.t.run(ensureNetwork(blueSpec)))
    await eventually('a is a peer of b', () => peersOf(b).join() === 'a')
    m.state.partition()
    assert.ok(a.log.state.entries.some((l) => l.level === 'warn' && /unreachable/.test(l.msg)))
    assert.deepEqual(peersOf(b), ['a'], 'an outage changes no overlay')
    m.state.expire('a')
    m.state.heal()
    await eventually('a registered again', () => m.state.snapshot().hosts.some((h) => h.name === 'a'))
    await eventually('a is a peer of b again', () => peersOf(b).join() === 'a')
    assert.ok(a.log.state.entries.some((l) => /registered again/.test(l.msg)))
    for (const h of [a, b]) await h.agent.close()
    assert.deepEqual(m.state.snapshot().hosts, [])
  })

  it('close stops following the cluster and revokes the registration; a cluster store that is down fails the start', async () => {
    const m = memoryCluster()
    const a = await boot(m, 'a', 1)
    assert.deepEqual(
      m.state.snapshot().hosts.map((h) => h.name),
      ['a']
    )
    await a.agent.close()
    assert.deepEqual(m.state.snapshot().hosts, [])
    m.state.partition()
    const client = m.state.connect()
    const e = await left(
      startClusterAgent({
        cluster: client.port,
        overlay: fakeOverlay().port,
        store: memoryStore(),
        self: record('z', 9),
        ttlSeconds: TTL,
        log: recordingLogger().port
      })
    )
    assert.equal(e._tag, 'Transient')
    m.state.heal()
    assert.deepEqual(m.state.snapshot().hosts, [])
  })

  it('at its start the agent takes in the blocks the cluster says are its host’s, drops those another host holds, gives back empty ones', async () => {
    const m = memoryCluster()
    const a = await boot(m, 'a', 1)
    await right(a.t.run(ensureNetwork(blueSpec)))
    const ep = await right(a.t.run(createEndpoint(NET, cniRequest('c1'))))
    assert.equal(ep.addresses[0]?.cidr, '10.40.0.2/16')
    await a.agent.close()
    await a.client.port.close()
    // an operator removes a while it is away; b takes its block; and a block is claimed in a's name
    const ops = m.state.connect().port
    await right(ops.blocks.release('blue' as never, '10.40.0.0/26' as never, 'a' as never))
    await right(
      ops.blocks.claim({ network: 'blue' as never, cidr: '10.40.0.0/26' as never, host: 'b' as never, claimedAt: 'x' })
    )
    await right(
      ops.blocks.claim({ network: 'blue' as never, cidr: '10.40.1.0/26' as never, host: 'a' as never, claimedAt: 'x' })
    )
    const again = await boot(m, 'a', 1, a.store)
    // 10.40.1.0/26 taken in, then given back as empty; 10.40.0.0/26 dropped, the clash reported
    assert.deepEqual((await right(again.store.pools.list()))[0]!.ranges, [])
    assert.deepEqual(
      m.state.snapshot().blocks.map((b) => `${b.host} ${b.cidr}`),
      ['b 10.40.0.0/26']
    )
    assert.ok(
      again.log.state.entries.some((l) => l.level === 'error' && /10\.40\.0\.0\/26 .* held by b/.test(l.msg)),
      'the clash is reported'
    )
    assert.ok(again.log.state.entries.some((l) => /given back/.test(l.msg)))
    await again.agent.close()
  })
})
