/**
 * The built-in control plane on cluster networks, driven through the flows as the frontends
 * drive them: Docker's order of calls (RequestPool, the gateway's RequestAddress, CreateNetwork),
 * with the cluster named by `-o` or by `--ipam-opt`, and a CNI spec that names only the cluster.
 */
import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import * as O from 'fp-ts/lib/Option.js'
import {
  builtinControlPlane,
  CLUSTER_BLOCK_OPTION,
  CLUSTER_OPTION,
  CLUSTER_VNI_OPTION,
  createEndpoint,
  DEFAULT_LOCAL_SPACE,
  deleteEndpoint,
  deleteNetwork,
  describe as describeError,
  DOCKER_RUNTIME_OWNER,
  ensureNetwork,
  makeIpam,
  type ClusterNetworkName,
  type HostName,
  type NetworkId,
  type Subnet
} from '@isthmus/core'
import { left, memoryCluster, memoryStore, right, testEnv, type MemoryCluster } from '@isthmus/core/testing'
import { cniRequest, spec, subnet } from '../flows/fixtures.js'

const SPACE = DEFAULT_LOCAL_SPACE

const hostEnv = (m: MemoryCluster, name: string, underlayMtu = 1500) => {
  const store = memoryStore()
  const ipam = makeIpam({
    store,
    clock: { now: () => new Date('2026-01-01T00:00:00Z') },
    cluster: { cluster: m.state.connect().port, host: name as HostName, settings: { underlayMtu, overhead: 50 } }
  })
  const t = testEnv({ env: { store, controlPlane: builtinControlPlane(ipam, store) } })
  return { ...t, ipam, store }
}

const blue = 'blue' as ClusterNetworkName

describe('control plane: cluster networks', () => {
  it('Docker with -o only: the pool requested first becomes a cluster pool at CreateNetwork', async () => {
    const m = memoryCluster()
    const h = hostEnv(m, 'h1')
    // RequestPool (no option), then RequestAddress of the gateway, as dockerd sends them
    const pool = await right(h.ipam.requestPool({ addressSpace: SPACE, family: 4, subnet: '10.40.0.0/16' as Subnet }))
    await right(h.ipam.allocate(pool.id, { kind: 'gateway' }))
    const net = await right(
      h.run(
        ensureNetwork(
          spec({
            id: 'dockernet' as NetworkId,
            subnets: [{ ...subnet('10.40.0.0/16'), poolId: pool.id }],
            options: { [CLUSTER_OPTION]: 'blue', [CLUSTER_BLOCK_OPTION]: '24' }
          })
        )
      )
    )
    assert.equal(net.mtu, 1450)
    assert.equal(net.options[CLUSTER_OPTION], 'blue')
    assert.equal(net.options[CLUSTER_VNI_OPTION], '4096')
    assert.equal(net.options[CLUSTER_BLOCK_OPTION], '24')
    assert.equal(net.ipv4[0]?.ownedPool, false, "Docker's pool stays Docker's to release")
    const cn = await right(m.port.networks.get(blue))
    assert.ok(O.isSome(cn))
    assert.deepEqual(
      { subnet: cn.value.subnet, gateway: cn.value.gateway, blockPrefix: cn.value.blockPrefix, mtu: cn.value.mtu },
      { subnet: '10.40.0.0/16', gateway: '10.40.0.1', blockPrefix: 24, mtu: 1450 }
    )
    // Docker's RequestAddress for a container now comes from a block of this host
    const a = await right(h.ipam.allocate(pool.id, DOCKER_RUNTIME_OWNER, { exclusive: true }))
    assert.equal(a.address, '10.40.0.2')
    assert.deepEqual(
      m.state.snapshot().blocks.map((b) => `${b.host} ${b.cidr}`),
      ['h1 10.40.0.0/24']
    )
    // ReleaseAddress, then ReleasePool after DeleteNetwork: the block goes back with the last address
    await right(h.ipam.release(SPACE, a.address, DOCKER_RUNTIME_OWNER))
    await right(h.run(deleteNetwork('dockernet' as NetworkId)))
    await right(h.ipam.releasePool(pool.id))
    assert.deepEqual(m.state.snapshot().blocks, [])
    assert.deepEqual(await right(h.store.pools.list()), [])
  })

  it('Docker with --ipam-opt: the pool is a cluster pool from RequestPool, and CreateNetwork without -o is one too', async () => {
    const m = memoryCluster()
    const h = hostEnv(m, 'h1')
    const pool = await right(
      h.ipam.requestPool({
        addressSpace: SPACE,
        family: 4,
        subnet: '10.40.0.0/16' as Subnet,
        options: { [CLUSTER_OPTION]: 'blue' }
      })
    )
    assert.equal(pool.options[CLUSTER_OPTION], 'blue')
    await right(h.ipam.allocate(pool.id, { kind: 'gateway' }))
    const net = await right(h.run(ensureNetwork(spec({ subnets: [{ ...subnet('10.40.0.0/16'), poolId: pool.id }] }))))
    assert.equal(net.options[CLUSTER_OPTION], 'blue')
    assert.equal(net.mtu, 1450)
    // moving the gateway on one host is refused: it is every host's
    const gw = await left(h.ipam.allocate(pool.id, { kind: 'gateway' }, { address: '10.40.0.9' as never }))
    assert.match(describeError(gw), /gateway of cluster network blue is 10\.40\.0\.1/)
  })

  it('a second host: a CNI-style spec naming only the cluster takes its subnet; another subnet is refused', async () => {
    const m = memoryCluster()
    const h1 = hostEnv(m, 'h1', 9000)
    const h2 = hostEnv(m, 'h2', 1500)
    await right(
      h1.run(ensureNetwork(spec({ subnets: [subnet('10.40.0.0/16')], options: { [CLUSTER_OPTION]: 'blue' } })))
    )
    const net = await right(h2.run(ensureNetwork(spec({ subnets: [], options: { [CLUSTER_OPTION]: 'blue' } }))))
    assert.equal(net.ipv4[0]?.subnet, '10.40.0.0/16')
    assert.equal(net.ipv4[0]?.gateway, '10.40.0.1')
    assert.equal(net.ipv4[0]?.ownedPool, true)
    assert.equal(net.mtu, 8950, "the cluster network's MTU, as its first host defined it")
    // an ADD after ADD finds the stored network
    assert.deepEqual(
      await right(h2.run(ensureNetwork(spec({ subnets: [], options: { [CLUSTER_OPTION]: 'blue' } })))),
      net
    )
    const ep = await right(h2.run(createEndpoint(net.id, cniRequest('c1'))))
    assert.equal(ep.addresses[0]?.cidr, '10.40.0.2/16')
    assert.equal(ep.addresses[0]?.gateway, '10.40.0.1')

    const other = hostEnv(m, 'h3')
    const e = await left(
      other.run(ensureNetwork(spec({ subnets: [subnet('10.50.0.0/16')], options: { [CLUSTER_OPTION]: 'blue' } })))
    )
    assert.equal(e._tag, 'InvalidConfig')
    assert.match(describeError(e), /cluster network blue has subnet 10\.40\.0\.0\/16, not 10\.50\.0\.0\/16/)
    assert.deepEqual(await right(other.store.pools.list()), [], 'nothing left of the refused network')
    const two = await left(
      other.run(
        ensureNetwork(
          spec({ subnets: [subnet('10.40.0.0/16'), subnet('fd00:40::/64')], options: { [CLUSTER_OPTION]: 'blue' } })
        )
      )
    )
    assert.match(describeError(two), /has one subnet/)

    // the endpoint's address goes back, and with it the block; the CNI network's pool stays
    await right(h2.run(deleteEndpoint(ep.id)))
    assert.deepEqual(
      m.state.snapshot().blocks.map((b) => b.host),
      []
    )
  })

  it('an IPv6 subnet is refused: the overlay routes IPv4 blocks only', async () => {
    const h = hostEnv(memoryCluster(), 'h1')
    const e = await left(
      h.run(
        ensureNetwork(
          spec({ id: 'v6' as NetworkId, subnets: [subnet('fd00:40::/64')], options: { [CLUSTER_OPTION]: 'six' } })
        )
      )
    )
    assert.match(
      describeError(e),
      /cluster network six: fd00:40::\/64 is an IPv6 subnet; cluster networks are IPv4 only/
    )
    assert.equal(O.isNone(await right(h.store.networks.get('v6' as NetworkId))), true)
  })

  it('without a cluster store, a cluster network is refused with a sentence saying so', async () => {
    const store = memoryStore()
    const ipam = makeIpam({ store, clock: { now: () => new Date() } })
    const t = testEnv({ env: { store, controlPlane: builtinControlPlane(ipam, store) } })
    const e = await left(t.run(ensureNetwork(spec({ options: { [CLUSTER_OPTION]: 'blue' } }))))
    assert.match(describeError(e), /without a cluster store/)
    assert.deepEqual(await right(store.pools.list()), [])
  })
})
