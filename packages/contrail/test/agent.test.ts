/** The vRouter agent client against the agent simulator: add, delete, errors, reconcile. */
import { strict as assert } from 'node:assert'
import { randomUUID } from 'node:crypto'
import { after, afterEach, before, describe, it } from 'node:test'
import {
  describe as describeError,
  hostIfName,
  peerIfName,
  type Cidr,
  type Endpoint,
  type EndpointId,
  type MacAddress,
  type Network,
  type NetworkId
} from '@isthmus/core'
import { memoryStore } from '@isthmus/core/testing'
import { vrouterAgent } from '@isthmus/contrail'
import { startAgentSimulator, type AgentSimulator } from '@isthmus/contrail/testing'
import { closedPort, FAST, left, right } from './support/helpers.js'

const network: Network = {
  id: 'agent-net' as NetworkId,
  name: 'agent-net',
  addressSpace: 'isthmus-local' as never,
  ipv4: [],
  ipv6: [],
  internal: false,
  ipMasquerade: false,
  options: {},
  createdAt: '2024-01-01T00:00:00.000Z',
  controller: {
    tenant: 'demo',
    network: 'blue',
    projectId: randomUUID(),
    networkId: randomUUID(),
    subnetId: randomUUID(),
    hostNetworkName: 'x'
  }
}
const endpoint = (name: string, over: Partial<Endpoint> = {}): Endpoint => ({
  id: name as EndpointId,
  networkId: network.id,
  owner: { kind: 'docker', endpointId: name as EndpointId },
  addresses: [{ cidr: '10.253.20.5/24' as Cidr }],
  hostIfName: hostIfName(name as EndpointId),
  peerIfName: peerIfName(name as EndpointId),
  routes: [],
  portMappings: [],
  createdAt: '2024-01-01T00:00:00.000Z',
  mac: '02:aa:bb:cc:dd:ee' as MacAddress,
  controller: {
    vmId: randomUUID(),
    interfaceId: randomUUID(),
    instanceIpId: randomUUID(),
    projectId: network.controller!.projectId!
  },
  ...over
})

describe('the vRouter agent client', () => {
  let sim: AgentSimulator
  before(async () => {
    sim = await startAgentSimulator()
  })
  after(async () => sim.close())
  afterEach(() => sim.clearFaults())

  it('POST /port carries the full body, kebab-case, with the project uuid; DELETE /port/<vmi> removes it', async () => {
    const a = vrouterAgent({ url: sim.url, policy: FAST })
    const ep = endpoint('ep-a1')
    await right(a.addPort(network, ep)())
    const body = sim.calls('POST', '/port').at(-1)!.body as Record<string, unknown>
    assert.deepEqual(Object.keys(body).sort(), [
      'display-name',
      'id',
      'instance-id',
      'ip-address',
      'ip6-address',
      'mac-address',
      'rx-vlan-id',
      'system-name',
      'time',
      'tx-vlan-id',
      'type',
      'vm-project-id',
      'vn-id'
    ])
    assert.equal(body['vm-project-id'], network.controller!.projectId)
    assert.equal(body['vn-id'], network.controller!.networkId)
    assert.ok(sim.has(ep.controller!.interfaceId!))
    await right(a.deletePort(network, ep)())
    assert.ok(!sim.has(ep.controller!.interfaceId!))
    await right(a.deletePort(network, ep)()) // absent: still success
  })

  it('an endpoint with an HNS endpoint is named as the Windows driver named it: display-name its HNS id, system-name its HNS name', async () => {
    const a = vrouterAgent({ url: sim.url, policy: FAST })
    const hnsId = randomUUID().toUpperCase()
    const ep = endpoint('ep-win1', { hostEndpointId: hnsId })
    await right(a.addPort(network, ep)())
    const body = sim.calls('POST', '/port').at(-1)!.body as Record<string, unknown>
    assert.equal(body['id'], ep.controller!.interfaceId)
    assert.equal(body['display-name'], hnsId)
    assert.equal(body['system-name'], 'ep-win1')
    await right(a.deletePort(network, ep)())
    // Linux: the endpoint id and the host veth, as before
    const linux = endpoint('ep-lin1')
    await right(a.addPort(network, linux)())
    const plain = sim.calls('POST', '/port').at(-1)!.body as Record<string, unknown>
    assert.equal(plain['display-name'], 'ep-lin1')
    assert.equal(plain['system-name'], linux.hostIfName)
    await right(a.deletePort(network, linux)())
  })

  it('an endpoint on a network without a controller is nothing to tell', async () => {
    const a = vrouterAgent({ url: sim.url, policy: FAST })
    const before = sim.journal.length
    const { controller: _c, ...plain } = network
    await right(a.addPort(plain as Network, endpoint('ep-plain'))())
    assert.equal(sim.journal.length, before)
  })

  it('a refusal is an Agent error in one sentence and is not retried', async () => {
    const a = vrouterAgent({ url: sim.url, policy: FAST })
    const before = sim.calls('POST', '/port').length
    const ep = endpoint('ep-bad', { mac: '02aabbccddee' as MacAddress })
    const e = await left(a.addPort(network, ep)())
    assert.equal(sim.calls('POST', '/port').length - before, 1)
    assert.equal(
      describeError(e),
      `vRouter agent refused add port ${ep.controller!.interfaceId} (HTTP 500): {"error":"{ Invalid data for <mac-address> }"}`
    )
  })

  it('a nil project is refused by the agent (as every agent version does)', async () => {
    const a = vrouterAgent({ url: sim.url, policy: FAST })
    const ep = endpoint('ep-nil', {
      controller: { vmId: randomUUID(), interfaceId: randomUUID(), projectId: '00000000-0000-0000-0000-000000000000' }
    })
    const e = await left(a.addPort(network, ep)())
    assert.match(describeError(e), /Invalid data for <vm-project-id>/)
  })

  it('an endpoint without controller identity cannot be told, and says so', async () => {
    const a = vrouterAgent({ url: sim.url, policy: FAST })
    const { controller: _c, ...ep } = endpoint('ep-noid')
    const e = await left(a.addPort(network, ep as Endpoint)())
    assert.equal(
      describeError(e),
      'invalid configuration: endpoint ep-noid has no Contrail interface, VM, project and network to give the vRouter agent'
    )
  })

  it('userinfo in the agent URL is sent as Basic authorization and blanked from a refusal that echoes it', async () => {
    const pw = 'AgentPw-4c1d'
    const url = sim.url.replace('http://', `http://agent:${pw}@`)
    const a = vrouterAgent({ url, policy: FAST })
    const ep = endpoint('ep-basic')
    await right(a.addPort(network, ep)())
    assert.equal(
      sim.calls('POST', '/port').at(-1)!.headers['authorization'],
      `Basic ${Buffer.from(`agent:${pw}`).toString('base64')}`
    )
    sim.inject({ method: 'POST', path: '/port', nth: 1, status: 500, body: `${'p'.repeat(295)}${pw} (from ${url})` })
    const text = describeError(await left(a.addPort(network, endpoint('ep-basic2'))()))
    assert.match(text, /HTTP 500\): p{20}/)
    assert.ok(!text.includes(pw.slice(0, 4)), text)
    await right(a.deletePort(network, ep)())
  })

  it('an agent down is retried, then a Transient error', async () => {
    const port = await closedPort()
    const a = vrouterAgent({ url: `http://127.0.0.1:${port}`, policy: FAST })
    const e = await left(a.addPort(network, endpoint('ep-down'))())
    assert.equal(e._tag, 'Transient')
    assert.match(
      describeError(e),
      /vRouter agent at http:\/\/127\.0\.0\.1:\d+ unreachable \(ECONNREFUSED\) during add port/
    )
  })

  it('a hanging agent times out', async () => {
    sim.inject({ method: 'POST', path: '/port', hang: true })
    const e = await left(vrouterAgent({ url: sim.url, policy: FAST }).addPort(network, endpoint('ep-hang'))())
    assert.match(describeError(e), /no answer within 400 ms during add port/)
  })

  it('DELETE answering 500 after removing the port (one agent version) counts as deleted', async () => {
    const odd = await startAgentSimulator({ deleteAnswers500: true })
    try {
      const a = vrouterAgent({ url: odd.url, policy: FAST })
      const ep = endpoint('ep-500')
      await right(a.addPort(network, ep)())
      await right(a.deletePort(network, ep)())
      assert.equal(odd.calls('DELETE', /^\/port\//)[0]?.status, 500)
      assert.equal(odd.calls('GET', /^\/port\//)[0]?.status, 404)
    } finally {
      await odd.close()
    }
  })

  it('reconcile re-posts the stored endpoints’ ports and lets /syncports retire the others', async () => {
    const agentSim = await startAgentSimulator()
    try {
      const a = vrouterAgent({ url: agentSim.url, policy: FAST })
      const store = memoryStore()
      await right(store.networks.put(network)())
      const kept = endpoint('ep-kept')
      const gone = endpoint('ep-gone')
      await right(store.endpoints.put(kept)())
      await right(a.addPort(network, kept)())
      await right(a.addPort(network, gone)()) // its record never made it: an orphan port
      agentSim.restart() // the agent restarts and reloads its port files
      const report = await right(a.reconcile(store)())
      assert.deepEqual(report, { reposted: ['ep-kept'], failures: [] })
      assert.deepEqual(agentSim.runStaleCleaner(), [gone.controller!.interfaceId])
      assert.deepEqual([...agentSim.ports().keys()], [kept.controller!.interfaceId])
    } finally {
      await agentSim.close()
    }
  })
})
