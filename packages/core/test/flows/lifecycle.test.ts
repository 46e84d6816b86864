import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import {
  createEndpoint,
  deleteEndpoint,
  deleteNetwork,
  ensureNetwork,
  join,
  leave,
  type Cidr,
  type EndpointId,
  type IpAddress,
  type NetworkId,
  type PoolId,
  type SandboxKey,
  type Subnet
} from '@isthmus/core'
import { fakeMac, testEnv } from '@isthmus/core/testing'
import {
  assertNoTraceOf,
  cniRequest,
  dockerRequest,
  ifn,
  NET,
  netns,
  right,
  spec,
  storedEndpoints,
  storedNetwork,
  interfacesIn
} from './fixtures.js'

describe('a CNI attachment: ADD (ensureNetwork, createEndpoint, join), then DEL (leave, deleteEndpoint)', () => {
  it('ends with the container’s interface in place, and then with nothing left but the network', async () => {
    const t = testEnv()
    const ns = netns('cni-1234')
    const req = cniRequest('ctr1', 'eth0')

    // ADD
    await right(t.run(ensureNetwork(spec())))
    await right(t.run(createEndpoint(NET, req)))
    // An attachment's record need not outlive the machine, whose power loss takes its links too (Store PutOptions).
    assert.deepEqual(
      t.store.probe.callsOf('endpoints.put').map((c) => c.args[1]),
      [{ durable: false }]
    )
    const r = await right(t.run(join(req.id, { _tag: 'PluginMoves', sandbox: ns, ifName: ifn('eth0') })))
    assert.deepEqual(r.placed, { ifName: 'eth0', mac: fakeMac(req.id), sandbox: ns })
    assert.deepEqual(
      r.endpoint.addresses.map((a) => [a.cidr, a.gateway]),
      [['10.1.0.2/24', '10.1.0.1']]
    )
    const inside = t.dataplane.state.linkIn(ns, ifn('eth0'))
    assert.equal(inside?.endpointId, req.id)
    assert.deepEqual(inside?.addresses, ['10.1.0.2/24'])
    const hostEnd = t.dataplane.state.link(r.endpoint.hostIfName)
    assert.deepEqual([hostEnd?.location._tag, hostEnd?.device], ['Host', 'br-net1'])

    // ADD again (a runtime retrying) changes nothing.
    await right(t.run(ensureNetwork(spec())))
    await right(t.run(createEndpoint(NET, req)))
    assert.deepEqual(await right(t.run(join(req.id, { _tag: 'PluginMoves', sandbox: ns, ifName: ifn('eth0') }))), r)
    assert.equal(t.controlPlane.state.held().length, 1)

    // DEL, twice.
    for (let i = 0; i < 2; i++) {
      await right(t.run(leave(req.id)))
      await right(t.run(deleteEndpoint(req.id)))
    }
    await assertNoTraceOf(t, req.id)
    assert.deepEqual(t.dataplane.state.links(), [])
    assert.deepEqual(await storedEndpoints(t), [])
    assert.ok(await storedNetwork(t, NET))

    // The address is free again for the next ADD.
    const again = await right(t.run(createEndpoint(NET, cniRequest('ctr2'))))
    assert.equal(again.addresses[0]?.cidr, '10.1.0.2/24')
  })
})

describe('a Docker container: CreateNetwork … Join RuntimeMoves … Leave, DeleteEndpoint, DeleteNetwork', () => {
  it('leaves the link for dockerd to move, keeps it through Leave, and deletes it at DeleteEndpoint', async () => {
    const t = testEnv()
    const poolId = 'docker-pool-1' as PoolId
    const key = '/var/run/docker/netns/0123456789ab' as SandboxKey
    const id = 'e3f1a2' as EndpointId

    // CreateNetwork: dockerd already asked our IPAM for the pool and the gateway.
    const n = await right(
      t.run(
        ensureNetwork(
          spec({
            id: 'aade25ba' as NetworkId,
            subnets: [{ family: 4, subnet: '10.213.1.0/24' as Subnet, poolId, gateway: '10.213.1.254' as IpAddress }]
          })
        )
      )
    )
    assert.deepEqual(n.ipv4, [{ subnet: '10.213.1.0/24', poolId, gateway: '10.213.1.254' }])

    // CreateEndpoint with the address dockerd got from RequestAddress.
    const e = await right(
      t.run(
        createEndpoint(n.id, dockerRequest(id, { addresses: [{ _tag: 'Assigned', cidr: '10.213.1.5/24' as Cidr }] }))
      )
    )
    assert.deepEqual(e.addresses, [{ cidr: '10.213.1.5/24', poolId, gateway: '10.213.1.254' }])
    // Its record need not outlive the machine either (Store PutOptions).
    assert.deepEqual(
      t.store.probe.callsOf('endpoints.put').map((c) => c.args[1]),
      [{ durable: false }]
    )

    // Join: SrcName must exist in the host namespace when Join returns (dockerd moves it; docs/cnm.md).
    const r = await right(t.run(join(id, { _tag: 'RuntimeMoves', dstPrefix: 'eth' }, { sandboxKey: key })))
    assert.equal(r.placed.ifName, e.peerIfName)
    assert.equal(t.dataplane.state.link(r.placed.ifName)?.location._tag, 'Host')
    assert.deepEqual(r.gateways, { v4: '10.213.1.254' })

    // dockerd moves and renames it; at Leave it is still inside (§3.3).
    t.dataplane.state.runtimeMove(r.placed.ifName, { _tag: 'Sandbox', sandbox: key, ifName: ifn('eth0') })
    await right(t.run(leave(id)))
    assert.equal(t.dataplane.state.linkIn(key, ifn('eth0'))?.name, e.peerIfName)
    assert.deepEqual(await interfacesIn(t, key), [])

    // dockerd moves it back under its own name before DeleteEndpoint.
    t.dataplane.state.runtimeMove(r.placed.ifName, { _tag: 'Host' })
    await right(t.run(deleteEndpoint(id)))
    await assertNoTraceOf(t, id)
    assert.deepEqual(t.dataplane.state.links(), [])

    await right(t.run(deleteNetwork(n.id)))
    await right(t.run(deleteNetwork(n.id)))
    assert.deepEqual(t.dataplane.state.devices(), [])
    assert.deepEqual(t.controlPlane.state.networks(), [])
  })
})
