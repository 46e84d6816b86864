import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import {
  createEndpoint,
  ensureNetwork,
  join,
  leave,
  type CreateEndpointRequest,
  type EndpointId,
  type Placement
} from '@isthmus/core'
import { fakeMac, testEnv, type TestEnv } from '@isthmus/core/testing'
import {
  cniRequest,
  dockerRequest,
  ifn,
  left,
  NET,
  netns,
  plugin,
  right,
  spec,
  storedEndpoint,
  interfacesIn
} from './fixtures.js'

const setup = async (reqs: ReadonlyArray<CreateEndpointRequest>, s = spec()): Promise<TestEnv> => {
  const t = testEnv()
  await right(t.run(ensureNetwork(s)))
  for (const r of reqs) await right(t.run(createEndpoint(NET, r)))
  return t
}

const runtime: Placement = { _tag: 'RuntimeMoves', dstPrefix: 'eth' }

describe('join', () => {
  it('PluginMoves: moves the link into the sandbox as asked and records both sides', async () => {
    const req = cniRequest('ctr1')
    const t = await setup([req])
    const r = await right(t.run(join(req.id, plugin('x'))))
    const inside = t.dataplane.state.linkIn(netns('x'), ifn('eth0'))
    assert.equal(inside?.endpointId, req.id)
    assert.deepEqual(inside?.addresses, ['10.1.0.2/24'])
    assert.deepEqual(inside?.routes, [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }])
    assert.deepEqual(r.placed, { ifName: 'eth0', mac: fakeMac(req.id), sandbox: netns('x') })
    assert.deepEqual(r.gateways, { v4: '10.1.0.1' })
    assert.deepEqual(r.routes, [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }])
    assert.equal(r.network.id, NET)
    const stored = await storedEndpoint(t, req.id)
    assert.deepEqual(r.endpoint, stored)
    assert.equal(stored?.sandbox, netns('x'))
    assert.equal(stored?.sandboxIfName, 'eth0')
    assert.deepEqual(await interfacesIn(t, netns('x')), [{ endpointId: req.id, ifName: 'eth0' }])
  })

  it('gives the same result when called again with the same placement', async () => {
    const req = cniRequest('ctr1')
    const t = await setup([req])
    const first = await right(t.run(join(req.id, plugin('x'))))
    const second = await right(t.run(join(req.id, plugin('x'))))
    assert.deepEqual(second, first)
    assert.equal((await interfacesIn(t, netns('x'))).length, 1)
    assert.equal(t.dataplane.state.linksOf(req.id).length, 2)
  })

  it('refuses another sandbox, or another name in the same one', async () => {
    const req = cniRequest('ctr1')
    const t = await setup([req])
    await right(t.run(join(req.id, plugin('x'))))
    assert.equal((await left(t.run(join(req.id, plugin('y')))))._tag, 'AlreadyExists')
    assert.equal((await left(t.run(join(req.id, plugin('x', 'eth1')))))._tag, 'AlreadyExists')
    assert.equal(t.dataplane.state.linkIn(netns('x'), ifn('eth0'))?.endpointId, req.id)
    assert.equal(t.dataplane.state.linkIn(netns('y'), ifn('eth0')), undefined)
  })

  it('RuntimeMoves: leaves the link in the host for the runtime and records the sandbox key it was given, in the endpoint only', async () => {
    const t = await setup([dockerRequest('ep1')])
    const id = 'ep1' as EndpointId
    const key = netns('docker-abc')
    const r = await right(t.run(join(id, runtime, { sandboxKey: key })))
    const e = await storedEndpoint(t, id)
    assert.deepEqual(r.placed, { ifName: e?.peerIfName, mac: fakeMac('ep1') })
    assert.equal(t.dataplane.state.link(e!.peerIfName)?.location._tag, 'Host')
    assert.equal(e?.sandbox, key)
    assert.equal(e?.sandboxIfName, undefined)
    assert.deepEqual(r.gateways, { v4: '10.1.0.1' })
  })

  it('RuntimeMoves without a sandbox key records no sandbox', async () => {
    const t = await setup([dockerRequest('ep1')])
    await right(t.run(join('ep1' as EndpointId, runtime)))
    assert.equal((await storedEndpoint(t, 'ep1' as EndpointId))?.sandbox, undefined)
  })

  it('gives no gateway on an internal network', async () => {
    const req = cniRequest('ctr1')
    const t = await setup([req], spec({ internal: true }))
    const r = await right(t.run(join(req.id, plugin('x'))))
    assert.deepEqual(r.gateways, {})
    assert.deepEqual(r.routes, [])
  })

  it('publishes the endpoint’s port mappings', async () => {
    const portMappings = [{ protocol: 'tcp' as const, containerPort: 80, hostPort: 8080 }]
    const req = { ...cniRequest('ctr1'), portMappings }
    const t = await setup([req])
    assert.deepEqual(t.dataplane.state.published(req.id), [])
    await right(t.run(join(req.id, plugin('x'))))
    assert.deepEqual(t.dataplane.state.published(req.id), portMappings)
  })

  it('fails with NotFound for an endpoint that does not exist', async () => {
    const t = await setup([])
    assert.deepEqual(await left(t.run(join('nope' as EndpointId, plugin('x')))), {
      _tag: 'NotFound',
      kind: 'endpoint',
      id: 'nope'
    })
  })
})

describe('leave', () => {
  it('clears the sandbox from the endpoint, and the sandbox holds the endpoints that stay', async () => {
    const a = cniRequest('ctr1', 'eth0')
    const b = cniRequest('ctr1', 'eth1')
    const t = await setup([a, b])
    await right(t.run(join(a.id, plugin('x', 'eth0'))))
    await right(t.run(join(b.id, plugin('x', 'eth1'))))
    assert.equal((await interfacesIn(t, netns('x'))).length, 2)

    await right(t.run(leave(a.id)))
    const ea = await storedEndpoint(t, a.id)
    assert.equal(ea?.sandbox, undefined)
    assert.equal(ea?.sandboxIfName, undefined)
    assert.deepEqual(await interfacesIn(t, netns('x')), [{ endpointId: b.id, ifName: 'eth1' }])

    await right(t.run(leave(b.id)))
    assert.deepEqual(await interfacesIn(t, netns('x')), [])
    assert.equal((await storedEndpoint(t, b.id))?.sandbox, undefined)
  })

  it('touches no link: the interface stays where it is until deleteEndpoint', async () => {
    const a = cniRequest('ctr1')
    const t = await setup([a])
    await right(t.run(join(a.id, plugin('x'))))
    const before = t.dataplane.probe.calls.length
    await right(t.run(leave(a.id)))
    assert.equal(t.dataplane.probe.calls.length, before)
    assert.equal(t.dataplane.state.linkIn(netns('x'), ifn('eth0'))?.endpointId, a.id)
  })

  it('succeeds twice, for an endpoint never joined, and for one that does not exist', async () => {
    const a = cniRequest('ctr1')
    const t = await setup([a])
    await right(t.run(join(a.id, plugin('x'))))
    await right(t.run(leave(a.id)))
    await right(t.run(leave(a.id)))
    await right(t.run(leave(cniRequest('ctr2').id)))
    const b = dockerRequest('ep2')
    await right(t.run(createEndpoint(NET, b)))
    await right(t.run(leave(b.id)))
    assert.equal((await storedEndpoint(t, b.id))?.id, 'ep2')
  })

  it('lets the endpoint join another sandbox afterwards', async () => {
    const a = cniRequest('ctr1')
    const t = await setup([a])
    await right(t.run(join(a.id, plugin('x'))))
    await right(t.run(leave(a.id)))
    await right(t.run(join(a.id, plugin('y'))))
    assert.equal(t.dataplane.state.linkIn(netns('y'), ifn('eth0'))?.endpointId, a.id)
    assert.deepEqual(await interfacesIn(t, netns('y')), [{ endpointId: a.id, ifName: 'eth0' }])
  })
})
