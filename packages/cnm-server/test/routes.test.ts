/**
 * The plugin's HTTP surface over a real unix socket, with in-memory ports: the details of the
 * protocol as dockerd 20.10 speaks it (docs/cnm.md, "The protocol"), and a replay of 179
 * calls dockerd really made (test/fixtures) checked call by call and for what is left at the end.
 */
import { strict as assert } from 'node:assert'
import { readFileSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import { DEFAULT_LOCAL_SPACE, MacAddress, type IfName, type PoolId } from '@isthmus/core'
import { dockerId, startHarness, type Harness } from './support/harness.js'

const obj = (u: unknown): Record<string, unknown> => {
  assert.ok(
    typeof u === 'object' && u !== null && !Array.isArray(u),
    `expected a JSON object, got ${JSON.stringify(u)}`
  )
  return u as Record<string, unknown>
}

describe('cnm-server routes over a unix socket', () => {
  let h: Harness
  before(async () => {
    h = await startHarness()
  })
  after(async () => {
    await h.close()
  })

  it('answers the activation handshake with empty bodies and no Content-Type, as dockerd sends it', async () => {
    const activate = await h.raw('/Plugin.Activate', '')
    assert.equal(activate.status, 200)
    assert.deepEqual(JSON.parse(activate.text), { Implements: ['NetworkDriver', 'IpamDriver'] })
    assert.match(String(activate.headers['content-type']), /^application\/vnd\.docker\.plugins\.v1\.\d\+json/)
    assert.deepEqual(await h.call('/NetworkDriver.GetCapabilities'), {
      status: 200,
      body: { Scope: 'local', ConnectivityScope: 'local' }
    })
    assert.deepEqual(await h.call('/IpamDriver.GetCapabilities'), {
      status: 200,
      body: { RequiresMACAddress: false, RequiresRequestReplay: false }
    })
    assert.deepEqual(await h.call('/IpamDriver.GetDefaultAddressSpaces'), {
      status: 200,
      body: { LocalDefaultAddressSpace: 'isthmus-local', GlobalDefaultAddressSpace: 'isthmus-global' }
    })
  })

  it('logs one info line per request (method, ids, duration, outcome) and the payloads at debug', async () => {
    h.t.log.state.clear()
    const pool = obj(
      (
        await h.call('/IpamDriver.RequestPool', {
          AddressSpace: DEFAULT_LOCAL_SPACE,
          Pool: '10.250.77.0/24',
          Options: {},
          V6: false
        })
      ).body
    )
    const bad = await h.call('/IpamDriver.ReleasePool', { PoolID: 'no such pool' })
    await h.call('/NetworkDriver.Bogus', {})
    await h.raw('/NetworkDriver.Leave', '{')
    await h.call('/IpamDriver.ReleasePool', { PoolID: pool['PoolID'] })
    const lines = h.t.log.state.at('info').filter((e) => e.msg === 'request')
    assert.deepEqual(
      lines.map((e) => [e.fields['op'], e.fields['outcome'], e.fields['poolId'] ?? e.fields['pool']]),
      [
        ['IpamDriver.RequestPool', 'ok', '10.250.77.0/24'],
        ['IpamDriver.ReleasePool', bad.status === 200 ? 'ok' : 'error', 'no such pool'],
        ['NetworkDriver.Bogus', 'not-implemented', undefined],
        ['NetworkDriver.Leave', 'error', undefined],
        ['IpamDriver.ReleasePool', 'ok', pool['PoolID']]
      ]
    )
    for (const e of lines) {
      assert.ok(typeof e.fields['durationMs'] === 'number' && e.fields['durationMs'] >= 0, JSON.stringify(e))
    }
    assert.equal(lines[3]!.fields['error'], 'DecodeFailure')
    const payloads = h.t.log.state.at('debug').filter((e) => e.msg === 'payload')
    assert.deepEqual(payloads[0]!.fields['response'], { PoolID: pool['PoolID'], Pool: '10.250.77.0/24', Data: {} })
  })

  it('answers 404 with {"Err"} for methods it does not have, so dockerd can tell', async () => {
    for (const path of ['/NetworkDriver.Bogus', '/VolumeDriver.Create', '/Plugin.Deactivate', '/']) {
      const r = await h.call(path, {})
      assert.equal(r.status, 404, path)
      assert.match(String(obj(r.body)['Err']), /is not implemented/, path)
    }
  })

  it('answers 400 {"Err"} to malformed JSON; IPAM replies carry "Error" too', async () => {
    const nd = await h.raw('/NetworkDriver.CreateNetwork', '{"NetworkID":\n')
    assert.equal(nd.status, 400)
    const ndBody = obj(JSON.parse(nd.text))
    assert.deepEqual(Object.keys(ndBody), ['Err'])
    assert.match(String(ndBody['Err']), /^invalid NetworkDriver\.CreateNetwork request/)

    const ipam = await h.raw('/IpamDriver.RequestPool', 'not json\n')
    assert.equal(ipam.status, 400)
    const ipamBody = obj(JSON.parse(ipam.text))
    assert.match(String(ipamBody['Err']), /^invalid IpamDriver\.RequestPool request/)
    assert.equal(ipamBody['Error'], ipamBody['Err'])
  })

  it('answers 400 naming the field when a body does not have the method shape', async () => {
    const r = await h.call('/NetworkDriver.Join', { NetworkID: dockerId('n') })
    assert.equal(r.status, 400)
    assert.match(String(obj(r.body)['Err']), /EndpointID/)
    const empty = await h.raw('/IpamDriver.RequestAddress', '')
    assert.equal(empty.status, 400)
    assert.match(String(obj(JSON.parse(empty.text))['Error']), /PoolID/)
  })

  it('signals IPAM failures with a non-200 and both Err and Error (a 200 Err is success to dockerd)', async () => {
    const r = await h.call('/IpamDriver.RequestAddress', {
      PoolID: 'isthmus-local/10.250.99.0/24',
      Address: '',
      Options: null
    })
    assert.equal(r.status, 500)
    const b = obj(r.body)
    assert.equal(b['Err'], 'pool isthmus-local/10.250.99.0/24 not found')
    assert.equal(b['Error'], b['Err'])
  })

  it('lets every teardown call of an unknown id succeed with {}', async () => {
    const net = dockerId('unknown-net')
    const ep = dockerId('unknown-ep')
    const calls: Array<[string, unknown]> = [
      ['/NetworkDriver.RevokeExternalConnectivity', { NetworkID: net, EndpointID: ep }],
      ['/NetworkDriver.Leave', { NetworkID: net, EndpointID: ep }],
      ['/NetworkDriver.DeleteEndpoint', { NetworkID: net, EndpointID: ep }],
      ['/NetworkDriver.DeleteNetwork', { NetworkID: net }],
      ['/NetworkDriver.FreeNetwork', { NetworkID: net }],
      ['/IpamDriver.ReleaseAddress', { PoolID: 'isthmus-local/10.250.98.0/24', Address: '10.250.98.7' }],
      ['/IpamDriver.ReleasePool', { PoolID: 'isthmus-local/10.250.98.0/24' }]
    ]
    for (const [path, body] of calls) assert.deepEqual(await h.call(path, body), { status: 200, body: {} }, path)
  })

  it('fills only the CreateEndpoint fields dockerd left empty, and answers Join with the gateway', async () => {
    const pool = await h.call('/IpamDriver.RequestPool', {
      AddressSpace: 'isthmus-local',
      Pool: '10.250.90.0/24',
      SubPool: '',
      Options: {},
      V6: false
    })
    const PoolID = String(obj(pool.body)['PoolID'])
    await h.call('/IpamDriver.RequestAddress', {
      PoolID,
      Address: '',
      Options: { RequestAddressType: 'com.docker.network.gateway' }
    })
    const NetworkID = dockerId('echo-net')
    const created = await h.call('/NetworkDriver.CreateNetwork', {
      NetworkID,
      Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} },
      IPv4Data: [{ AddressSpace: 'isthmus-local', Gateway: '10.250.90.1/24', Pool: '10.250.90.0/24' }],
      IPv6Data: []
    })
    assert.deepEqual(created, { status: 200, body: {} })

    // dockerd filled Address and MacAddress (--mac-address): nothing may come back
    const a1 = obj((await h.call('/IpamDriver.RequestAddress', { PoolID, Address: '', Options: null })).body)
    const withMac = await h.call('/NetworkDriver.CreateEndpoint', {
      NetworkID,
      EndpointID: dockerId('ep-mac'),
      Interface: { Address: a1['Address'], AddressIPv6: '', MacAddress: '02:42:0a:fa:5a:32' },
      Options: { 'com.docker.network.endpoint.macaddress': 'AkIK+loy' }
    })
    assert.deepEqual(withMac, { status: 200, body: {} })

    // MacAddress left empty: the MAC the link will have comes back, and nothing else
    const a2 = obj((await h.call('/IpamDriver.RequestAddress', { PoolID, Address: '', Options: null })).body)
    const EndpointID = dockerId('ep-nomac')
    const noMac = await h.call('/NetworkDriver.CreateEndpoint', {
      NetworkID,
      EndpointID,
      Interface: { Address: a2['Address'], AddressIPv6: '', MacAddress: '' },
      Options: { 'com.docker.network.endpoint.exposedports': [], 'com.docker.network.portmap': [] }
    })
    assert.equal(noMac.status, 200)
    const iface = obj(obj(noMac.body)['Interface'])
    assert.deepEqual(Object.keys(iface), ['MacAddress'])
    assert.ok(E.isRight(MacAddress.decode(iface['MacAddress'])), `a MAC: ${String(iface['MacAddress'])}`)

    const joined = await h.call('/NetworkDriver.Join', {
      NetworkID,
      EndpointID,
      SandboxKey: '/var/run/docker/netns/0123456789ab',
      Options: {}
    })
    assert.equal(joined.status, 200)
    const j = obj(joined.body)
    assert.equal(j['Gateway'], '10.250.90.1')
    assert.equal(j['DisableGatewayService'], undefined)
    const name = obj(j['InterfaceName'])
    assert.equal(name['DstPrefix'], 'eth')
    // SrcName must exist in the host namespace when Join returns
    assert.equal(h.t.dataplane.state.link(name['SrcName'] as IfName)?.location._tag, 'Host')
  })

  it('hands out --ip and --aux-address outside --ip-range, and dynamic addresses only inside it', async () => {
    const pool = obj(
      (
        await h.call('/IpamDriver.RequestPool', {
          AddressSpace: 'isthmus-local',
          Pool: '10.250.91.0/24',
          SubPool: '10.250.91.128/25',
          Options: {},
          V6: false
        })
      ).body
    )
    const PoolID = String(pool['PoolID'])
    h.t.store.probe.reset()
    const gw = await h.call('/IpamDriver.RequestAddress', {
      PoolID,
      Address: '10.250.91.254',
      Options: { RequestAddressType: 'com.docker.network.gateway' }
    })
    assert.deepEqual(gw, { status: 200, body: { Address: '10.250.91.254/24', Data: {} } })
    const aux = await h.call('/IpamDriver.RequestAddress', { PoolID, Address: '10.250.91.10', Options: null })
    assert.deepEqual(aux, { status: 200, body: { Address: '10.250.91.10/24', Data: {} } })
    const ip = await h.call('/IpamDriver.RequestAddress', { PoolID, Address: '10.250.91.20', Options: null })
    assert.deepEqual(ip, { status: 200, body: { Address: '10.250.91.20/24', Data: {} } })
    const dyn = obj((await h.call('/IpamDriver.RequestAddress', { PoolID, Address: '', Options: null })).body)
    assert.match(String(dyn['Address']), /^10\.250\.91\.\d+\/24$/)
    const host = Number(String(dyn['Address']).split(/[./]/)[3])
    assert.ok(host >= 128 && host <= 254, `${String(dyn['Address'])} inside --ip-range 10.250.91.128/25`)
    // Only the container's own pick is written without fsync: the gateway and an --aux-address (like
    // --ip on the wire) belong to the network and must outlive a power loss.
    assert.deepEqual(
      h.t.store.probe.callsOf('leases.reserve').map((c) => [(c.args[0] as { address: string }).address, c.args[1]]),
      [
        ['10.250.91.254', { durable: true }],
        ['10.250.91.10', { durable: true }],
        ['10.250.91.20', { durable: true }],
        [String(dyn['Address']).split('/')[0], { durable: false }]
      ]
    )
    // the address docker gives back is free again; the gateway stays with the pool
    assert.deepEqual(await h.call('/IpamDriver.ReleaseAddress', { PoolID, Address: '10.250.91.20' }), {
      status: 200,
      body: {}
    })
    assert.deepEqual(await h.call('/IpamDriver.ReleaseAddress', { PoolID, Address: '10.250.91.254' }), {
      status: 200,
      body: {}
    })
    const leases = await h.ipam.leases(DEFAULT_LOCAL_SPACE, PoolID as PoolId)()
    assert.ok(E.isRight(leases))
    assert.deepEqual(
      leases.right.map((l) => l.address).sort(),
      ['10.250.91.10', '10.250.91.254', String(dyn['Address']).split('/')[0]].sort()
    )
  })

  it('refuses a second network on a subnet in use, leaving the first one its pool and gateway', async () => {
    const req = { AddressSpace: 'isthmus-local', Pool: '10.250.92.0/24', SubPool: '', Options: {}, V6: false }
    const PoolID = String(obj((await h.call('/IpamDriver.RequestPool', req)).body)['PoolID'])
    await h.call('/IpamDriver.RequestAddress', {
      PoolID,
      Address: '',
      Options: { RequestAddressType: 'com.docker.network.gateway' }
    })
    const first = dockerId('first-net')
    const ipv4 = [{ AddressSpace: 'isthmus-local', Gateway: '10.250.92.1/24', Pool: '10.250.92.0/24' }]
    const options = { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} }
    assert.equal(
      (
        await h.call('/NetworkDriver.CreateNetwork', {
          NetworkID: first,
          Options: options,
          IPv4Data: ipv4,
          IPv6Data: []
        })
      ).status,
      200
    )

    // dockerd: the identical RequestPool gets the same pool (ref-counted) ...
    assert.equal(obj((await h.call('/IpamDriver.RequestPool', req)).body)['PoolID'], PoolID)
    // ... but its --gateway must not move the first network's gateway
    const moved = await h.call('/IpamDriver.RequestAddress', {
      PoolID,
      Address: '10.250.92.9',
      Options: { RequestAddressType: 'com.docker.network.gateway' }
    })
    assert.equal(moved.status, 500)
    assert.equal(
      obj(moved.body)['Error'],
      'invalid configuration: subnet 10.250.92.0/24 is already used by another network, with gateway 10.250.92.1'
    )
    // and without --gateway the network driver refuses the network
    const second = await h.call('/NetworkDriver.CreateNetwork', {
      NetworkID: dockerId('second-net'),
      Options: options,
      IPv4Data: ipv4,
      IPv6Data: []
    })
    assert.equal(second.status, 500)
    assert.equal(
      obj(second.body)['Err'],
      `invalid configuration: subnet 10.250.92.0/24 overlaps 10.250.92.0/24 of network ${first.slice(0, 12)} on this host`
    )
    // dockerd's rollback: ReleaseAddress(gateway), ReleasePool
    await h.call('/IpamDriver.ReleaseAddress', { PoolID, Address: '10.250.92.1' })
    await h.call('/IpamDriver.ReleasePool', { PoolID })
    const pool = await h.ipam.getPool(PoolID as PoolId)()
    assert.ok(E.isRight(pool))
    assert.equal(pool.right.refs, 1)
    assert.equal(pool.right.gateway, '10.250.92.1')
    const leases = await h.ipam.leases(DEFAULT_LOCAL_SPACE, PoolID as PoolId)()
    assert.ok(E.isRight(leases))
    assert.deepEqual(
      leases.right.map((l) => [l.address, l.owner.kind]),
      [['10.250.92.1', 'gateway']]
    )
  })

  it('refuses a bad option value with one sentence and creates nothing', async () => {
    const before = h.t.dataplane.state.networks().length
    const r = await h.call('/NetworkDriver.CreateNetwork', {
      NetworkID: dockerId('bad-mtu'),
      Options: {
        'com.docker.network.enable_ipv6': false,
        'com.docker.network.generic': { 'com.docker.network.driver.mtu': 'abc' }
      },
      IPv4Data: [{ AddressSpace: 'other-ipam', Pool: '10.250.93.0/24', Gateway: '10.250.93.1/24' }],
      IPv6Data: []
    })
    assert.equal(r.status, 500)
    assert.deepEqual(r.body, {
      Err: 'invalid configuration: option com.docker.network.driver.mtu=abc must be a whole number from 68 to 65535'
    })
    assert.equal(h.t.dataplane.state.networks().length, before)
    const stored = await h.env.store.networks.get(dockerId('bad-mtu') as never)()
    assert.ok(E.isRight(stored) && stored.right._tag === 'None')
  })
})

// -------------------------------------------------------------------------------------
// replay of what dockerd sent
// -------------------------------------------------------------------------------------

type Line =
  | {
      readonly scenario: string
      readonly path: string
      readonly rawBody: string
      readonly response: { status: number; body: string }
    }
  | { readonly scenario: string; readonly cli: string; readonly rc: number }

const FIXTURE = new URL('./fixtures/dockerd-20.10-calls.jsonl', import.meta.url)

/**
 * The tracer's values (pool ids, address space, pools it picked, addresses it handed out) are
 * not ours: a value map built from each pair of answers rewrites every later request, as
 * dockerd would have sent it to isthmus. Only whole string values are rewritten.
 */
const translator = () => {
  const map = new Map<string, string>([['tracer-local', DEFAULT_LOCAL_SPACE]])
  const bare = (cidr: string) => cidr.split('/')[0]!
  const rewrite = (u: unknown): unknown => {
    if (typeof u === 'string') return map.get(u) ?? u
    if (Array.isArray(u)) return u.map(rewrite)
    if (typeof u === 'object' && u !== null) {
      return Object.fromEntries(Object.entries(u).map(([k, v]) => [k, rewrite(v)]))
    }
    return u
  }
  return {
    rewrite,
    learn: (theirs: string, ours: string) => {
      map.set(theirs, ours)
      if (theirs.includes('/') && ours.includes('/')) map.set(bare(theirs), bare(ours))
    }
  }
}

describe('a replay of the calls dockerd 20.10 made in scenarios 01-07', () => {
  let h: Harness
  before(async () => {
    h = await startHarness()
  })
  after(async () => {
    await h.close()
  })

  it('answers each of the 179 calls as dockerd needs, and ends holding nothing but the gateways', async () => {
    const lines = readFileSync(FIXTURE, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Line)
    const calls = lines.filter((l): l is Extract<Line, { path: string }> => 'path' in l)
    assert.equal(calls.length, 179)
    const tr = translator()
    const internal = new Set<string>()
    for (const [i, c] of calls.entries()) {
      const where = `call ${i + 1} (${c.scenario} ${c.path})`
      const sent = c.rawBody === '' ? undefined : obj(tr.rewrite(JSON.parse(c.rawBody)))
      // Go's json.Encoder: compact, fields in the order given, one trailing newline
      const r = await h.raw(c.path, sent === undefined ? '' : `${JSON.stringify(sent)}\n`)
      assert.equal(r.status, 200, `${where}: ${r.text}`)
      assert.notEqual(r.text, '', `${where}: an empty 200 body fails in dockerd with EOF`)
      const ours = obj(JSON.parse(r.text))
      const theirs = c.response.body === '' ? {} : obj(JSON.parse(c.response.body))
      switch (c.path) {
        case '/IpamDriver.RequestPool':
          if (sent?.['Pool'] !== '') assert.equal(ours['Pool'], sent?.['Pool'], where)
          tr.learn(String(theirs['PoolID']), String(ours['PoolID']))
          tr.learn(String(theirs['Pool']), String(ours['Pool']))
          break
        case '/IpamDriver.RequestAddress': {
          const got = String(ours['Address'])
          assert.match(got, /\/\d+$/, `${where}: the address carries its prefix length`)
          if (sent?.['Address'] !== '') {
            assert.equal(got.split('/')[0], sent?.['Address'], `${where}: exactly the address asked for`)
          }
          tr.learn(String(theirs['Address']), got)
          break
        }
        case '/NetworkDriver.CreateNetwork':
          if (obj(sent?.['Options'])['com.docker.network.internal'] === true) internal.add(String(sent?.['NetworkID']))
          break
        case '/NetworkDriver.CreateEndpoint': {
          const asked = obj(sent?.['Interface'])
          const given = ours['Interface'] === undefined ? {} : obj(ours['Interface'])
          for (const k of Object.keys(given)) {
            assert.equal(asked[k], '', `${where}: ${k} was filled by dockerd and must not come back`)
          }
          if (asked['MacAddress'] === '') {
            assert.ok(E.isRight(MacAddress.decode(given['MacAddress'])), `${where}: a MAC for the empty one`)
          }
          break
        }
        case '/NetworkDriver.Join': {
          const name = obj(ours['InterfaceName'])
          assert.equal(
            h.t.dataplane.state.link(name['SrcName'] as IfName)?.location._tag,
            'Host',
            `${where}: SrcName exists`
          )
          if (internal.has(String(sent?.['NetworkID']))) {
            assert.equal(ours['Gateway'], undefined, `${where}: no gateway on an internal network`)
            assert.equal(ours['DisableGatewayService'], true, `${where}: and no docker_gwbridge`)
          } else {
            assert.equal(ours['Gateway'], tr.rewrite(theirs['Gateway']), `${where}: the network's gateway`)
          }
          break
        }
      }
    }
    // Left by the scenarios: networks 775ec61aece4 (10.213.0.0/24) and 00991661a3af (internal,
    // 10.213.2.0/24 + fdaa:213:2::/64); every container is gone.
    const store = h.env.store
    const endpoints = await store.endpoints.list()()
    const networks = await store.networks.list()()
    const leases = await store.leases.list(DEFAULT_LOCAL_SPACE)()
    assert.ok(E.isRight(endpoints) && E.isRight(networks) && E.isRight(leases))
    assert.deepEqual(endpoints.right, [])
    assert.deepEqual(networks.right.map((n) => n.name).sort(), ['00991661a3af', '775ec61aece4'])
    assert.deepEqual(leases.right.map((l) => `${l.address} ${l.owner.kind}`).sort(), [
      '10.213.0.1 gateway',
      '10.213.2.1 gateway',
      'fdaa:213:2::1 gateway'
    ])
    assert.deepEqual(h.t.dataplane.state.links(), [])
  })
})
