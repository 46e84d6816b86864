/**
 * The HNS dataplane against the HNS simulator served over real HTTP (`httpHnsTransport`): every
 * port call, checked in the simulator's journal (order and arguments) and state; each call made
 * twice; deletes of what is absent; and a failure at each HNS call of a create (an HNS error, a
 * connection dropped before or after HNS acted) leaves nothing half made.
 */
import { strict as assert } from 'node:assert'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import {
  builtinControlPlane,
  createEndpoint,
  deleteEndpoint,
  Endpoint,
  ensureNetwork,
  hostIfName,
  makeIpam,
  Network,
  type EndpointId,
  type IpAddress,
  type NetworkId,
  type SandboxKey,
  type IfName,
  type Subnet
} from '@isthmus/core'
import { left, right, testEnv } from '@isthmus/core/testing'
import { uniquePrefix } from '@isthmus/testkit'
import { hnsClient, hnsDataplane, httpHnsTransport } from '../src/index.js'
import { hnsSimulatorServer, type HnsFault, type HnsSimulatorServer } from '../src/testing/index.js'

const decoded = <A>(codec: { decode: (u: unknown) => E.Either<unknown, A> }, u: unknown): A => {
  const r = codec.decode(u)
  assert.ok(E.isRight(r), `sample does not decode: ${JSON.stringify(u)}`)
  return r.right
}

const NET_NAME = 'Contrail:demo:blue:10.253.40.0/24'

const contrailNetwork = (id = 'net-hns-1'): Network =>
  decoded(Network, {
    id,
    name: 'blue',
    addressSpace: 'isthmus-local',
    ipv4: [{ subnet: '10.253.40.0/24', gateway: '10.253.40.1' }],
    ipv6: [],
    internal: false,
    ipMasquerade: false,
    options: {},
    createdAt: '2026-01-01T00:00:00.000Z',
    controller: { tenant: 'demo', network: 'blue', hostNetworkName: NET_NAME }
  })

const plainNetwork = (): Network => {
  const { controller: _c, ...rest } = contrailNetwork('net-plain')
  return rest
}

const endpointOf = (id: string, address: string, mac?: string): Endpoint =>
  decoded(Endpoint, {
    id,
    networkId: 'net-hns-1',
    owner: { kind: 'docker', endpointId: id },
    addresses: [{ cidr: `${address}/24`, gateway: '10.253.40.1' }],
    hostIfName: hostIfName(id as EndpointId),
    peerIfName: `istc${id.slice(0, 11)}`,
    routes: [{ dst: '0.0.0.0/0', gw: '10.253.40.1' }],
    portMappings: [],
    createdAt: '2026-01-01T00:00:00.000Z',
    ...(mac === undefined ? {} : { mac })
  })

const RUNTIME = { _tag: 'RuntimeMoves', dstPrefix: 'eth' } as const

const servers: HnsSimulatorServer[] = []
const start = async (socketPath?: string) => {
  const sim = await hnsSimulatorServer(socketPath === undefined ? {} : { socketPath })
  servers.push(sim)
  const transport =
    socketPath === undefined ? httpHnsTransport({ baseUrl: sim.baseUrl }) : httpHnsTransport({ socketPath })
  const hns = hnsClient(transport)
  return { sim, hns, dp: hnsDataplane({ hns, retryDelayMs: 1 }) }
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

/** The journal from `from` on, as `METHOD path`. */
const calls = (sim: HnsSimulatorServer, from = 0) => sim.journal.slice(from).map((c) => `${c.method} ${c.path}`)

/** Every object a call made (answer lost or not) was deleted later in the journal. */
const assertBalanced = (sim: HnsSimulatorServer, from: number, label: string) => {
  const entries = sim.journal.slice(from)
  entries.forEach((c, i) => {
    if (c.created === undefined) return
    const kind = c.path === '/networks/' ? 'networks' : 'endpoints'
    const deleted = entries
      .slice(i + 1)
      .some((d) => d.method === 'DELETE' && d.path === `/${kind}/${c.created}` && d.outcome === 'ok')
    assert.ok(deleted, `${label}: ${kind.slice(0, -1)} ${c.created} was made and not removed`)
  })
}

describe('hnsDataplane: networks', () => {
  it('makes the Contrail network as a transparent HNS network by its controller name, once', async () => {
    const { sim, dp } = await start()
    const network = contrailNetwork()
    const made = await right(dp.ensureNetwork(network))
    assert.equal(made.created, true)
    assert.deepEqual(calls(sim), ['GET /networks/', 'POST /networks/'])
    assert.deepEqual(JSON.parse(sim.journal[1]!.request), {
      Name: NET_NAME,
      Type: 'transparent',
      Subnets: [{ AddressPrefix: '10.253.40.0/24', GatewayAddress: '10.253.40.1' }]
    })
    assert.equal(made.device, sim.networks()[0]!.ID, 'the device is the HNS network ID')

    const again = await right(dp.ensureNetwork(network))
    assert.deepEqual(again, { device: made.device, created: false })
    assert.deepEqual(calls(sim, 2), ['GET /networks/'], 'found by name: no second network')
    assert.equal(sim.networks().length, 1)
  })

  it('names a network without a controller name isthmus:<network id>', async () => {
    const { sim, dp } = await start()
    await right(dp.ensureNetwork(plainNetwork()))
    assert.deepEqual(
      sim.networks().map((n) => n.Name),
      ['isthmus:net-plain']
    )
  })

  it('refuses a network without an IPv4 subnet with a sentence, before calling HNS', async () => {
    const { sim, dp } = await start()
    const e = await left(dp.ensureNetwork({ ...contrailNetwork(), ipv4: [] }))
    assert.equal(e._tag, 'InvalidConfig')
    assert.match(JSON.stringify(e), /no IPv4 subnet.*--subnet/)
    assert.equal(sim.journal.length, 0)
  })

  it('retries HNS’s transient Unspecified error, and never leaves two networks of one name', async () => {
    const { sim, dp } = await start()
    sim.fail({ method: 'POST', path: '/networks/', times: 2, fault: { error: 'Unspecified error' } })
    await right(dp.ensureNetwork(contrailNetwork()))
    assert.equal(calls(sim).filter((c) => c === 'POST /networks/').length, 3)
    assert.equal(sim.networks().length, 1)
  })

  it('deletes the network by name, twice, and a network HNS never had', async () => {
    const { sim, dp } = await start()
    const network = contrailNetwork()
    const { device } = await right(dp.ensureNetwork(network))
    await right(dp.deleteNetwork(network))
    assert.deepEqual(calls(sim, 2), ['GET /networks/', `DELETE /networks/${device}`])
    await right(dp.deleteNetwork(network))
    await right(dp.deleteNetwork(plainNetwork()))
    assert.deepEqual(sim.networks(), [])
  })
})

describe('hnsDataplane: endpoints', () => {
  it('makes the HNS endpoint named by the endpoint id with its IP, prefix, gateway and MAC on the network', async () => {
    const { sim, dp } = await start()
    const network = contrailNetwork()
    const { device } = await right(dp.ensureNetwork(network))
    const from = sim.journal.length
    const ep = endpointOf('ep-hns-a', '10.253.40.3', '02:ab:cd:ef:01:23')
    const ensured = await right(dp.ensureEndpoint({ endpoint: ep, network }))
    assert.deepEqual(calls(sim, from), ['GET /networks/', 'GET /endpoints/', 'POST /endpoints/'])
    assert.deepEqual(JSON.parse(sim.journal[from + 2]!.request), {
      Name: 'ep-hns-a',
      VirtualNetwork: device,
      IPAddress: '10.253.40.3',
      PrefixLength: 24,
      GatewayAddress: '10.253.40.1',
      MacAddress: '02-AB-CD-EF-01-23'
    })
    const [hnsEp] = sim.endpoints()
    assert.equal(hnsEp?.VirtualNetworkName, NET_NAME, 'attached to the Contrail network')
    assert.deepEqual(ensured, { mac: '02:ab:cd:ef:01:23', hostEndpointId: hnsEp.ID })

    const again = await right(dp.ensureEndpoint({ endpoint: ep, network }))
    assert.deepEqual(again, ensured, 'the existing one is adopted')
    assert.equal(sim.endpoints().length, 1)
    assert.equal(calls(sim).filter((c) => c === 'POST /endpoints/').length, 1)
  })

  it('gives back the MAC HNS assigned when the endpoint has none', async () => {
    const { sim, dp } = await start()
    const network = contrailNetwork()
    await right(dp.ensureNetwork(network))
    const ensured = await right(dp.ensureEndpoint({ endpoint: endpointOf('ep-hns-b', '10.253.40.4'), network }))
    assert.equal(ensured.mac, sim.endpoints()[0]!.MacAddress!.toLowerCase().replace(/-/g, ':'))
    assert.match(ensured.mac, /^00:15:5d:/)
  })

  it('replaces an endpoint of the same name left with another address', async () => {
    const { sim, dp } = await start()
    const network = contrailNetwork()
    await right(dp.ensureNetwork(network))
    const old = await right(dp.ensureEndpoint({ endpoint: endpointOf('ep-hns-c', '10.253.40.5'), network }))
    const now = await right(dp.ensureEndpoint({ endpoint: endpointOf('ep-hns-c', '10.253.40.6'), network }))
    assert.notEqual(now.hostEndpointId, old.hostEndpointId)
    assert.deepEqual(
      sim.endpoints().map((e) => e.IPAddress),
      ['10.253.40.6']
    )
  })

  it('says what to do when the network’s HNS network is gone', async () => {
    const { sim, dp } = await start()
    const e = await left(
      dp.ensureEndpoint({ endpoint: endpointOf('ep-hns-d', '10.253.40.7'), network: contrailNetwork() })
    )
    assert.equal(e._tag, 'NotFound')
    assert.match(JSON.stringify(e), /docker network rm/)
    assert.deepEqual(calls(sim), ['GET /networks/'])
  })

  it('place: Docker attaches the endpoint itself, so place checks it and names the container side', async () => {
    const { dp } = await start()
    const network = contrailNetwork()
    await right(dp.ensureNetwork(network))
    const ep = endpointOf('ep-hns-e', '10.253.40.8', '02:00:00:00:00:08')
    await right(dp.ensureEndpoint({ endpoint: ep, network }))
    const placed = await right(dp.place({ endpoint: ep, network }, RUNTIME))
    assert.deepEqual(placed, { ifName: ep.peerIfName, mac: '02:00:00:00:00:08' })
    const cni = await left(
      dp.place(
        { endpoint: ep, network },
        { _tag: 'PluginMoves', sandbox: '/var/run/netns/x' as SandboxKey, ifName: 'eth0' as IfName }
      )
    )
    assert.equal(cni._tag, 'UnsupportedField')
    await right(dp.deleteEndpoint({ endpoint: ep, network }))
    const gone = await left(dp.place({ endpoint: ep, network }, RUNTIME))
    assert.equal(gone._tag, 'NotFound')
  })

  it('deletes the endpoint twice, and one HNS never had, and refuses published ports', async () => {
    const { sim, dp } = await start()
    const network = contrailNetwork()
    await right(dp.ensureNetwork(network))
    const ep = endpointOf('ep-hns-f', '10.253.40.9')
    const { hostEndpointId } = await right(dp.ensureEndpoint({ endpoint: ep, network }))
    const from = sim.journal.length
    await right(dp.deleteEndpoint({ endpoint: { ...ep, hostEndpointId: hostEndpointId! }, network }))
    assert.deepEqual(calls(sim, from), ['GET /endpoints/', `DELETE /endpoints/${hostEndpointId}`])
    await right(dp.deleteEndpoint({ endpoint: ep, network }))
    await right(dp.deleteEndpoint({ endpoint: endpointOf('ep-never', '10.253.40.10'), network: plainNetwork() }))
    assert.deepEqual(sim.endpoints(), [])

    await right(dp.publishPorts({ endpoint: ep, network }, []))
    const ports = await left(
      dp.publishPorts({ endpoint: ep, network }, [{ protocol: 'tcp', containerPort: 80, hostPort: 8080 }])
    )
    assert.equal(ports._tag, 'UnsupportedField')
    await right(dp.unpublishPorts({ endpoint: ep, network }))
  })
})

describe('hnsDataplane: inventory and gc', () => {
  it('lists its networks and endpoints by name, not others, and removes an endpoint by its link name', async () => {
    const { sim, hns, dp } = await start()
    const network = contrailNetwork()
    await right(dp.ensureNetwork(network))
    await right(dp.ensureEndpoint({ endpoint: endpointOf('ep-hns-g', '10.253.40.11'), network }))
    // someone else's network and endpoint on the same host
    const nat = await right(
      hns.createNetwork({ Name: 'nat', Type: 'nat', Subnets: [{ AddressPrefix: '172.30.0.0/20' }] })
    )
    await right(hns.createEndpoint({ Name: 'theirs', VirtualNetwork: nat.ID, IPAddress: '172.30.0.5' }))

    const link = hostIfName('ep-hns-g' as EndpointId)
    const inv = await right(dp.inventory())
    assert.deepEqual(inv, { links: [link], endpoints: { [link]: 'ep-hns-g' }, networks: [NET_NAME] })
    assert.deepEqual(await right(dp.inventory([plainNetwork()])), { links: [], endpoints: {}, networks: [] })
    assert.deepEqual((await right(dp.inventory([network]))).links, [link])

    await right(dp.removeLink(link))
    await right(dp.removeLink(link))
    await right(dp.removeLink(hostIfName('theirs' as EndpointId)))
    assert.deepEqual(
      sim.endpoints().map((e) => e.Name),
      ['theirs']
    )
  })
})

describe('hnsDataplane: a failure at each HNS call leaves nothing half made', () => {
  const FAULTS: ReadonlyArray<HnsFault> = [
    { error: 'The parameter is incorrect. ' },
    { drop: 'before' },
    { drop: 'after' }
  ]

  it('ensureNetwork', async () => {
    const clean = await start()
    await right(clean.dp.ensureNetwork(contrailNetwork()))
    const n = clean.sim.journal.length
    let lostAnswers = 0
    for (let i = 1; i <= n; i++) {
      for (const fault of FAULTS) {
        const label = `call ${i} (${calls(clean.sim)[i - 1]}) ${JSON.stringify(fault)}`
        const { sim, dp } = await start()
        sim.fail({ nth: i, fault })
        const e = await left(dp.ensureNetwork(contrailNetwork()))
        assert.ok(['Io', 'NotFound', 'Transient'].includes(e._tag), `${label}: ${e._tag}`)
        assert.deepEqual(sim.networks(), [], label)
        assertBalanced(sim, 0, label)
        lostAnswers += sim.journal.filter((c) => c.created !== undefined && c.outcome === 'dropped').length
      }
    }
    assert.equal(lostAnswers, 1, 'the create whose answer was lost was made, then removed')
  })

  it('ensureEndpoint', async () => {
    const ep = endpointOf('ep-hns-h', '10.253.40.12', '02:00:00:00:00:12')
    const clean = await start()
    await right(clean.dp.ensureNetwork(contrailNetwork()))
    const from = clean.sim.journal.length
    await right(clean.dp.ensureEndpoint({ endpoint: ep, network: contrailNetwork() }))
    const n = clean.sim.journal.length - from
    assert.equal(n, 3)
    let lostAnswers = 0
    for (let i = 1; i <= n; i++) {
      for (const fault of FAULTS) {
        const label = `call ${i} (${calls(clean.sim, from)[i - 1]}) ${JSON.stringify(fault)}`
        const { sim, dp } = await start()
        await right(dp.ensureNetwork(contrailNetwork()))
        const mark = sim.journal.length
        sim.fail({ nth: i, fault })
        const e = await left(dp.ensureEndpoint({ endpoint: ep, network: contrailNetwork() }))
        assert.ok(['Io', 'NotFound', 'Transient'].includes(e._tag), `${label}: ${e._tag}`)
        assert.deepEqual(sim.endpoints(), [], label)
        assert.equal(sim.networks().length, 1, label)
        assertBalanced(sim, mark, label)
        lostAnswers += sim.journal.filter((c) => c.created !== undefined && c.outcome === 'dropped').length
        // and the next attempt succeeds
        await right(dp.ensureEndpoint({ endpoint: ep, network: contrailNetwork() }))
        assert.equal(sim.endpoints().length, 1, label)
      }
    }
    assert.equal(lostAnswers, 1, 'the create whose answer was lost was made, then removed')
  })
})

describe('httpHnsTransport over a unix socket', () => {
  const dirs: string[] = []
  after(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
  })

  it('speaks the same HNS calls', async () => {
    const dir = await mkdtemp(join(tmpdir(), `${uniquePrefix('ist-hns')}-`))
    dirs.push(dir)
    const { sim, dp } = await start(join(dir, 'hns.sock'))
    await right(dp.ensureNetwork(contrailNetwork()))
    assert.deepEqual(calls(sim), ['GET /networks/', 'POST /networks/'])
  })
})

describe('hnsDataplane through the core flows', () => {
  it('keeps the HNS endpoint ID in the endpoint record (hostEndpointId), and the teardown removes it', async () => {
    const { sim, dp } = await start()
    const t0 = testEnv()
    const ipam = makeIpam({ store: t0.env.store, clock: t0.env.clock })
    const t = testEnv({
      env: { store: t0.env.store, dataplane: dp, controlPlane: builtinControlPlane(ipam, t0.env.store) }
    })
    await right(
      t.run(
        ensureNetwork({
          id: 'net-flow' as NetworkId,
          name: 'net-flow',
          addressSpace: 'isthmus-local' as never,
          subnets: [{ family: 4, subnet: '10.253.41.0/24' as Subnet }],
          managedAddresses: true,
          internal: false,
          ipMasquerade: false,
          options: {}
        })
      )
    )
    assert.deepEqual(
      sim.networks().map((n) => n.Name),
      ['isthmus:net-flow']
    )
    const ep = await right(
      t.run(
        createEndpoint('net-flow' as NetworkId, {
          id: 'ep-flow-1' as EndpointId,
          owner: { kind: 'docker', endpointId: 'ep-flow-1' as EndpointId },
          addresses: [{ _tag: 'Static', address: '10.253.41.7' as IpAddress }]
        })
      )
    )
    const [hnsEp] = sim.endpoints()
    assert.equal(ep.hostEndpointId, hnsEp?.ID)
    assert.equal(hnsEp?.IPAddress, '10.253.41.7')
    assert.equal(ep.mac, hnsEp.MacAddress!.toLowerCase().replace(/-/g, ':'))
    await right(t.run(deleteEndpoint('ep-flow-1' as EndpointId)))
    assert.deepEqual(sim.endpoints(), [])
  })
})
