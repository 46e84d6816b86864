/**
 * The VNIC dataplane through the core's flows (in-memory store, built-in IPAM): an endpoint adopts
 * the VNIC registered for its address in its network's address space, keeps the VNIC's names and
 * MAC, and gives it back, still registered, when it is deleted. No host command runs.
 */
import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import {
  builtinControlPlane,
  createEndpoint,
  deleteEndpoint,
  deleteNetwork,
  describe as describeError,
  ensureNetwork,
  gc,
  join,
  leave,
  makeIpam,
  type AddressSpace,
  type EndpointId,
  type IfName,
  type IpAddress,
  type MacAddress,
  type NetworkId,
  type SandboxKey,
  type Subnet
} from '@isthmus/core'
import { left, right, testEnv } from '@isthmus/core/testing'
import { memoryVnicRegistry, vnicDataplane, type VnicRegistry } from '../src/index.js'

const SUBNET = '10.243.1.0/24' as Subnet
const TA = 'tenant-a' as AddressSpace
const TB = 'tenant-b' as AddressSpace

const vnic = (n: string, address: string, space: AddressSpace, mac: string, bridge = `br-${space}`) => ({
  hostIfName: `svn${n}`,
  peerIfName: `svp${n}`,
  address,
  mac,
  addressSpace: space,
  bridge
})

const setup = async () => {
  const registry = memoryVnicRegistry()
  const t0 = testEnv()
  const ipam = makeIpam({ store: t0.env.store, clock: t0.env.clock })
  const t = testEnv({
    env: {
      store: t0.env.store,
      dataplane: vnicDataplane(registry),
      controlPlane: builtinControlPlane(ipam, t0.env.store)
    }
  })
  for (const [space, net] of [
    [TA, 'net-a'],
    [TB, 'net-b']
  ] as const) {
    await right(
      t.run(
        ensureNetwork({
          id: net as NetworkId,
          name: net,
          addressSpace: space,
          subnets: [{ family: 4, subnet: SUBNET }],
          managedAddresses: true,
          internal: false,
          ipMasquerade: false,
          bridge: `br-${space}` as IfName,
          options: {}
        })
      )
    )
  }
  return { t, registry }
}

const dockerEndpoint = (id: string, address: string, mac?: string) => ({
  id: id as EndpointId,
  owner: { kind: 'docker' as const, endpointId: id as EndpointId },
  addresses: [{ _tag: 'Static' as const, address: address as IpAddress }],
  ...(mac === undefined ? {} : { mac: mac as MacAddress })
})

const registered = async (registry: VnicRegistry) =>
  (await right(registry.list())).map((v) => `${v.peerIfName}:${v.endpointId ?? '-'}`).sort()

describe('memoryVnicRegistry', () => {
  it('registers a VNIC once, decodes what it is given, and refuses a clash by name or by address in a space', async () => {
    const r = memoryVnicRegistry()
    const a = await right(r.register(vnic('1', '10.243.1.2', TA, '02:00:00:00:01:02')))
    assert.deepEqual(await right(r.register(vnic('1', '10.243.1.2', TA, '02:00:00:00:01:02'))), a, 'same again: no-op')
    // the same address in another space is another tenant's VNIC
    await right(r.register(vnic('2', '10.243.1.2', TB, '02:00:00:00:02:02')))
    const sameAddress = await left(r.register(vnic('3', '10.243.1.2', TA, '02:00:00:00:01:03')))
    assert.match(
      describeError(sameAddress),
      /address 10\.243\.1\.2 already exists: is the address of VNIC svp1 in address space tenant-a/
    )
    const sameName = await left(r.register(vnic('1', '10.243.1.9', TA, '02:00:00:00:01:09')))
    assert.match(describeError(sameName), /a different VNIC named svp1/)
    const bad = await left(r.register({ ...vnic('4', '10.243.1.4', TA, 'not-a-mac') }))
    assert.equal(bad._tag, 'DecodeFailure')
    assert.match(describeError(bad), /mac: expected a MAC address/)
  })

  it('refuses to unregister a VNIC an endpoint holds, and forgets an absent one quietly', async () => {
    const r = memoryVnicRegistry()
    await right(r.register(vnic('1', '10.243.1.2', TA, '02:00:00:00:01:02')))
    await right(r.claim(TA, '10.243.1.2' as IpAddress, 'ep1' as EndpointId))
    assert.match(
      describeError(await left(r.unregister('svp1' as IfName))),
      /endpoint ep1 already exists: uses VNIC svp1/
    )
    await right(r.release('ep1' as EndpointId))
    await right(r.unregister('svp1' as IfName))
    await right(r.unregister('svp1' as IfName))
    assert.deepEqual(await right(r.list()), [])
  })
})

describe('vnicDataplane', () => {
  it('says it routes no subnet on the host, so tenants may overlap across address spaces', () => {
    assert.equal(vnicDataplane(memoryVnicRegistry()).routesSubnetsOnHost, false)
  })

  it('gives each tenant the VNIC of its own space for the same address, with its names and MAC', async () => {
    const { t, registry } = await setup()
    await right(registry.register(vnic('a2', '10.243.1.2', TA, '02:00:00:00:0a:02')))
    await right(registry.register(vnic('b2', '10.243.1.2', TB, '02:00:00:00:0b:02')))

    const a = await right(t.run(createEndpoint('net-a' as NetworkId, dockerEndpoint('ep-a', '10.243.1.2'))))
    const b = await right(
      t.run(createEndpoint('net-b' as NetworkId, dockerEndpoint('ep-b', '10.243.1.2', '02:00:00:00:0b:02')))
    )
    assert.deepEqual([a.hostIfName, a.peerIfName, a.mac], ['svna2', 'svpa2', '02:00:00:00:0a:02'])
    assert.deepEqual([b.hostIfName, b.peerIfName, b.mac], ['svnb2', 'svpb2', '02:00:00:00:0b:02'])
    assert.deepEqual(await registered(registry), ['svpa2:ep-a', 'svpb2:ep-b'])

    // Docker's Join: the container side is the link Docker moves (SrcName)
    const joined = await right(
      t.run(
        join(
          'ep-a' as EndpointId,
          { _tag: 'RuntimeMoves', dstPrefix: 'eth' },
          { sandboxKey: '/var/run/docker/netns/x' as SandboxKey }
        )
      )
    )
    assert.deepEqual(joined.placed, { ifName: 'svpa2', mac: '02:00:00:00:0a:02' })
    assert.equal(joined.gateways.v4, '10.243.1.1')
  })

  it('keeps the VNIC registered through leave, deleteEndpoint and deleteNetwork; gc finds nothing of its own', async () => {
    const { t, registry } = await setup()
    await right(registry.register(vnic('a2', '10.243.1.2', TA, '02:00:00:00:0a:02')))
    await right(t.run(createEndpoint('net-a' as NetworkId, dockerEndpoint('ep-a', '10.243.1.2'))))
    await right(t.run(leave('ep-a' as EndpointId)))
    assert.deepEqual(await registered(registry), ['svpa2:ep-a'], 'Leave: the link is still in the container')
    await right(t.run(deleteEndpoint('ep-a' as EndpointId)))
    assert.deepEqual(await registered(registry), ['svpa2:-'], 'DeleteEndpoint: unbound, still registered')
    const report = await right(t.run(gc({ valid: 'keep-all-endpoints' })))
    assert.deepEqual(report.linksRemoved, [])
    // the next container of the tenant with that address gets the same VNIC
    await right(t.run(createEndpoint('net-a' as NetworkId, dockerEndpoint('ep-a2', '10.243.1.2'))))
    assert.deepEqual(await registered(registry), ['svpa2:ep-a2'])
    await right(t.run(deleteEndpoint('ep-a2' as EndpointId)))
    await right(t.run(deleteNetwork('net-a' as NetworkId)))
    assert.deepEqual(await registered(registry), ['svpa2:-'])
  })

  it('refuses an endpoint with no VNIC, another MAC, or another bridge, and leaves nothing behind', async () => {
    const { t, registry } = await setup()
    await right(registry.register(vnic('a2', '10.243.1.2', TA, '02:00:00:00:0a:02')))
    await right(registry.register(vnic('a3', '10.243.1.3', TA, '02:00:00:00:0a:03', 'br-other')))

    const none = await left(t.run(createEndpoint('net-a' as NetworkId, dockerEndpoint('ep1', '10.243.1.9'))))
    assert.equal(
      describeError(none),
      'invalid configuration: no VNIC is registered for 10.243.1.9 in address space tenant-a'
    )
    // a tenant-a VNIC is not found from tenant-b's network
    const otherSpace = await left(t.run(createEndpoint('net-b' as NetworkId, dockerEndpoint('ep2', '10.243.1.2'))))
    assert.match(describeError(otherSpace), /no VNIC is registered for 10\.243\.1\.2 in address space tenant-b/)
    const mac = await left(
      t.run(createEndpoint('net-a' as NetworkId, dockerEndpoint('ep3', '10.243.1.2', '02:00:00:00:ff:ff')))
    )
    assert.match(describeError(mac), /VNIC svpa2 of 10\.243\.1\.2 has MAC 02:00:00:00:0a:02, not 02:00:00:00:ff:ff/)
    const bridge = await left(t.run(createEndpoint('net-a' as NetworkId, dockerEndpoint('ep4', '10.243.1.3'))))
    assert.match(
      describeError(bridge),
      /VNIC svpa3 of 10\.243\.1\.3 is on bridge br-other, not on br-tenant-a of network net-a/
    )

    assert.deepEqual(await registered(registry), ['svpa2:-', 'svpa3:-'], 'no VNIC left bound')
    assert.deepEqual(await right(t.env.store.endpoints.list()), [], 'no endpoint record')
    // the addresses went back: the right VNIC and MAC now succeed
    await right(t.run(createEndpoint('net-a' as NetworkId, dockerEndpoint('ep5', '10.243.1.2', '02:00:00:00:0a:02'))))
  })

  it('leaves moving the interface to Docker: a CNI placement and published ports are refused', async () => {
    const { t, registry } = await setup()
    await right(registry.register(vnic('a2', '10.243.1.2', TA, '02:00:00:00:0a:02')))
    await right(
      t.run(
        createEndpoint('net-a' as NetworkId, {
          ...dockerEndpoint('ep-a', '10.243.1.2'),
          portMappings: [{ protocol: 'tcp', containerPort: 80, hostPort: 8080 }]
        })
      )
    )
    const cni = await left(
      t.run(
        join('ep-a' as EndpointId, {
          _tag: 'PluginMoves',
          sandbox: '/run/netns/x' as SandboxKey,
          ifName: 'eth0' as IfName
        })
      )
    )
    assert.equal(cni._tag, 'UnsupportedField')
    const ports = await left(t.run(join('ep-a' as EndpointId, { _tag: 'RuntimeMoves', dstPrefix: 'eth' })))
    assert.match(describeError(ports), /portMappings/)
  })
})
