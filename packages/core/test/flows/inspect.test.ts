/**
 * The inspection queries over the in-memory store with the real built-in IPAM: which records
 * are attachments and which leases are reservations, the network filter, pool usage, and the
 * summary the metrics export.
 */
import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import {
  builtinControlPlane,
  createEndpoint,
  DEFAULT_LOCAL_SPACE,
  DOCKER_RUNTIME_OWNER,
  ensureNetwork,
  inspectLeases,
  inspectNetworks,
  inspectSummary,
  join,
  joinCidr,
  makeIpam,
  type EndpointId,
  type Env,
  type IpAddress,
  type Ipam,
  type NetworkId,
  type Pool,
  type Subnet
} from '@isthmus/core'
import { left, right, testEnv } from '@isthmus/core/testing'
import { cniRequest, dockerRequest, NET, plugin, spec, subnet } from './fixtures.js'

const DOCK = 'a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0a1b2' as NetworkId
const SPACE = DEFAULT_LOCAL_SPACE

interface World {
  readonly env: Env
  readonly ipam: Ipam
  readonly dockPool: Pool
  readonly otherPool: Pool
  readonly unbound: IpAddress
}

/**
 * net1 (10.241.1.0/24, isthmus IPAM): c1/eth0 joined, c2/eth0 not joined. A Docker network on a
 * pool Docker requested (10.241.2.0/24, aux printer .10), with endpoint d1 on an address Docker
 * asked for, and one RequestAddress not yet bound. A pool no network uses (10.241.3.0/24). A
 * lease of an endpoint that has no record.
 */
const world = async (): Promise<World> => {
  const t = testEnv()
  const ipam = makeIpam({ store: t.env.store, clock: t.env.clock })
  const env: Env = { ...t.env, controlPlane: builtinControlPlane(ipam, t.env.store) }
  const run = <A>(f: (e: Env) => () => Promise<A>) => f(env)()
  await right(run(ensureNetwork(spec({ subnets: [subnet('10.241.1.0/24')] }))))
  await right(run(createEndpoint(NET, cniRequest('c1'))))
  await right(run(join(cniRequest('c1').id, plugin('c1'))))
  await right(run(createEndpoint(NET, cniRequest('c2'))))

  const dockPool = await right(
    ipam.requestPool({
      addressSpace: SPACE,
      family: 4,
      subnet: '10.241.2.0/24' as Subnet,
      aux: { printer: '10.241.2.10' as IpAddress }
    })()
  )
  await right(
    run(
      ensureNetwork(
        spec({
          id: DOCK,
          name: DOCK.slice(0, 12),
          managedAddresses: false,
          subnets: [{ family: 4, subnet: dockPool.subnet, poolId: dockPool.id }]
        })
      )
    )
  )
  const requested = await right(ipam.allocate(dockPool.id, DOCKER_RUNTIME_OWNER)())
  await right(
    run(
      createEndpoint(
        DOCK,
        dockerRequest('d1', { addresses: [{ _tag: 'Assigned', cidr: joinCidr(requested.address, 24) }] })
      )
    )
  )
  const unbound = (await right(ipam.allocate(dockPool.id, DOCKER_RUNTIME_OWNER)())).address

  const otherPool = await right(
    ipam.requestPool({ addressSpace: SPACE, family: 4, subnet: '10.241.3.0/24' as Subnet })()
  )
  const taken = await right(
    env.store.leases.reserve({
      address: '10.241.1.200' as IpAddress,
      addressSpace: SPACE,
      poolId: (await right(env.store.networks.list()())).find((n) => n.id === NET)!.ipv4[0]!.poolId!,
      owner: { kind: 'endpoint', id: 'ghost' as EndpointId },
      since: '2024-01-01T00:00:00.000Z'
    })()
  )
  assert.ok(taken)
  return { env, ipam, dockPool, otherPool, unbound }
}

describe('inspection queries', () => {
  it('lists exactly the endpoint records as attachments, with owner, addresses, MAC, sandbox and since', async () => {
    const w = await world()
    const view = await right(inspectLeases()(w.env)())
    const records = await right(w.env.store.endpoints.list()())
    assert.deepEqual(view.attachments.map((a) => a.endpointId).sort(), records.map((e) => e.id).sort())
    for (const e of records) {
      const a = view.attachments.find((x) => x.endpointId === e.id)!
      assert.deepEqual(a.owner, e.owner)
      assert.deepEqual(
        a.addresses.map((x) => x.cidr),
        e.addresses.map((x) => x.cidr)
      )
      assert.equal(a.mac, e.mac)
      assert.equal(a.hostIfName, e.hostIfName)
      assert.equal(a.sandbox, e.sandbox)
      assert.equal(a.since, e.createdAt)
    }
    const c1 = view.attachments.find((a) => a.endpointId === cniRequest('c1').id)!
    assert.equal(c1.containerId, 'c1')
    assert.equal(c1.sandbox, '/var/run/netns/c1')
    assert.equal(c1.networkName, 'net1')
    assert.equal(view.attachments.find((a) => a.endpointId === cniRequest('c2').id)!.sandbox, undefined, 'not joined')
    const d1 = view.attachments.find((a) => a.endpointId === 'd1')!
    assert.deepEqual(d1.owner, { kind: 'docker', endpointId: 'd1' })
    assert.equal(d1.networkName, DOCK.slice(0, 12))
  })

  it('lists every other lease as a reservation of its kind, each address once', async () => {
    const w = await world()
    const view = await right(inspectLeases()(w.env)())
    const got = view.reserved.map((r) => `${r.kind} ${r.address} ${r.networkName ?? '-'} ${r.ref ?? ''}`).sort()
    assert.deepEqual(got, [
      'aux 10.241.2.10 a1b2c3d4e5f6 printer',
      'gateway 10.241.1.1 net1 ',
      'gateway 10.241.2.1 a1b2c3d4e5f6 ',
      'gateway 10.241.3.1 - ',
      'orphan 10.241.1.200 net1 ghost',
      `runtime ${w.unbound} a1b2c3d4e5f6 docker`
    ])
    const attached = view.attachments.flatMap((a) => a.addresses.map((x) => x.cidr.split('/')[0]))
    assert.equal(
      new Set([...attached, ...view.reserved.map((r) => r.address)]).size,
      attached.length + view.reserved.length
    )
  })

  it('narrows to one network by id, name or id prefix; an unknown one is NotFound', async () => {
    const w = await world()
    for (const ref of [DOCK, DOCK.slice(0, 12), 'a1b2c3']) {
      const view = await right(inspectLeases({ network: ref })(w.env)())
      assert.deepEqual(
        view.attachments.map((a) => a.endpointId),
        ['d1'],
        ref
      )
      assert.deepEqual(view.reserved.map((r) => r.kind).sort(), ['aux', 'gateway', 'runtime'], ref)
    }
    const net1 = await right(inspectLeases({ network: 'net1' })(w.env)())
    assert.equal(net1.attachments.length, 2)
    assert.deepEqual(await left(inspectLeases({ network: 'nope' })(w.env)()), {
      _tag: 'NotFound',
      kind: 'network',
      id: 'nope'
    })
  })

  it('gives each network its subnets, pools with size, used and free, and endpoint count', async () => {
    const w = await world()
    const view = await right(inspectNetworks(w.env)())
    const net1 = view.networks.find((n) => n.id === NET)!
    assert.equal(net1.endpoints, 2)
    assert.deepEqual(
      net1.subnets.map((s) => `${s.subnet} ${s.gateway}`),
      ['10.241.1.0/24 10.241.1.1']
    )
    const [p1] = net1.pools
    // 254 usable; gateway, c1, c2 and the orphan hold four
    assert.deepEqual([p1!.size, p1!.used, p1!.free, p1!.leased], [254n, 4, 250n, 4])
    const dock = view.networks.find((n) => n.id === DOCK)!
    assert.equal(dock.endpoints, 1)
    assert.deepEqual(
      dock.pools.map((p) => [p.poolId, p.used]),
      [[w.dockPool.id, 4]],
      'gateway, aux, d1 and the unbound request'
    )
    assert.deepEqual(
      view.otherPools.map((p) => [p.poolId, p.used, p.free]),
      [[w.otherPool.id, 1, 253n]]
    )
  })

  it('counts networks, endpoints and leases by holder for the metrics', async () => {
    const w = await world()
    const s = await right(inspectSummary(w.env)())
    assert.equal(s.networks, 2)
    assert.equal(s.endpoints, 3)
    assert.deepEqual(s.leases, { attachment: 3, gateway: 3, aux: 1, runtime: 1, orphan: 1 })
    assert.deepEqual(
      s.pools.map((p) => `${p.subnet} ${p.used}`),
      ['10.241.1.0/24 4', '10.241.2.0/24 4', '10.241.3.0/24 1']
    )
  })

  it('counts addresses outside the ranges as leased but not used, and reads an empty store', async () => {
    const t = testEnv()
    const ipam = makeIpam({ store: t.env.store, clock: t.env.clock })
    const pool = await right(
      ipam.requestPool({
        addressSpace: SPACE,
        family: 4,
        subnet: '10.241.4.0/24' as Subnet,
        ranges: [{ start: '10.241.4.128' as IpAddress, end: '10.241.4.255' as IpAddress }]
      })()
    )
    const empty = await right(inspectNetworks(t.env)())
    assert.equal(empty.networks.length, 0)
    await right(
      ipam.allocate(pool.id, DOCKER_RUNTIME_OWNER, { address: '10.241.4.7' as IpAddress, anywhereInSubnet: true })()
    )
    await right(ipam.allocate(pool.id, DOCKER_RUNTIME_OWNER)())
    const [u] = (await right(inspectNetworks(t.env)())).otherPools
    // 128..254 (the broadcast is not usable): 127; gateway .1 and .7 lie outside the range
    assert.deepEqual([u!.size, u!.used, u!.free, u!.leased], [127n, 1, 126n, 3])
  })
})
