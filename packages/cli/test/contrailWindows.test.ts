/**
 * The Contrail Windows flow end to end: `isthmus serve --dataplane hns --hns-url … --contrail-api …
 * --vrouter-agent …` as a child process, with the Contrail config API, the vRouter agent and HNS
 * simulated over real HTTP, driven through its plugin socket with the calls dockerd 20.10 made
 * (cnm-server/test/fixtures) for `docker network create -d P --ipam-driver P -o tenant= -o
 * network=`, one `docker run` to its removal, and `docker network rm`, translated to this run's
 * ids, pool and addresses.
 *
 * A good run checks each simulator's journal for the Contrail Windows driver's order and arguments
 * and Docker's Windows answers. Then, for every simulator call that run made, one case fails that
 * call and runs the sequence as Docker would (it undoes what it did; a teardown call that failed is
 * repeated once, as `docker rm` / `network rm` again or dockerd's cleanup at restart does), and
 * checks that no simulator holds anything of ours and that every create in the journals has its
 * delete. The same daemon then serves a good run again.
 */
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import {
  startAgentSimulator,
  startContrailSimulator,
  type AgentSimulator,
  type ContrailSimulator,
  type JournalEntry
} from '@isthmus/contrail/testing'
import { toHnsMac } from '@isthmus/dataplane-hns'
import { hnsSimulatorServer, type HnsJournalEntry, type HnsSimulatorServer } from '@isthmus/dataplane-hns/testing'
import { pluginCall, startPlugin, uniquePrefix, type PluginProcess } from '@isthmus/testkit'

const TENANT = 'demo'
const VN = 'blue'

// ---------------------------------------------------------------------------------------------
// dockerd's calls, from the recorded fixture
// ---------------------------------------------------------------------------------------------

interface Recorded {
  readonly scenario: string
  readonly path?: string
  readonly rawBody?: string
}
const FIXTURE = new URL('../../cnm-server/test/fixtures/dockerd-20.10-calls.jsonl', import.meta.url)
const recorded: ReadonlyArray<Recorded> = readFileSync(FIXTURE, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l) as Recorded)

/** The n-th (0-based) recorded call to `path` in `scenario`, its body parsed (none: undefined). */
const pick = (scenario: string, path: string, n = 0): Record<string, unknown> | undefined => {
  const found = recorded.filter((r) => r.scenario === scenario && r.path === path)[n]
  assert.ok(found !== undefined, `fixture has ${scenario} ${path} #${n}`)
  return found.rawBody === undefined || found.rawBody === ''
    ? undefined
    : (JSON.parse(found.rawBody) as Record<string, unknown>)
}

/** The gateway's release of the recorded `docker network rm` (07, the network made with --subnet 10.213.100.0/24). */
const NET_RM_GATEWAY = 3

/** What this run's calls carry instead of the tracer's ids, pool and addresses. */
interface Ids {
  readonly networkId: string
  readonly endpointId: string
  addressSpace: string
  poolId: string
  gateway: string
  address: string
}

/**
 * A recorded body with this run's values in place of the tracer's: ids, pool, address space,
 * addresses, and the network's `-o tenant= -o network=` options.
 */
const translate = (body: Record<string, unknown>, ids: Ids, cidr: string): Record<string, unknown> => {
  const out: Record<string, unknown> = { ...body }
  if ('NetworkID' in out) out['NetworkID'] = ids.networkId
  if ('EndpointID' in out) out['EndpointID'] = ids.endpointId
  if ('PoolID' in out) out['PoolID'] = ids.poolId
  if (typeof out['AddressSpace'] === 'string') out['AddressSpace'] = ids.addressSpace
  if (typeof out['Pool'] === 'string') out['Pool'] = cidr
  if (typeof out['Address'] === 'string' && out['Address'] !== '') {
    out['Address'] = out['Address'].endsWith('.1') ? ids.gateway.split('/')[0] : ids.address.split('/')[0]
  }
  if (Array.isArray(out['IPv4Data'])) {
    out['IPv4Data'] = [{ AddressSpace: ids.addressSpace, Gateway: ids.gateway, Pool: cidr }]
  }
  const options = out['Options'] as Record<string, unknown> | null | undefined
  if (options !== null && typeof options === 'object' && 'com.docker.network.generic' in options) {
    out['Options'] = { ...options, 'com.docker.network.generic': { tenant: TENANT, network: VN } }
  }
  const iface = out['Interface'] as Record<string, unknown> | undefined
  if (iface !== undefined) out['Interface'] = { ...iface, Address: ids.address }
  return out
}

interface Answer {
  readonly path: string
  readonly status: number
  readonly body: unknown
}

/**
 * dockerd's sequence, and what it does when a call fails: a failed create is undone by the
 * calls that release what came before it (CreateEndpoint → ReleaseAddress; Join or the
 * container's start → DeleteEndpoint, ReleaseAddress; CreateNetwork → ReleaseAddress, ReleasePool);
 * a failed teardown call is made once more.
 */
const dockerSequence = async (socket: string, cidr: string): Promise<ReadonlyArray<Answer>> => {
  const ids: Ids = {
    networkId: randomBytes(32).toString('hex'),
    endpointId: randomBytes(32).toString('hex'),
    addressSpace: '',
    poolId: '',
    gateway: '',
    address: ''
  }
  const answers: Answer[] = []
  const call = async (scenario: string, path: string, n = 0): Promise<Answer> => {
    const body = pick(scenario, path, n)
    const r = await pluginCall(socket, path, body === undefined ? undefined : translate(body, ids, cidr))
    const a = { path, status: r.status, body: r.body }
    answers.push(a)
    return a
  }
  const ok = (a: Answer) => a.status === 200
  const again = async (scenario: string, path: string, n = 0) => {
    if (!ok(await call(scenario, path, n))) await call(scenario, path, n)
  }

  // docker network create -d P --ipam-driver P -o tenant= -o network= --subnet <cidr>
  const C = '01-activate-create'
  await call(C, '/Plugin.Activate')
  await call(C, '/NetworkDriver.GetCapabilities')
  await call(C, '/IpamDriver.GetCapabilities')
  const spaces = await call(C, '/IpamDriver.GetDefaultAddressSpaces')
  ids.addressSpace = (spaces.body as { LocalDefaultAddressSpace: string }).LocalDefaultAddressSpace
  const pool = await call(C, '/IpamDriver.RequestPool')
  if (!ok(pool)) return answers
  ids.poolId = (pool.body as { PoolID: string }).PoolID
  const gw = await call(C, '/IpamDriver.RequestAddress')
  if (!ok(gw)) {
    await call('07-lifecycle-rm', '/IpamDriver.ReleasePool', 0)
    return answers
  }
  ids.gateway = (gw.body as { Address: string }).Address
  const net = await call(C, '/NetworkDriver.CreateNetwork')
  const networkRm = async () => {
    // the recorded `docker network rm` (07, the first network that went): gateway, pool, network
    await call('07-lifecycle-rm', '/IpamDriver.ReleaseAddress', NET_RM_GATEWAY)
    await call('07-lifecycle-rm', '/IpamDriver.ReleasePool', 0)
    await again('07-lifecycle-rm', '/NetworkDriver.DeleteNetwork', 0)
  }
  if (!ok(net)) {
    await call('07-lifecycle-rm', '/IpamDriver.ReleaseAddress', NET_RM_GATEWAY)
    await call('07-lifecycle-rm', '/IpamDriver.ReleasePool', 0)
    return answers
  }

  // docker run --net <network> (the first container of 02), stopped and removed
  const R = '02-run-basic'
  const address = await call(R, '/IpamDriver.RequestAddress')
  if (!ok(address)) {
    await networkRm()
    return answers
  }
  ids.address = (address.body as { Address: string }).Address
  const release = () => again(R, '/IpamDriver.ReleaseAddress')
  if (!ok(await call(R, '/NetworkDriver.CreateEndpoint'))) {
    await release()
    await networkRm()
    return answers
  }
  const started =
    ok(await call(R, '/NetworkDriver.Join')) &&
    ok(await call(R, '/NetworkDriver.ProgramExternalConnectivity')) &&
    // Docker on Windows needs the hnsid to start the container
    ok(await call(R, '/NetworkDriver.EndpointOperInfo')) &&
    ok(await call(R, '/NetworkDriver.EndpointOperInfo', 1))
  if (started) await call(R, '/NetworkDriver.RevokeExternalConnectivity')
  await call(R, '/NetworkDriver.Leave')
  await again(R, '/NetworkDriver.DeleteEndpoint')
  await release()
  await networkRm()
  return answers
}

// ---------------------------------------------------------------------------------------------
// the simulators, one global order of their calls
// ---------------------------------------------------------------------------------------------

type Sim = 'contrail' | 'agent' | 'hns'
interface Seen {
  readonly sim: Sim
  readonly method: string
  readonly path: string
  readonly entry: JournalEntry | HnsJournalEntry
}

/** Every entry a simulator journals, also in one list in the order the calls arrived. */
const observe = (order: Seen[], sim: Sim, journal: Array<JournalEntry | HnsJournalEntry>): void => {
  const push = journal.push.bind(journal)
  journal.push = (...entries) => {
    for (const entry of entries) order.push({ sim, method: entry.method, path: entry.path, entry })
    return push(...entries)
  }
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi
const HEX64 = /[0-9a-f]{64}/gi
/** A journal path with its run-specific ids as patterns. */
const shape = (path: string): string => path.replace(UUID, '<uuid>').replace(HEX64, '<id>')
const patternOf = (path: string): RegExp =>
  new RegExp(
    `^${shape(path)
      .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
      .replace(/<uuid>/g, '[0-9a-fA-F-]{36}')
      .replace(/<id>/g, '[0-9a-f]{64}')}$`
  )

const statusOf = (s: Seen): number | string => ('status' in s.entry ? s.entry.status : s.entry.outcome)
const failed = (s: Seen): boolean => (s.sim === 'hns' ? statusOf(s) !== 'ok' : (statusOf(s) as number) >= 400)

describe('the Contrail Windows flow: isthmus serve on HNS, the controller and the agent (simulated over HTTP)', () => {
  const prefix = uniquePrefix('ist-win')
  const third = 128 + (parseInt(randomBytes(1).toString('hex'), 16) % 120)
  const cidr = `10.252.${third}.0/24`
  let contrail: ContrailSimulator
  let agent: AgentSimulator
  let hns: HnsSimulatorServer
  let plugin: PluginProcess | undefined
  let projectId = ''
  let vnId = ''
  const order: Seen[] = []

  before(async () => {
    contrail = await startContrailSimulator()
    agent = await startAgentSimulator()
    hns = await hnsSimulatorServer()
    projectId = contrail.seedProject(TENANT)
    contrail.seedSecurityGroup(TENANT)
    // addresses from the top: the controller's gateway (.254) is not the pool's first host that
    // Docker's gateway RequestAddress gets, so the test sees whose gateway HNS and Join got
    vnId = contrail.seedNetwork(TENANT, VN, [{ cidr, addrFromStart: false }])
    observe(order, 'contrail', contrail.journal)
    observe(order, 'agent', agent.journal)
    observe(order, 'hns', hns.journal as Array<HnsJournalEntry>)
    plugin = await startPlugin(prefix, [
      '--dataplane',
      'hns',
      '--hns-url',
      hns.baseUrl,
      '--contrail-api',
      contrail.url,
      '--vrouter-agent',
      agent.url,
      '--contrail-owner',
      prefix
    ])
  })

  after(async () => {
    await plugin?.dispose()
    await contrail?.close()
    await agent?.close()
    await hns?.close()
  })

  /** What the simulators hold of ours, and whether every create in `calls` has its delete. */
  const leftovers = (calls: ReadonlyArray<Seen>): ReadonlyArray<string> => {
    const left: string[] = []
    for (const o of contrail.created()) left.push(`contrail ${o.type} ${o.fq_name.join(':')}`)
    for (const id of agent.ports().keys()) left.push(`agent port ${id}`)
    for (const n of hns.networks()) left.push(`hns network ${n.Name ?? n.ID}`)
    for (const e of hns.endpoints()) left.push(`hns endpoint ${e.Name ?? e.ID}`)
    // journals: HNS creates by ID, Contrail creates and agent ports by count of successes
    const deleted = new Set(
      calls.filter((c) => c.sim === 'hns' && c.method === 'DELETE' && !failed(c)).map((c) => c.path.split('/')[2])
    )
    for (const c of calls) {
      const made = c.sim === 'hns' ? (c.entry as HnsJournalEntry).created : undefined
      if (made !== undefined && !deleted.has(made)) left.push(`hns journal: ${c.path} made ${made}, never deleted`)
    }
    const count = (sim: Sim, method: string, re: RegExp) =>
      calls.filter((c) => c.sim === sim && c.method === method && re.test(c.path) && !failed(c)).length
    for (const type of ['virtual-machine-interface', 'virtual-machine', 'instance-ip']) {
      const made = count('contrail', 'POST', new RegExp(`^/${type}s$`))
      const gone = count('contrail', 'DELETE', new RegExp(`^/${type}/`))
      if (made > gone) left.push(`contrail journal: ${made} ${type} created, ${gone} deleted`)
    }
    const posted = new Set(
      calls
        .filter((c) => c.sim === 'agent' && c.method === 'POST' && c.path === '/port' && !failed(c))
        .map((c) => (c.entry as JournalEntry).body as { id: string })
        .map((b) => b.id.toLowerCase())
    )
    const removed = new Set(
      calls.filter((c) => c.sim === 'agent' && c.method === 'DELETE' && !failed(c)).map((c) => c.path.split('/')[2])
    )
    for (const id of posted) if (!removed.has(id)) left.push(`agent journal: port ${id} posted, never deleted`)
    return left
  }

  let good: ReadonlyArray<Seen> = []

  it('a good run: the driver’s order and arguments in every journal, and Docker’s Windows answers', async () => {
    const from = order.length
    const answers = await dockerSequence(plugin!.socket, cidr)
    const calls = order.slice(from)
    good = calls
    for (const a of answers) assert.equal(a.status, 200, `${a.path}: ${JSON.stringify(a.body)}`)
    // the daemon says what it runs on
    const conf = (await pluginCall(plugin!.socket, '/IpamDriver.Configuration')).body as Record<string, unknown>
    assert.deepEqual(conf['dataplane'], { kind: 'hns', hnsUrl: new URL(hns.baseUrl).toString() })

    const vn = contrail.get(vnId)!
    const subnets = (
      vn.props['network_ipam_refs'] as Array<{ attr: { ipam_subnets: Array<Record<string, unknown>> } }>
    )[0]!.attr.ipam_subnets
    const controllerGateway = subnets[0]!['default_gateway'] as string
    assert.ok(controllerGateway.endsWith('.254'), controllerGateway)

    // network create: the HNS network named by the driver's convention, the controller's gateway
    const at = (sim: Sim, method: string, re: RegExp) =>
      calls.findIndex((c) => c.sim === sim && c.method === method && re.test(c.path))
    const hnsNetCreate = calls[at('hns', 'POST', /^\/networks\/$/)]!
    const netReq = JSON.parse((hnsNetCreate.entry as HnsJournalEntry).request) as Record<string, unknown>
    assert.deepEqual(netReq, {
      Name: `Contrail:${TENANT}:${VN}:${cidr}`,
      Type: 'transparent',
      Subnets: [{ AddressPrefix: cidr, GatewayAddress: controllerGateway }]
    })
    const hnsNetworkId = (hnsNetCreate.entry as HnsJournalEntry).created!

    // docker run: instance-ip (at RequestAddress), interface, VM, then the HNS endpoint, then the agent
    const iip = at('contrail', 'POST', /^\/instance-ips$/)
    const vmi = at('contrail', 'POST', /^\/virtual-machine-interfaces$/)
    const vm = at('contrail', 'POST', /^\/virtual-machines$/)
    const hnsEp = at('hns', 'POST', /^\/endpoints\/$/)
    const port = at('agent', 'POST', /^\/port$/)
    assert.ok(at('hns', 'POST', /^\/networks\/$/) < iip, 'HNS network at network create, before any container')
    for (const [what, i] of [
      ['instance-ip', iip],
      ['interface', vmi],
      ['VM', vm]
    ] as const) {
      assert.ok(i >= 0 && i < hnsEp, `contrail ${what} before the HNS endpoint`)
    }
    assert.ok(hnsEp < port, 'the agent hears of the port after the HNS endpoint exists')

    const epReq = JSON.parse((calls[hnsEp]!.entry as HnsJournalEntry).request) as Record<string, unknown>
    const hnsEndpointId = (calls[hnsEp]!.entry as HnsJournalEntry).created!
    const portBody = (calls[port]!.entry as JournalEntry).body as Record<string, unknown>
    const ip = portBody['ip-address'] as string
    const mac = portBody['mac-address'] as string
    assert.match(mac, /^02(:[0-9a-f]{2}){5}$/)
    const endpointId = epReq['Name'] as string
    assert.match(endpointId, /^[0-9a-f]{64}$/)
    assert.deepEqual(epReq, {
      Name: endpointId,
      VirtualNetwork: hnsNetworkId,
      IPAddress: ip,
      PrefixLength: 24,
      GatewayAddress: controllerGateway,
      MacAddress: toHnsMac(mac)
    })
    // the controller's address, which Docker got at RequestAddress
    const requested = answers.filter((a) => a.path === '/IpamDriver.RequestAddress')[1]!.body as { Address: string }
    assert.equal(requested.Address, `${ip}/24`)
    assert.equal(portBody['display-name'], hnsEndpointId, 'display-name: the HNS endpoint id')
    assert.equal(portBody['system-name'], endpointId, 'system-name: the HNS endpoint name (Docker endpoint id)')
    assert.equal(portBody['vm-project-id'], projectId)
    assert.equal(portBody['vn-id'], vnId)
    const vmiCreate = (calls[vmi]!.entry as JournalEntry).body as Record<string, Record<string, unknown>>
    assert.deepEqual(vmiCreate['virtual-machine-interface']!['fq_name'], ['default-domain', TENANT, endpointId])

    // Docker's answers: MAC at CreateEndpoint, hnsid at EndpointOperInfo, Join without an interface
    const created = answers.find((a) => a.path === '/NetworkDriver.CreateEndpoint')!.body as {
      Interface: { MacAddress: string }
    }
    assert.equal(created.Interface.MacAddress, mac)
    for (const info of answers.filter((a) => a.path === '/NetworkDriver.EndpointOperInfo')) {
      const v = (info.body as { Value: Record<string, unknown> }).Value
      assert.equal(v['hnsid'], hnsEndpointId)
      assert.equal(v['com.docker.network.endpoint.macaddress'], mac)
    }
    const joined = answers.find((a) => a.path === '/NetworkDriver.Join')!.body as Record<string, unknown>
    assert.deepEqual(joined, { Gateway: controllerGateway, DisableGatewayService: true })

    // teardown: agent port, HNS endpoint, then the Contrail objects; the HNS network at network rm
    const portDel = at('agent', 'DELETE', /^\/port\//)
    assert.equal(calls[portDel]!.path, `/port/${portBody['id'] as string}`)
    const hnsEpDel = at('hns', 'DELETE', /^\/endpoints\//)
    assert.equal(calls[hnsEpDel]!.path, `/endpoints/${hnsEndpointId}`)
    const ctlDels = ['instance-ip', 'virtual-machine-interface', 'virtual-machine'].map((t) =>
      at('contrail', 'DELETE', new RegExp(`^/${t}/`))
    )
    assert.ok(portDel < hnsEpDel, 'the agent forgets the port before the HNS endpoint goes')
    for (const d of ctlDels) assert.ok(hnsEpDel < d, 'Contrail objects after the HNS endpoint')
    const hnsNetDel = at('hns', 'DELETE', /^\/networks\//)
    assert.equal(calls[hnsNetDel]!.path, `/networks/${hnsNetworkId}`)
    assert.ok(Math.max(...ctlDels) < hnsNetDel)

    assert.deepEqual(leftovers(calls), [])
  })

  it('a failure at each simulator call of that run leaves nothing in any simulator, and every journal balanced', async (t) => {
    assert.ok(good.length > 20, `the good run made ${good.length} simulator calls`)
    const cases = good.map((c, i) => {
      const same = good
        .slice(0, i + 1)
        .filter((d) => d.sim === c.sim && d.method === c.method && shape(d.path) === shape(c.path))
      const ofSim = good.slice(0, i + 1).filter((d) => d.sim === c.sim).length
      return { c, nth: same.length, ofSim, name: `${c.sim} ${c.method} ${shape(c.path)} #${same.length}` }
    })
    for (const k of cases) {
      await t.test(`fails at ${k.name}`, async () => {
        const from = order.length
        if (k.c.sim === 'hns') hns.fail({ nth: k.ofSim, fault: { error: 'The parameter is incorrect.' } })
        else {
          const sim = k.c.sim === 'contrail' ? contrail : agent
          sim.inject({
            method: k.c.method,
            path: patternOf(k.c.path),
            nth: k.nth,
            status: k.c.sim === 'contrail' ? 400 : 500,
            body: k.c.sim === 'contrail' ? 'injected refusal' : '{"error":"{ injected failure }"}'
          })
        }
        try {
          const answers = await dockerSequence(plugin!.socket, cidr)
          const calls = order.slice(from)
          const hit = calls.find(
            (c) => c.sim === k.c.sim && c.method === k.c.method && shape(c.path) === shape(k.c.path) && failed(c)
          )
          assert.ok(hit !== undefined, `the fault at ${k.name} fired`)
          assert.ok(
            answers.some((a) => a.status !== 200),
            `Docker heard of the failure at ${k.name}: ${answers.map((a) => `${a.path} ${a.status}`).join(', ')}`
          )
          assert.deepEqual(leftovers(calls), [], k.name)
        } finally {
          contrail.clearFaults()
          agent.clearFaults()
          hns.clearFaults()
        }
      })
    }
  })

  it('the daemon still serves a good run afterwards', async () => {
    const from = order.length
    const answers = await dockerSequence(plugin!.socket, cidr)
    for (const a of answers) assert.equal(a.status, 200, `${a.path}: ${JSON.stringify(a.body)}`)
    assert.deepEqual(leftovers(order.slice(from)), [])
    assert.deepEqual(
      order.slice(from).map((c) => `${c.sim} ${c.method} ${shape(c.path)}`),
      good.map((c) => `${c.sim} ${c.method} ${shape(c.path)}`),
      'the same calls as the first good run'
    )
  })
})
