import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import * as O from 'fp-ts/lib/Option.js'
import {
  builtinControlPlane,
  DEFAULT_LOCAL_SPACE,
  DOCKER_RUNTIME_OWNER,
  makeIpam,
  type AddressSpace,
  type Cidr,
  type Endpoint,
  type EndpointId,
  type IfName,
  type IpAddress,
  type MacAddress,
  type Network,
  type NetworkBinding,
  type NetworkId,
  type NetworkSpec,
  type Store,
  type Subnet
} from '@isthmus/core'
import { instrument, memoryStore } from '@isthmus/core/testing'
import { clock, left, right } from './helpers.js'

const SPACE = DEFAULT_LOCAL_SPACE
const ip = (s: string) => s as IpAddress

const spec = (over: Partial<NetworkSpec> = {}): NetworkSpec => ({
  id: 'net1' as NetworkId,
  name: 'net1',
  subnets: [
    { family: 4, subnet: '10.20.0.0/24' as Subnet },
    { family: 6, subnet: 'fd00:20::/64' as Subnet }
  ],
  managedAddresses: true,
  internal: false,
  ipMasquerade: true,
  options: {},
  ...over
})

const networkOf = (s: NetworkSpec, b: NetworkBinding): Network => ({
  id: s.id,
  name: s.name,
  addressSpace: b.addressSpace,
  ipv4: [...b.ipv4],
  ipv6: [...b.ipv6],
  internal: s.internal,
  ipMasquerade: s.ipMasquerade,
  options: { ...s.options },
  createdAt: clock.now().toISOString()
})

const setup = (store: Store = memoryStore()) => {
  const ipam = makeIpam({ store, clock })
  return { store, ipam, cp: builtinControlPlane(ipam, store) }
}

const endpointId = 'ep1' as EndpointId
const owner = { kind: 'docker' as const, endpointId }

const endpointOf = (network: Network, addresses: Endpoint['addresses']): Endpoint => ({
  id: endpointId,
  networkId: network.id,
  owner,
  addresses,
  hostIfName: 'istvx' as IfName,
  peerIfName: 'istcx' as IfName,
  routes: [],
  portMappings: [],
  createdAt: clock.now().toISOString()
})

describe('builtinControlPlane: networks', () => {
  it('requests its own pools, reports them as owned, and gives them back with the network', async () => {
    const { store, cp } = setup()
    const s = spec()
    const b = await right(cp.ensureNetwork(s))
    assert.equal(b.addressSpace, SPACE)
    assert.deepEqual(b.ipv4, [
      { subnet: '10.20.0.0/24', poolId: `${SPACE}/10.20.0.0/24`, gateway: '10.20.0.1', ownedPool: true }
    ])
    assert.equal(b.ipv6[0]?.gateway, 'fd00:20::1')
    await right(cp.deleteNetwork(networkOf(s, b)))
    assert.deepEqual(await right(store.pools.list()), [])
    assert.deepEqual(await right(store.leases.list(SPACE)), [])
  })

  it('uses a pool the runtime requested without owning it, and records subnets of the runtime IPAM', async () => {
    const { store, ipam, cp } = setup()
    const docker = await right(
      ipam.requestPool({ addressSpace: 'dockerspace' as AddressSpace, family: 4, subnet: '10.21.0.0/24' as Subnet })
    )
    // no addressSpace in the spec: the runtime's pool decides it
    const s = spec({ subnets: [{ family: 4, poolId: docker.id }] })
    const b = await right(cp.ensureNetwork(s))
    assert.equal(b.addressSpace, 'dockerspace')
    assert.deepEqual(b.ipv4, [{ subnet: '10.21.0.0/24', poolId: docker.id, gateway: '10.21.0.1', ownedPool: false }])
    await right(cp.deleteNetwork(networkOf(s, b)))
    assert.equal((await right(store.pools.list())).length, 1)

    const other = await right(
      cp.ensureNetwork(
        spec({
          id: 'net2' as NetworkId,
          managedAddresses: false,
          subnets: [{ family: 4, subnet: '10.22.0.0/24' as Subnet, gateway: ip('10.22.0.254') }]
        })
      )
    )
    assert.deepEqual(other.ipv4, [{ subnet: '10.22.0.0/24', gateway: '10.22.0.254' }])
  })

  it('gives back the pools it took when a later subnet fails', async () => {
    const { store, cp } = setup()
    const e = await left(
      cp.ensureNetwork(
        spec({
          subnets: [
            { family: 4, subnet: '10.23.0.0/24' as Subnet },
            { family: 4, subnet: '10.23.0.128/25' as Subnet }
          ]
        })
      )
    )
    assert.equal(e._tag, 'PoolOverlap')
    assert.deepEqual(await right(store.pools.list()), [])
    assert.deepEqual(await right(store.leases.list(SPACE)), [])
  })
})

describe('builtinControlPlane: endpoints', () => {
  it('assigns any, static and runtime-assigned addresses, and releases its own at delete', async () => {
    const { store, ipam, cp } = setup()
    const s = spec()
    const b = await right(cp.ensureNetwork(s))
    const n = networkOf(s, b)
    // Docker RequestAddress came first, owned by the runtime until CreateEndpoint
    const v4pool = b.ipv4[0]!.poolId!
    await right(ipam.allocate(v4pool, DOCKER_RUNTIME_OWNER, { address: ip('10.20.0.77') }))
    const mac = '02:42:0a:14:00:02' as MacAddress
    const got = await right(
      cp.createEndpoint(n, {
        id: endpointId,
        owner,
        mac,
        addresses: [
          { _tag: 'Assigned', cidr: '10.20.0.77/24' as Cidr },
          { _tag: 'Any', family: 6 },
          { _tag: 'Static', address: ip('fd00:20::99') }
        ]
      })
    )
    assert.equal(got.mac, mac)
    const addresses = [...got.addresses]
    assert.deepEqual(got.addresses, [
      { cidr: '10.20.0.77/24', poolId: v4pool, gateway: '10.20.0.1', fromRuntime: true },
      { cidr: 'fd00:20::2/64', poolId: b.ipv6[0]!.poolId, gateway: 'fd00:20::1' },
      { cidr: 'fd00:20::99/64', poolId: b.ipv6[0]!.poolId, gateway: 'fd00:20::1' }
    ])
    const held = (await right(store.leases.list(SPACE))).filter((l) => l.owner.kind === 'endpoint')
    assert.deepEqual(held.map((l) => l.address).sort(), ['10.20.0.77', 'fd00:20::2', 'fd00:20::99'])
    assert.equal(held.find((l) => l.address === 'fd00:20::2')?.mac, mac)

    await right(cp.deleteEndpoint(n, endpointOf(n, addresses)))
    // the address Docker requested goes back to Docker, which releases it with ReleaseAddress
    const left = await right(store.leases.list(SPACE))
    assert.deepEqual(left.map((l) => [l.address, l.owner.kind]).sort(), [
      ['10.20.0.1', 'gateway'],
      ['10.20.0.77', 'runtime'],
      ['fd00:20::1', 'gateway']
    ])
    await right(ipam.release(SPACE, ip('10.20.0.77'), DOCKER_RUNTIME_OWNER))
    assert.deepEqual(
      (await right(store.leases.list(SPACE))).map((l) => l.owner.kind),
      ['gateway', 'gateway']
    )
    // absent succeeds
    await right(cp.deleteEndpoint(n, endpointOf(n, addresses)))
  })

  it('refuses addresses outside the network, requests it cannot serve and addresses held by others', async () => {
    const { ipam, cp } = setup()
    const s = spec({ subnets: [{ family: 4, subnet: '10.24.0.0/24' as Subnet }] })
    const n = networkOf(s, await right(cp.ensureNetwork(s)))
    const req = (a: Parameters<typeof cp.createEndpoint>[1]['addresses']) =>
      cp.createEndpoint(n, { id: endpointId, owner, addresses: a })
    assert.equal((await left(req([{ _tag: 'Static', address: ip('10.99.0.1') }])))._tag, 'InvalidConfig')
    assert.equal((await left(req([{ _tag: 'Any', family: 6 }])))._tag, 'InvalidConfig')
    await right(
      ipam.allocate(n.ipv4[0]!.poolId!, { kind: 'endpoint', id: 'other' as EndpointId }, { address: ip('10.24.0.9') })
    )
    assert.deepEqual(await left(req([{ _tag: 'Assigned', cidr: '10.24.0.9/24' as Cidr }])), {
      _tag: 'AddressInUse',
      address: '10.24.0.9',
      space: SPACE,
      owner: 'endpoint other'
    })
  })

  it('only records addresses of subnets the runtime IPAM assigns', async () => {
    const { store, cp } = setup()
    const s = spec({ managedAddresses: false, subnets: [{ family: 4, subnet: '10.25.0.0/16' as Subnet }] })
    const n = networkOf(s, await right(cp.ensureNetwork(s)))
    const got = await right(
      cp.createEndpoint(n, { id: endpointId, owner, addresses: [{ _tag: 'Assigned', cidr: '10.25.3.4/16' as Cidr }] })
    )
    assert.deepEqual(got.addresses, [{ cidr: '10.25.3.4/16' }])
    assert.deepEqual(await right(store.leases.list(n.addressSpace)), [])
  })

  it('hands a Docker address to its endpoint without fsync (lost with the machine, it is the runtime’s again), and back durably', async () => {
    const [store, probe] = instrument('store', memoryStore())
    const { ipam, cp } = setup(store)
    const s = spec()
    const n = networkOf(s, await right(cp.ensureNetwork(s)))
    await right(ipam.allocate(n.ipv4[0]!.poolId!, DOCKER_RUNTIME_OWNER, { durable: false }))
    assert.deepEqual(probe.callsOf('leases.reserve').at(-1)?.args[1], { durable: false })
    const [lease] = (await right(store.leases.list(SPACE))).filter((l) => l.owner.kind === 'runtime')
    probe.reset()
    const got = await right(
      cp.createEndpoint(n, {
        id: endpointId,
        owner,
        addresses: [{ _tag: 'Assigned', cidr: `${lease!.address}/24` as Cidr }]
      })
    )
    assert.deepEqual(
      probe.callsOf('leases.transfer').map((c) => c.args[4]),
      [{ durable: false }]
    )
    probe.reset()
    await right(cp.deleteEndpoint(n, endpointOf(n, [...got.addresses])))
    assert.deepEqual(
      probe.callsOf('leases.transfer').map((c) => c.args[4]),
      [undefined]
    )
  })

  it('rolls back the addresses it took when a later one fails (reserve fails at the 2nd call)', async () => {
    const [store, probe] = instrument('store', memoryStore())
    const { ipam, cp } = setup(store)
    const s = spec()
    const n = networkOf(s, await right(cp.ensureNetwork(s)))
    await right(ipam.allocate(n.ipv4[0]!.poolId!, DOCKER_RUNTIME_OWNER, { address: ip('10.20.0.50') }))
    probe.reset()
    probe.failAt({ method: 'leases.reserve', nth: 2 })
    const e = await left(
      cp.createEndpoint(n, {
        id: endpointId,
        owner,
        addresses: [
          { _tag: 'Assigned', cidr: '10.20.0.50/24' as Cidr },
          { _tag: 'Any', family: 4 },
          { _tag: 'Any', family: 6 }
        ]
      })
    )
    assert.equal(e._tag, 'Io')
    assert.equal(probe.callsOf('leases.reserve').length, 2)
    const leases = await right(store.leases.list(SPACE))
    assert.deepEqual(
      leases.filter((l) => l.owner.kind === 'endpoint'),
      []
    )
    // the runtime's address went back to the runtime
    const back = await right(store.leases.get(SPACE, ip('10.20.0.50')))
    assert.ok(O.isSome(back) && back.value.owner.kind === 'runtime')
    // the address the failed call took (round robin moved past it) is free again
    probe.reset()
    const again = await right(
      cp.createEndpoint(n, { id: endpointId, owner, addresses: [{ _tag: 'Static', address: ip('10.20.0.2') }] })
    )
    assert.equal(again.addresses[0]?.cidr, '10.20.0.2/24')
  })
})
