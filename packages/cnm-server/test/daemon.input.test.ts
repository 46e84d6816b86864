/**
 * `isthmus serve` against hostile input over its real socket: bodies nested thousands deep (as a
 * `-o` value, as a port mapping's Proto), bodies past the size limit, options of the wrong type,
 * port mappings with a bad field, bridge names that are iptables wildcards or options. Each gets
 * one `{"Err"}` sentence, nothing is stored or made on the host, and the daemon serves the next
 * call and every other network as before. Subnets: 10.245.0.0/16.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import { bridgeIfName, hostIfName, peerIfName, type EndpointId, type NetworkId } from '@isthmus/core'
import {
  docker,
  ensureDockerd,
  hostLinks,
  pluginCall,
  pluginRequest,
  removeDockerObjects,
  startPlugin,
  uniquePrefix,
  type DockerDaemon,
  type PluginProcess
} from '@isthmus/testkit'
import {
  assertProtocolShaped,
  binding,
  deepArrayText,
  endpointBody,
  hexId,
  Made,
  networkBody,
  ownedRulesUnder,
  rulesNamingInterface,
  withDeep
} from './support/protocol.js'
import { readState, summary } from './support/state.js'

describe('the daemon under hostile input', { timeout: 180_000 }, () => {
  const prefix = uniquePrefix()
  const block = Math.floor(Math.random() * 200)
  const subnet = (i: number) => `10.245.${block + i}.0/24`
  let daemon: DockerDaemon | undefined
  let plugin: PluginProcess
  const made = new Made()
  const post = (path: string, text: string) => pluginRequest(plugin.socket, path, text)
  const call = (path: string, body?: unknown) => pluginCall(plugin.socket, path, body)

  // The daemon is alive, answers, and logged no bug (a handler that threw).
  const stillServing = async () => {
    assert.doesNotThrow(() => process.kill(plugin.pid(), 0), 'the daemon process is alive')
    assert.equal((await call('/Plugin.Activate')).status, 200)
    assert.doesNotMatch(plugin.logs(), /"message":"bug:|RangeError|Maximum call stack/)
  }

  before(async () => {
    daemon = await ensureDockerd()
    plugin = await startPlugin(`${prefix}-in`)
  })
  after(async () => {
    await removeDockerObjects(prefix)
    if (plugin !== undefined) assert.deepEqual(await made.takeDown(plugin.socket), [])
    await plugin?.dispose()
    await daemon?.stop()
  })

  it('answers a 5,000-deep array as a -o value, as a port mapping Proto, and a body past the size limit with one {"Err"} each, and serves on', async () => {
    const before = summary(await readState(plugin.stateDir))
    const net = made.network(hexId())

    // the finding of the issue: ~10 KB, a 5,000-deep array under com.docker.network.generic
    const nested = await post(
      '/NetworkDriver.CreateNetwork',
      withDeep(networkBody(net, subnet(0), { x: '<<DEEP>>' }), 5_000)
    )
    assertProtocolShaped('/NetworkDriver.CreateNetwork', true, nested)
    assert.deepEqual(
      { status: nested.status, body: JSON.parse(nested.text) as unknown },
      {
        status: 400,
        body: {
          Err: 'invalid NetworkDriver.CreateNetwork request: the request body nests arrays and objects deeper than 16 levels (the limit)'
        }
      }
    )
    await stillServing()

    const proto = await post(
      '/NetworkDriver.CreateEndpoint',
      withDeep(endpointBody(net, hexId(), '10.245.0.2/24', [binding(80, 8080, { Proto: '<<DEEP>>' })]), 5_000)
    )
    assert.equal(proto.status, 400)
    assert.match((JSON.parse(proto.text) as { Err: string }).Err, /deeper than 16 levels \(the limit\)$/)
    await stillServing()

    // the same depth at an IpamDriver method: Err and Error
    const ipam = await post(
      '/IpamDriver.RequestPool',
      `{"AddressSpace":"LocalDefault","Options":${deepArrayText(5_000)}}`
    )
    assertProtocolShaped('/IpamDriver.RequestPool', true, ipam)
    assert.equal(ipam.status, 400)

    // 300 KB: past the 256 KiB limit, which still holds Docker's largest body (next test)
    const huge = await post(
      '/NetworkDriver.CreateNetwork',
      JSON.stringify(networkBody(net, subnet(0), { x: 'a'.repeat(300_000) }))
    )
    assertProtocolShaped('/NetworkDriver.CreateNetwork', true, huge)
    assert.equal(huge.status, 400)
    assert.match(
      (JSON.parse(huge.text) as { Err: string }).Err,
      /^invalid NetworkDriver\.CreateNetwork request: the request body of \d+ bytes is larger than 262144 bytes \(the limit\)$/
    )
    await stillServing()

    // nested below the limit: reaches the option decoder, which refuses it by name (never stringifies)
    const shallow = await call('/NetworkDriver.CreateNetwork', networkBody(net, subnet(0), { x: [[[[[[1]]]]]] }))
    assert.deepEqual(shallow, {
      status: 500,
      body: { Err: 'invalid configuration: option x must be a string, got a list' }
    })

    // truncated JSON, random bytes, JSON that is not an object
    for (const text of [
      JSON.stringify(networkBody(net, subnet(0))).slice(0, 40),
      '\u0000\u00ff{]',
      '"a string"',
      '[1,2]'
    ]) {
      const r = await post('/NetworkDriver.CreateNetwork', text)
      assertProtocolShaped('/NetworkDriver.CreateNetwork', true, r)
      assert.equal(r.status, 400, `${JSON.stringify(text)}: ${r.text}`)
    }

    // nothing of any of it stored or made
    assert.deepEqual(summary(await readState(plugin.stateDir)), before)
    assert.equal((await hostLinks()).includes(bridgeIfName(net as NetworkId)), false)
    await stillServing()
  })

  it('takes Docker’s largest body: -p 1000-2000 as 1,001 portmap entries', async () => {
    const net = made.network(hexId())
    const ep = made.endpoint(net, hexId())
    assert.deepEqual(await call('/NetworkDriver.CreateNetwork', networkBody(net, subnet(1))), { status: 200, body: {} })
    const ports = Array.from({ length: 1_001 }, (_, i) => binding(1_000 + i, 1_000 + i))
    const text = `${JSON.stringify(endpointBody(net, ep, `10.245.${block + 1}.2/24`, ports))}\n`
    assert.ok(Buffer.byteLength(text) > 100_000, `a realistic size: ${Buffer.byteLength(text)} bytes`)
    const created = await post('/NetworkDriver.CreateEndpoint', text)
    assert.equal(created.status, 200, created.text)
    const stored = (await readState(plugin.stateDir)).endpoints.find((e) => e.id === ep)
    assert.equal(stored?.portMappings.length, 1_001)
    assert.deepEqual(await call('/NetworkDriver.DeleteEndpoint', { NetworkID: net, EndpointID: ep }), {
      status: 200,
      body: {}
    })
    assert.deepEqual(await call('/NetworkDriver.DeleteNetwork', { NetworkID: net }), { status: 200, body: {} })
  })

  it('refuses a port mapping with a bad field at decode: nothing stored, every other network keeps working', async () => {
    const a = made.network(hexId())
    const b = made.network(hexId())
    assert.equal((await call('/NetworkDriver.CreateNetwork', networkBody(a, subnet(2)))).status, 200)
    assert.equal((await call('/NetworkDriver.CreateNetwork', networkBody(b, subnet(3)))).status, 200)
    const addr = `10.245.${block + 2}.2/24`
    const before = summary(await readState(plugin.stateDir))
    const prefixOf = 'invalid NetworkDriver.CreateEndpoint request: Options.com.docker.network.portmap.0.'
    const bad: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
      [{ HostIP: 'nope' }, 'HostIP: expected an IP address or "", got "nope"'],
      [{ HostIP: '::1' }, 'HostIP: ::1 is an IPv6 address, and the endpoint has none of that family'],
      [{ IP: 'x' }, 'IP: expected an IP address or "", got "x"'],
      [{ Proto: 7 }, 'Proto: expected a protocol number (6 tcp, 17 udp, 132 sctp), got 7'],
      [{ Port: 0 }, 'Port: expected a port (1-65535), got 0'],
      [{ HostPort: 70_000 }, 'HostPort: expected a host port (0-65535, 0 for any), got 70000'],
      [{ HostPort: 8_081, HostPortEnd: 8_080 }, 'HostPortEnd: 8080 is below HostPort 8081'],
      [{ HostPort: '8080' }, 'HostPort: expected a host port (0-65535, 0 for any), got "8080"']
    ]
    for (const [field, why] of bad) {
      const ep = made.endpoint(a, hexId())
      const r = await call('/NetworkDriver.CreateEndpoint', endpointBody(a, ep, addr, [binding(80, 8080, field)]))
      assert.deepEqual(r, { status: 400, body: { Err: `${prefixOf}${why}` } }, JSON.stringify(field))
      assert.deepEqual(await linksOf(ep), [], 'no veth pair')
    }
    assert.deepEqual(summary(await readState(plugin.stateDir)), before, 'no endpoint record, no lease')

    // what a stored bad record used to break: deleting another network, the inspection routes
    assert.deepEqual(await call('/NetworkDriver.DeleteNetwork', { NetworkID: b }), { status: 200, body: {} })
    assert.equal((await call('/IpamDriver.Networks')).status, 200)
    assert.equal((await call('/IpamDriver.Leases')).status, 200)
    // and the network itself takes a good endpoint and lets it go
    const good = made.endpoint(a, hexId())
    const r = await call(
      '/NetworkDriver.CreateEndpoint',
      endpointBody(a, good, addr, [binding(80, 18_080, { HostIP: '127.0.0.1' })])
    )
    assert.equal(r.status, 200, JSON.stringify(r.body))
    assert.deepEqual(await call('/NetworkDriver.DeleteEndpoint', { NetworkID: a, EndpointID: good }), {
      status: 200,
      body: {}
    })
    assert.deepEqual(await call('/NetworkDriver.DeleteNetwork', { NetworkID: a }), { status: 200, body: {} })
    assert.deepEqual(await linksOf(good), [])
    await stillServing()
  })

  it('refuses a bridge name another network has: that network keeps its bridge', async () => {
    const a = made.network(hexId())
    const b = made.network(hexId())
    const bridge = `${prefix.replace('-', '')}s`
    assert.equal(
      (
        await call(
          '/NetworkDriver.CreateNetwork',
          networkBody(a, subnet(4), { 'com.docker.network.bridge.name': bridge })
        )
      ).status,
      200
    )
    // without subnets too: the bridge alone is what clashes
    for (const subnets of [[subnet(5)], []]) {
      const body = {
        ...networkBody(b, subnet(5), { 'com.docker.network.bridge.name': bridge }),
        IPv4Data: subnets.map((s) => networkBody(b, s).IPv4Data[0])
      }
      assert.deepEqual(await call('/NetworkDriver.CreateNetwork', body), {
        status: 500,
        body: {
          Err: `invalid configuration: bridge ${bridge} is already the bridge of network ${a.slice(0, 12)} (${a}); name another bridge or remove that network first`
        }
      })
    }
    assert.deepEqual(
      (await readState(plugin.stateDir)).networks.filter((n) => n.bridge === bridge).map((n) => n.id),
      [a]
    )
    assert.ok((await hostLinks()).includes(bridge), 'the first network keeps its bridge')
    assert.deepEqual(await call('/NetworkDriver.DeleteNetwork', { NetworkID: a }), { status: 200, body: {} })
    await stillServing()
  })

  it('refuses bridge names zz+, a!b and -x (docker network create) with one sentence: no bridge, no iptables rule', async () => {
    const rulesBefore = await ownedRulesUnder(plugin.chainPrefix)
    for (const [i, name] of ['zz+', 'a!b', '-x'].entries()) {
      const r = await docker(
        'network',
        'create',
        '-d',
        plugin.name,
        '--subnet',
        subnet(10 + i),
        '-o',
        `com.docker.network.bridge.name=${name}`,
        `${prefix}-br${i}`
      )
      assert.notEqual(r.code, 0, `${name} was accepted`)
      assert.equal(
        r.stderr.trim(),
        `Error response from daemon: NetworkDriver.CreateNetwork: invalid configuration: option com.docker.network.bridge.name=${name} is not a valid interface name (1 to 15 letters, digits, _ . or -, not starting with . or -)`
      )
      assert.equal((await hostLinks()).includes(name), false, `no link ${name}`)
      assert.deepEqual(await rulesNamingInterface(name), [], `no rule naming ${name}`)
    }
    assert.deepEqual(await ownedRulesUnder(plugin.chainPrefix), rulesBefore)
    assert.deepEqual(
      (await readState(plugin.stateDir)).networks.filter(
        (n) => n.bridge !== undefined && ['zz+', 'a!b', '-x'].includes(n.bridge)
      ),
      []
    )
    await stillServing()
  })
})

const linksOf = async (ep: string): Promise<ReadonlyArray<string>> => {
  const names: ReadonlyArray<string> = [hostIfName(ep as EndpointId), peerIfName(ep as EndpointId)]
  return (await hostLinks()).filter((l) => names.includes(l))
}
