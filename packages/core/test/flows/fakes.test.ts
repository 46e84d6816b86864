import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import {
  hostIfName,
  peerIfName,
  type Endpoint,
  type EndpointId,
  type IpAddress,
  type MacAddress,
  type Network,
  type NetworkId,
  type Subnet
} from '@isthmus/core'
import { fakeControlPlane, fakeDataplane, fakeMac, testEnv } from '@isthmus/core/testing'
import { dockerRequest, ifn, left, netns, plugin, right, spec, subnet } from './fixtures.js'

const network = (over: Partial<Network> = {}): Network => ({
  id: 'n1' as NetworkId,
  name: 'n1',
  addressSpace: 'isthmus-local' as Network['addressSpace'],
  ipv4: [{ subnet: '10.9.0.0/24' as Subnet, gateway: '10.9.0.1' as IpAddress }],
  ipv6: [],
  internal: false,
  ipMasquerade: false,
  options: {},
  createdAt: '2024-01-01T00:00:00.000Z',
  ...over
})

const endpoint = (id: string, over: Partial<Endpoint> = {}): Endpoint => ({
  id: id as EndpointId,
  networkId: 'n1' as NetworkId,
  owner: { kind: 'docker', endpointId: id as EndpointId },
  addresses: [],
  hostIfName: hostIfName(id as EndpointId),
  peerIfName: peerIfName(id as EndpointId),
  routes: [],
  portMappings: [],
  createdAt: '2024-01-01T00:00:00.000Z',
  ...over
})

describe('fakeDataplane', () => {
  it('creates a device once and removes only the devices it created', async () => {
    const dp = fakeDataplane()
    dp.state.addDevice('opbr0')
    assert.deepEqual(await right(dp.port.ensureNetwork(network())()), { device: 'br-n1', created: true })
    assert.deepEqual(await right(dp.port.ensureNetwork(network())()), { device: 'br-n1', created: false })
    const op = network({ id: 'n2' as NetworkId, bridge: ifn('opbr0') })
    assert.deepEqual(await right(dp.port.ensureNetwork(op)()), { device: 'opbr0', created: false })
    await right(dp.port.deleteNetwork(network())())
    await right(dp.port.deleteNetwork(op)())
    await right(dp.port.deleteNetwork(op)())
    assert.deepEqual(dp.state.devices(), [{ name: 'opbr0', createdByUs: false }])
  })

  it('makes a veth pair whose sandbox end has a MAC derived from the endpoint id, or the one given', async () => {
    const dp = fakeDataplane()
    await right(dp.port.ensureNetwork(network())())
    const a = endpoint('a')
    const given = '02:00:00:00:00:aa' as MacAddress
    const b = endpoint('b', { mac: given })
    assert.deepEqual(await right(dp.port.ensureEndpoint({ endpoint: a, network: network() })()), { mac: fakeMac('a') })
    assert.deepEqual(await right(dp.port.ensureEndpoint({ endpoint: a, network: network() })()), { mac: fakeMac('a') })
    assert.deepEqual(await right(dp.port.ensureEndpoint({ endpoint: b, network: network() })()), { mac: given })
    assert.equal(dp.state.links().length, 4)
    assert.equal(dp.state.link(a.hostIfName)?.device, 'br-n1')
    assert.notEqual(fakeMac('a'), fakeMac('b'))
    assert.match(fakeMac('a'), /^02(:[0-9a-f]{2}){5}$/)
  })

  it('refuses an endpoint on a network it does not have', async () => {
    const dp = fakeDataplane()
    const e = await left(dp.port.ensureEndpoint({ endpoint: endpoint('a'), network: network() })())
    assert.equal(e._tag, 'NotFound')
  })

  it('moves the sandbox end into a sandbox, refuses a taken name, and hides it from the inventory', async () => {
    const dp = fakeDataplane()
    const n = network()
    await right(dp.port.ensureNetwork(n)())
    const a = endpoint('a', { addresses: [{ cidr: '10.9.0.2/24' as Endpoint['addresses'][0]['cidr'] }] })
    const b = endpoint('b')
    await right(dp.port.ensureEndpoint({ endpoint: a, network: n })())
    await right(dp.port.ensureEndpoint({ endpoint: b, network: n })())
    const placed = await right(
      dp.port.place({ endpoint: a, network: n }, { _tag: 'PluginMoves', sandbox: netns('x'), ifName: ifn('eth0') })()
    )
    assert.deepEqual(placed, { ifName: 'eth0', mac: fakeMac('a'), sandbox: netns('x') })
    assert.equal(dp.state.linkIn(netns('x'), ifn('eth0'))?.name, a.peerIfName)
    assert.deepEqual(dp.state.linkIn(netns('x'), ifn('eth0'))?.addresses, ['10.9.0.2/24'])
    const clash = await left(
      dp.port.place({ endpoint: b, network: n }, { _tag: 'PluginMoves', sandbox: netns('x'), ifName: ifn('eth0') })()
    )
    assert.equal(clash._tag, 'Dataplane')
    const inv = await right(dp.port.inventory()())
    assert.deepEqual([...inv.links].sort(), [a.hostIfName, b.hostIfName, b.peerIfName].sort())
    assert.deepEqual(inv.networks, ['br-n1'])
  })

  it('fails placement into a sandbox that does not exist when told which exist', async () => {
    const dp = fakeDataplane({ sandboxes: [netns('ok')] })
    const n = network()
    await right(dp.port.ensureNetwork(n)())
    await right(dp.port.ensureEndpoint({ endpoint: endpoint('a'), network: n })())
    const e = await left(dp.port.place({ endpoint: endpoint('a'), network: n }, plugin('gone'))())
    assert.equal(e._tag, 'InvalidNetns')
  })

  it('removes both ends of a pair with removeLink, lists only our prefixes, deletes absent things', async () => {
    const dp = fakeDataplane()
    dp.state.addStrayLink(ifn('istv00000000001'), ifn('istc00000000001'))
    dp.state.addStrayLink(ifn('veth1234'))
    const inv = await right(dp.port.inventory()())
    assert.deepEqual([...inv.links].sort(), ['istc00000000001', 'istv00000000001'])
    await right(dp.port.removeLink(ifn('istv00000000001'))())
    await right(dp.port.removeLink(ifn('istv00000000001'))())
    assert.deepEqual(
      dp.state.links().map((l) => l.name),
      ['veth1234']
    )
    await right(dp.port.deleteEndpoint({ endpoint: endpoint('never'), network: network() })())
    await right(dp.port.unpublishPorts({ endpoint: endpoint('never'), network: network() })())
  })

  it('leaves its state untouched when a call is made to fail', async () => {
    const dp = fakeDataplane()
    dp.probe.failAt({ method: 'ensureNetwork', nth: 1 })
    await left(dp.port.ensureNetwork(network())())
    assert.deepEqual(dp.state.networks(), [])
    await right(dp.port.ensureNetwork(network())())
    assert.equal(dp.state.networks().length, 1)
    assert.equal(dp.probe.callsOf('ensureNetwork').length, 2)
  })
})

describe('fakeControlPlane', () => {
  const setup = async () => {
    const cp = fakeControlPlane()
    const small = spec({ id: 'n1' as NetworkId, subnets: [subnet('10.9.0.0/29')] })
    const binding = await right(cp.port.ensureNetwork(small)())
    return { cp, n: network({ ipv4: [...binding.ipv4], addressSpace: binding.addressSpace }) }
  }

  it('picks a subnet when none is named and sets the gateway to the first host', async () => {
    const cp = fakeControlPlane()
    const b = await right(
      cp.port.ensureNetwork(spec({ subnets: [{ family: 4 }, { family: 6 }, subnet('10.7.0.0/24')] }))()
    )
    assert.deepEqual(
      b.ipv4.map((s) => [s.subnet, s.gateway]),
      [
        ['10.250.0.0/24', '10.250.0.1'],
        ['10.7.0.0/24', '10.7.0.1']
      ]
    )
    assert.deepEqual(
      b.ipv6.map((s) => [s.subnet, s.gateway]),
      [['fd00:250:1::/64', 'fd00:250:1::1']]
    )
    assert.ok(b.ipv4.every((s) => s.poolId !== undefined))
  })

  it('hands out the lowest free address, skipping network, gateway and broadcast, until exhausted', async () => {
    const { cp, n } = await setup()
    const got: string[] = []
    for (const id of ['a', 'b', 'c', 'd', 'e']) {
      const b = await right(cp.port.createEndpoint(n, dockerRequest(id))())
      got.push(b.addresses[0]!.cidr)
    }
    assert.deepEqual(got, ['10.9.0.2/29', '10.9.0.3/29', '10.9.0.4/29', '10.9.0.5/29', '10.9.0.6/29'])
    const e = await left(cp.port.createEndpoint(n, dockerRequest('f'))())
    assert.equal(e._tag, 'PoolExhausted')
  })

  it('takes all addresses of a request or none, and gives them back at deleteEndpoint', async () => {
    const { cp, n } = await setup()
    const taken = { addresses: [{ _tag: 'Static' as const, address: '10.9.0.4' as IpAddress }] }
    await right(cp.port.createEndpoint(n, dockerRequest('a', taken))())
    const e = await left(
      cp.port.createEndpoint(
        n,
        dockerRequest('b', {
          addresses: [
            { _tag: 'Any', family: 4 },
            { _tag: 'Static', address: '10.9.0.4' as IpAddress }
          ]
        })
      )()
    )
    assert.equal(e._tag, 'AddressInUse')
    assert.deepEqual(cp.state.heldBy('b' as EndpointId), [])
    await right(cp.port.deleteEndpoint(n, endpoint('a'))())
    await right(cp.port.deleteEndpoint(n, endpoint('a'))())
    assert.deepEqual(cp.state.held(), [])
  })
})

describe('testEnv', () => {
  it('journals the calls of every port in the order they ran', async () => {
    const t = testEnv()
    await right(t.env.store.networks.list()())
    await right(t.env.dataplane.inventory()())
    await right(t.env.controlPlane.ensureNetwork(spec())())
    assert.deepEqual(
      t.journal.calls.map((c) => `${c.port}.${c.method}`),
      ['store.networks.list', 'dataplane.inventory', 'controlPlane.ensureNetwork']
    )
  })
})
