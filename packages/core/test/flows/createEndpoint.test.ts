import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import {
  createEndpoint,
  ensureNetwork,
  hostIfName,
  io,
  peerIfName,
  type CoreError,
  type IpAddress,
  type MacAddress,
  type Subnet
} from '@isthmus/core'
import { fakeMac, testEnv, type TestEnv } from '@isthmus/core/testing'
import {
  assertNoTraceOf,
  cniRequest,
  dockerRequest,
  left,
  NET,
  NET2,
  right,
  spec,
  storedEndpoint,
  subnet
} from './fixtures.js'

const withNetwork = async (options: Parameters<typeof testEnv>[0] = {}, s = spec()): Promise<TestEnv> => {
  const t = testEnv(options)
  await right(t.run(ensureNetwork(s)))
  return t
}

describe('createEndpoint', () => {
  it('assigns an address, makes the veth pair, stores the record and tells the agent', async () => {
    const t = await withNetwork({ now: new Date('2024-02-03T04:05:06.000Z') })
    const req = cniRequest('ctr1')
    const e = await right(t.run(createEndpoint(NET, req)))
    assert.deepEqual(e, {
      id: req.id,
      networkId: NET,
      owner: req.owner,
      addresses: [{ cidr: '10.1.0.2/24', poolId: 'fake/isthmus-local/10.1.0.0/24', gateway: '10.1.0.1' }],
      hostIfName: hostIfName(req.id),
      peerIfName: peerIfName(req.id),
      routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }],
      portMappings: [],
      createdAt: '2024-02-03T04:05:06.000Z',
      mac: fakeMac(req.id)
    })
    assert.deepEqual(await storedEndpoint(t, req.id), e)
    const links = t.dataplane.state.linksOf(req.id)
    assert.deepEqual(
      links.map((l) => `${l.name} ${l.side} ${l.location._tag}`).sort(),
      [`${hostIfName(req.id)} host Host`, `${peerIfName(req.id)} sandbox Host`].sort()
    )
    assert.equal(t.dataplane.state.link(hostIfName(req.id))?.device, 'br-net1')
    assert.deepEqual(
      t.controlPlane.state.heldBy(req.id).map((h) => h.address),
      ['10.1.0.2']
    )
    assert.deepEqual(t.agent.state.ports(), [{ endpointId: req.id, networkId: NET }])
  })

  it('gives distinct addresses to distinct endpoints', async () => {
    const t = await withNetwork()
    const a = await right(t.run(createEndpoint(NET, cniRequest('a'))))
    const b = await right(t.run(createEndpoint(NET, cniRequest('b'))))
    assert.deepEqual([a.addresses[0]?.cidr, b.addresses[0]?.cidr], ['10.1.0.2/24', '10.1.0.3/24'])
  })

  it('keeps a requested MAC, and a controller’s MAC and identity when it gives them', async () => {
    const mac = '02:aa:bb:cc:dd:ee' as MacAddress
    const t1 = await withNetwork()
    const e1 = await right(t1.run(createEndpoint(NET, dockerRequest('ep1', { mac }))))
    assert.equal(e1.mac, mac)
    assert.equal(t1.dataplane.state.link(e1.peerIfName)?.mac, mac)

    const t2 = await withNetwork({ controlPlane: { identity: true } })
    const e2 = await right(t2.run(createEndpoint(NET, dockerRequest('ep2'))))
    assert.equal(e2.mac, fakeMac('controller:ep2'))
    assert.deepEqual(e2.controller, { interfaceId: 'vmi-ep2' })
    assert.equal(t2.dataplane.state.link(e2.peerIfName)?.mac, e2.mac)
  })

  it('adds no default route on an internal network, and takes the routes it is given', async () => {
    const t = await withNetwork({}, spec({ internal: true }))
    assert.deepEqual((await right(t.run(createEndpoint(NET, cniRequest('a'))))).routes, [])
    const routes = [{ dst: '10.9.0.0/16' as Subnet, gw: '10.1.0.1' as IpAddress }]
    const t2 = await withNetwork()
    assert.deepEqual((await right(t2.run(createEndpoint(NET, { ...cniRequest('a'), routes })))).routes, routes)
  })

  it('adds a default route per family on a dual-stack network', async () => {
    const t = await withNetwork({}, spec({ subnets: [subnet('10.1.0.0/24'), subnet('fd00:1::/64')] }))
    const e = await right(
      t.run(
        createEndpoint(NET, {
          ...cniRequest('a'),
          addresses: [
            { _tag: 'Any', family: 4 },
            { _tag: 'Any', family: 6 }
          ]
        })
      )
    )
    assert.deepEqual(
      e.addresses.map((a) => a.cidr),
      ['10.1.0.2/24', 'fd00:1::2/64']
    )
    assert.deepEqual(e.routes, [
      { dst: '0.0.0.0/0', gw: '10.1.0.1' },
      { dst: '::/0', gw: 'fd00:1::1' }
    ])
  })

  it('returns the stored endpoint when called again, without assigning anything new', async () => {
    const t = await withNetwork()
    const first = await right(t.run(createEndpoint(NET, cniRequest('a'))))
    t.clock.state.advance(1000)
    const second = await right(t.run(createEndpoint(NET, cniRequest('a'))))
    assert.deepEqual(second, first)
    assert.equal(t.controlPlane.probe.callsOf('createEndpoint').length, 1)
    assert.equal(t.dataplane.probe.callsOf('ensureEndpoint').length, 1)
    assert.equal(t.agent.probe.callsOf('addPort').length, 1)
  })

  it('refuses an id already used on another network', async () => {
    const t = await withNetwork()
    await right(t.run(ensureNetwork(spec({ id: NET2, name: 'net2', subnets: [subnet('10.2.0.0/24')] }))))
    await right(t.run(createEndpoint(NET, dockerRequest('ep1'))))
    const e = await left(t.run(createEndpoint(NET2, dockerRequest('ep1'))))
    assert.equal(e._tag, 'AlreadyExists')
  })

  it('fails with NotFound on a network that does not exist, holding nothing', async () => {
    const t = testEnv()
    const req = cniRequest('a')
    assert.deepEqual(await left(t.run(createEndpoint(NET, req))), { _tag: 'NotFound', kind: 'network', id: NET })
    await assertNoTraceOf(t, req.id)
    assert.equal(t.controlPlane.probe.calls.length, 0)
  })

  describe('rolls back every finished step when a step fails, and returns that step’s error', () => {
    const steps: ReadonlyArray<{
      readonly port: 'store' | 'controlPlane' | 'dataplane' | 'agent'
      readonly method: string
    }> = [
      { port: 'store', method: 'endpoints.get' },
      { port: 'store', method: 'networks.get' },
      { port: 'controlPlane', method: 'createEndpoint' },
      { port: 'dataplane', method: 'ensureEndpoint' },
      { port: 'store', method: 'endpoints.put' },
      { port: 'agent', method: 'addPort' }
    ]
    for (const step of steps) {
      it(`${step.port}.${step.method}`, async () => {
        const t = await withNetwork()
        const req = cniRequest('a')
        const injected: CoreError = io(`${step.port}.${step.method}`, 'boom')
        const before = t[step.port].probe.callsOf(step.method).length
        t[step.port].probe.failAt({ method: step.method, nth: before + 1, error: injected })
        assert.deepEqual(await left(t.run(createEndpoint(NET, req))), injected)
        assert.equal(t[step.port].probe.callsOf(step.method).length, before + 1, 'the step was reached')
        await assertNoTraceOf(t, req.id)
        assert.deepEqual(t.controlPlane.state.held(), [])
        assert.deepEqual(t.log.state.at('warn'), [])
        // Nothing half-made blocks a retry.
        const e = await right(t.run(createEndpoint(NET, req)))
        assert.equal(e.addresses[0]?.cidr, '10.1.0.2/24')
      })
    }
  })

  it('undoes in reverse order: record, then veth pair, then addresses', async () => {
    const t = await withNetwork()
    t.agent.probe.failAt({ method: 'addPort' })
    await left(t.run(createEndpoint(NET, cniRequest('a'))))
    const undo = t.journal.calls
      .map((c) => `${c.port}.${c.method}`)
      .filter((m) => ['store.endpoints.delete', 'dataplane.deleteEndpoint', 'controlPlane.deleteEndpoint'].includes(m))
    assert.deepEqual(undo, ['store.endpoints.delete', 'dataplane.deleteEndpoint', 'controlPlane.deleteEndpoint'])
  })

  it('logs an undo that fails, still runs the others, and returns the original error', async () => {
    const t = await withNetwork()
    const req = cniRequest('a')
    const original = io('agent.addPort', 'agent down')
    t.agent.probe.failAt({ method: 'addPort', error: original })
    t.dataplane.probe.failAt({ method: 'deleteEndpoint', error: io('ip link del', 'busy') })
    assert.deepEqual(await left(t.run(createEndpoint(NET, req))), original)
    assert.equal(await storedEndpoint(t, req.id), undefined)
    assert.deepEqual(t.controlPlane.state.heldBy(req.id), [], 'addresses were still given back')
    const warns = t.log.state.at('warn')
    assert.equal(warns.length, 1)
    assert.deepEqual(
      [warns[0]?.fields['op'], warns[0]?.fields['step'], warns[0]?.fields['failedStep']],
      ['createEndpoint', 'endpoint', 'agent']
    )
  })
})
