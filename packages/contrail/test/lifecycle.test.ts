/**
 * The core flows with the Contrail control plane and the vRouter agent client, against the
 * simulators: what a network and an endpoint become, and what every failing step leaves behind.
 */
import { strict as assert } from 'node:assert'
import { after, afterEach, before, describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import {
  createEndpoint,
  deleteEndpoint,
  describe as describeError,
  ensureNetwork,
  type CreateEndpointRequest,
  type NetworkId,
  type Subnet
} from '@isthmus/core'
import { macFromUuid } from '@isthmus/contrail/testing'
import {
  assertOneSentence,
  contrailSpec,
  epId,
  left,
  NET,
  right,
  startSims,
  TENANT,
  VN,
  type Sims
} from './support/helpers.js'
import { contrailEnv } from './support/env.js'

const request = (id: string): CreateEndpointRequest => ({
  id: epId(id),
  owner: { kind: 'docker', endpointId: epId(id) },
  addresses: [{ _tag: 'Any', family: 4 }]
})

describe('network and endpoint lifecycles through the core flows with Contrail', () => {
  let sims: Sims
  before(async () => {
    sims = await startSims()
  })
  after(async () => sims.close())
  afterEach(() => sims.contrail.clearFaults())

  it('a network naming a controller is bound to the Contrail virtual network; one without goes to the built-in IPAM', async () => {
    const c = contrailEnv(sims)
    const net = await right(c.run(ensureNetwork(contrailSpec())))
    assert.equal(net.controller?.projectId, sims.projectId)
    assert.equal(net.controller?.networkId, sims.networkId)
    assert.equal(net.controller?.hostNetworkName, `Contrail:${TENANT}:${VN}:10.253.10.0/24`)
    assert.deepEqual(net.ipv4, [{ subnet: '10.253.10.0/24', gateway: '10.253.10.1' }])
    assert.equal(c.t.dataplane.state.networks().length, 1)

    const plain = await right(
      c.run(
        ensureNetwork(
          contrailSpec({
            id: 'plain-net' as NetworkId,
            name: 'plain',
            subnets: [{ family: 4, subnet: '10.253.11.0/24' as Subnet }],
            controller: undefined as never
          })
        )
      )
    )
    assert.equal(plain.controller, undefined)
    assert.match(String(plain.ipv4[0]?.poolId), /10\.253\.11\.0/)
    const ep = await right(c.run(createEndpoint(plain.id, request('plain-ep'))))
    assert.equal(ep.addresses[0]?.cidr, '10.253.11.2/24')
    assert.equal(sims.contrail.created().length, 0, 'the built-in network touched no controller object')
    assert.equal(sims.agent.ports().size, 0, 'nor the agent')
  })

  it('an endpoint gets the controller’s address, MAC and gateway; the agent holds its port; delete removes all', async () => {
    const c = contrailEnv(sims)
    await right(c.run(ensureNetwork(contrailSpec())))
    const ep = await right(c.run(createEndpoint(NET, request('ep-life-1'))))
    const vmi = sims.contrail.objects('virtual-machine-interface').find((o) => o.fq_name[2] === 'ep-life-1')!
    const iip = sims.contrail.objects('instance-ip').find((o) => o.fq_name[0] === 'ep-life-1')!
    const vm = sims.contrail.objects('virtual-machine').find((o) => o.fq_name[0] === 'ep-life-1')!
    // first free from the bottom: .1 gateway, .2 DNS
    assert.equal(iip.props['instance_ip_address'], '10.253.10.3')
    assert.deepEqual(ep.addresses, [{ cidr: '10.253.10.3/24', gateway: '10.253.10.1' }])
    assert.equal(ep.mac, macFromUuid(vmi.uuid))
    assert.deepEqual(ep.controller, {
      vmId: vm.uuid,
      interfaceId: vmi.uuid,
      instanceIpId: iip.uuid,
      projectId: sims.projectId
    })
    // the link the container gets carries the controller's MAC
    assert.equal(c.t.dataplane.state.link(ep.peerIfName)?.mac, ep.mac)
    // refs as the controller sees them
    assert.deepEqual(
      (vmi.props['virtual_machine_refs'] as Array<{ uuid: string }>).map((r) => r.uuid),
      [vm.uuid]
    )
    assert.deepEqual(
      (iip.props['virtual_machine_interface_refs'] as Array<{ uuid: string }>).map((r) => r.uuid),
      [vmi.uuid]
    )
    // the agent's port: full body with the real project uuid
    const port = sims.agent.ports().get(vmi.uuid)
    assert.deepEqual(port, {
      id: vmi.uuid,
      'instance-id': vm.uuid,
      'vn-id': sims.networkId,
      'vm-project-id': sims.projectId,
      'display-name': 'ep-life-1',
      'system-name': ep.hostIfName,
      'ip-address': '10.253.10.3',
      'ip6-address': '',
      'mac-address': ep.mac,
      type: 0,
      'rx-vlan-id': -1,
      'tx-vlan-id': -1,
      time: port?.time
    })

    await right(c.run(deleteEndpoint(ep.id)))
    assert.equal(sims.contrail.created().length, 0)
    assert.equal(sims.agent.ports().size, 0)
    assert.equal(c.t.dataplane.state.linksOf(ep.id).length, 0)
    const deletes = sims.contrail.journal.filter((e) => e.method === 'DELETE').map((e) => e.path.split('/')[1])
    assert.deepEqual(deletes.slice(-3), ['instance-ip', 'virtual-machine-interface', 'virtual-machine'])
    assert.equal(sims.agent.calls('DELETE', `/port/${vmi.uuid}`).length, 1)
    // a second delete is a no-op success
    await right(c.run(deleteEndpoint(ep.id)))
  })

  it('a static address is asked for; one in use is a clear AddressInUse and leaves nothing', async () => {
    const c = contrailEnv(sims)
    await right(c.run(ensureNetwork(contrailSpec())))
    const a = await right(
      c.run(
        createEndpoint(NET, {
          ...request('ep-static-a'),
          addresses: [{ _tag: 'Static', address: '10.253.10.50' as never }]
        })
      )
    )
    assert.equal(a.addresses[0]?.cidr, '10.253.10.50/24')
    const e = await left(
      c.run(
        createEndpoint(NET, {
          ...request('ep-static-b'),
          addresses: [{ _tag: 'Static', address: '10.253.10.50' as never }]
        })
      )
    )
    assert.equal(e._tag, 'AddressInUse')
    assert.equal(
      describeError(e),
      'address 10.253.10.50 is already in use by another instance-ip in address space Contrail virtual network demo:blue'
    )
    assert.deepEqual(
      sims.contrail
        .created()
        .map((o) => o.fq_name.at(-1))
        .sort(),
      ['ep-static-a', 'ep-static-a', 'ep-static-a']
    )
    await right(c.run(deleteEndpoint(a.id)))
  })

  it('a subnet the virtual network lacks, or an unknown tenant, fails the network in one sentence', async () => {
    const c = contrailEnv(sims)
    const e1 = await left(
      c.run(ensureNetwork(contrailSpec({ subnets: [{ family: 4, subnet: '10.253.99.0/24' as Subnet }] })))
    )
    assert.equal(
      describeError(e1),
      'invalid configuration: Contrail virtual network default-domain:demo:blue has no subnet 10.253.99.0/24 (it has 10.253.10.0/24)'
    )
    const e2 = await left(c.run(ensureNetwork(contrailSpec({ controller: { tenant: 'nobody', network: VN } }))))
    assert.match(
      describeError(e2),
      /^network controller refused look up project default-domain:nobody \(HTTP 404\): Name .* not found$/
    )
    assert.equal(c.t.dataplane.state.networks().length, 0)
  })

  // ---------------------------------------------------------------------------------
  // every step of createEndpoint made to fail in turn
  // ---------------------------------------------------------------------------------

  type Breaker = {
    readonly step: string
    readonly arm: (c: ReturnType<typeof contrailEnv>) => void
    readonly says: RegExp
  }
  const http = (step: string, method: string, path: RegExp, says: RegExp): Breaker => ({
    step,
    arm: () => sims.contrail.inject({ method, path, nth: 1, status: 400, body: `injected refusal of ${step}` }),
    says
  })
  const breakers: ReadonlyArray<Breaker> = [
    http(
      'security group lookup',
      'POST',
      /^\/fqname-to-id$/,
      /refused look up security-group default-domain:demo:default \(HTTP 400\)/
    ),
    http(
      'interface create',
      'POST',
      /^\/virtual-machine-interfaces$/,
      /refused create virtual-machine-interface default-domain:demo:ep-break \(HTTP 400\)/
    ),
    http(
      'interface read',
      'GET',
      /^\/virtual-machine-interface\//,
      /refused read virtual-machine-interface .* \(HTTP 400\)/
    ),
    http('VM create', 'POST', /^\/virtual-machines$/, /refused create virtual-machine ep-break \(HTTP 400\)/),
    http(
      'interface→VM reference',
      'POST',
      /^\/ref-update$/,
      /refused add virtual-machine reference on virtual-machine-interface .* \(HTTP 400\)/
    ),
    http('instance-ip create', 'POST', /^\/instance-ips$/, /refused create instance-ip ep-break \(HTTP 400\)/),
    http('instance-ip read', 'GET', /^\/instance-ip\//, /refused read instance-ip .* \(HTTP 400\)/),
    {
      step: 'veth pair',
      arm: (c) => c.t.dataplane.probe.failAt({ method: 'ensureEndpoint' }),
      says: /I\/O failure during dataplane.ensureEndpoint/
    },
    {
      step: 'store record',
      arm: (c) => c.t.store.probe.failAt({ method: 'endpoints.put' }),
      says: /I\/O failure during store.endpoints.put/
    },
    {
      step: 'agent port',
      arm: () =>
        sims.agent.inject({
          method: 'POST',
          path: '/port',
          nth: 1,
          status: 500,
          body: '{"error":"{ Invalid data for <vm-project-id> }"}'
        }),
      says: /^vRouter agent refused add port .* \(HTTP 500\): \{"error":"\{ Invalid data for <vm-project-id> \}"\}$/
    }
  ]

  for (const b of breakers) {
    it(`createEndpoint failing at the ${b.step} leaves no controller object, no agent port, no link, no record`, async () => {
      const c = contrailEnv(sims)
      await right(c.run(ensureNetwork(contrailSpec())))
      b.arm(c)
      const r = await c.run(createEndpoint(NET, request('ep-break')))
      sims.contrail.clearFaults()
      sims.agent.clearFaults()
      assert.ok(E.isLeft(r), 'the flow failed')
      const text = describeError(r.left)
      assertOneSentence(text)
      assert.match(text, b.says)
      assert.deepEqual(
        sims.contrail.created().map((o) => `${o.type} ${o.fq_name.join(':')}`),
        []
      )
      assert.equal(sims.agent.ports().size, 0)
      assert.deepEqual(c.t.dataplane.state.links(), [])
      assert.deepEqual(await right(c.env.store.endpoints.list()()), [])
      assert.deepEqual(c.t.log.state.at('warn'), [], 'every undo succeeded')
    })
  }

  it('a create whose first attempt committed and then failed (500) is retried into the same objects', async () => {
    const c = contrailEnv(sims)
    await right(c.run(ensureNetwork(contrailSpec())))
    sims.contrail.inject({ method: 'POST', path: '/instance-ips', nth: 1, commitThenFail: true, status: 500 })
    sims.contrail.inject({ method: 'POST', path: '/virtual-machines', nth: 1, commitThenFail: true, status: 503 })
    const ep = await right(c.run(createEndpoint(NET, request('ep-commit'))))
    assert.equal(sims.contrail.objects('instance-ip').filter((o) => o.fq_name[0] === 'ep-commit').length, 1)
    assert.equal(sims.contrail.objects('virtual-machine').filter((o) => o.fq_name[0] === 'ep-commit').length, 1)
    assert.equal(
      ep.controller?.instanceIpId,
      sims.contrail.objects('instance-ip').find((o) => o.fq_name[0] === 'ep-commit')?.uuid
    )
    await right(c.run(deleteEndpoint(ep.id)))
    assert.equal(sims.contrail.created().length, 0)
  })

  it('the agent unreachable for a moment is retried; the port arrives', async () => {
    const c = contrailEnv(sims)
    await right(c.run(ensureNetwork(contrailSpec())))
    sims.agent.inject({ method: 'POST', path: '/port', nth: 1, reset: true })
    const ep = await right(c.run(createEndpoint(NET, request('ep-agent-flaky'))))
    sims.agent.clearFaults()
    assert.ok(sims.agent.has(ep.controller!.interfaceId!))
    await right(c.run(deleteEndpoint(ep.id)))
  })

  it('delete: a controller refusal stops the flow with the record kept, and a retry finishes', async () => {
    const c = contrailEnv(sims)
    await right(c.run(ensureNetwork(contrailSpec())))
    const ep = await right(c.run(createEndpoint(NET, request('ep-del-retry'))))
    sims.contrail.inject({
      method: 'DELETE',
      path: /^\/virtual-machine-interface\//,
      nth: 1,
      status: 409,
      body: 'Delete when resource still referred: [x]'
    })
    const e = await left(c.run(deleteEndpoint(ep.id)))
    assertOneSentence(describeError(e))
    assert.match(describeError(e), /refused delete virtual-machine-interface .* \(HTTP 409\)/)
    assert.equal((await right(c.env.store.endpoints.list()())).length, 1)
    sims.contrail.clearFaults()
    await right(c.run(deleteEndpoint(ep.id)))
    assert.equal(sims.contrail.created().length, 0)
    assert.equal((await right(c.env.store.endpoints.list()())).length, 0)
  })
})
