/** HNS: codecs, the client over the in-process simulator transport, and the requests built from core records. */
import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import { describe as describeError } from '@isthmus/core'
import { left, right } from '@isthmus/core/testing'
import {
  fromHnsMac,
  HnsEndpoint,
  HnsNetwork,
  hnsClient,
  hnsEndpointRequest,
  hnsNetworkName,
  hnsNetworkRequest,
  toHnsMac
} from '../src/index.js'
import { hnsSimulator } from '../src/testing/index.js'

describe('HNS v1 codecs', () => {
  it('decode hcsshim JSON with upper-case ID and keep what they do not name', () => {
    const n = HnsNetwork.decode({
      ID: 'A1',
      Name: 'Contrail:t:n:10.0.0.0/24',
      Type: 'transparent',
      Subnets: [{ AddressPrefix: '10.0.0.0/24', GatewayAddress: '10.0.0.1' }],
      DNSServerList: '10.0.0.2',
      Extra: 1
    })
    assert.ok(E.isRight(n))
    assert.equal(n.right.Subnets?.[0]?.GatewayAddress, '10.0.0.1')
    assert.ok(E.isLeft(HnsNetwork.decode({ Id: 'A1', Name: 'x', Type: 'nat' })), 'a lower-case Id is not an ID')
    const ep = HnsEndpoint.decode({
      ID: 'E1',
      Name: 'ep',
      VirtualNetwork: 'A1',
      MacAddress: '02-AB-CD-EF-01-23',
      IPAddress: '10.0.0.5',
      PrefixLength: 24
    })
    assert.ok(E.isRight(ep))
  })

  it('MACs convert between Contrail and HNS formats', () => {
    assert.equal(toHnsMac('02:ab:cd:ef:01:23'), '02-AB-CD-EF-01-23')
    assert.equal(fromHnsMac('02-AB-CD-EF-01-23'), '02:ab:cd:ef:01:23')
  })
})

describe('the Hns client over the simulator transport', () => {
  it('creates, finds by name, gets and deletes networks and endpoints with the HNS call shapes', async () => {
    const sim = hnsSimulator()
    const hns = hnsClient(sim.transport)
    const name = 'Contrail:demo:blue:10.253.30.0/24'
    const net = await right(
      hns.createNetwork({
        Name: name,
        Type: 'transparent',
        Subnets: [{ AddressPrefix: '10.253.30.0/24', GatewayAddress: '10.253.30.1' }],
        DNSServerList: '10.253.30.2'
      })()
    )
    assert.match(net.ID, /^[0-9A-F-]{36}$/)
    assert.deepEqual(sim.journal[0], {
      method: 'POST',
      path: '/networks/',
      request: JSON.stringify({
        Name: name,
        Type: 'transparent',
        Subnets: [{ AddressPrefix: '10.253.30.0/24', GatewayAddress: '10.253.30.1' }],
        DNSServerList: '10.253.30.2'
      })
    })
    assert.equal((await right(hns.findNetworkByName(name)()))?.ID, net.ID)
    const ep = await right(
      hns.createEndpoint({
        Name: 'endpoint-1',
        VirtualNetwork: net.ID,
        IPAddress: '10.253.30.3',
        GatewayAddress: '10.253.30.1',
        MacAddress: toHnsMac('02:ab:cd:ef:01:23')
      })()
    )
    assert.equal(ep.VirtualNetworkName, name)
    assert.equal((await right(hns.getEndpoint(ep.ID)())).MacAddress, '02-AB-CD-EF-01-23')
    assert.equal((await right(hns.listEndpoints()())).length, 1)
    await right(hns.deleteEndpoint(ep.ID)())
    await right(hns.deleteEndpoint(ep.ID)()) // absent succeeds
    await right(hns.deleteNetwork(net.ID)())
    assert.deepEqual(sim.networks(), [])
  })

  it('maps HNS errors: Element not found → NotFound, Unspecified error → Transient, others → one sentence', async () => {
    const sim = hnsSimulator()
    const hns = hnsClient(sim.transport)
    const nf = await left(hns.getNetwork('NOPE')())
    assert.equal(nf._tag, 'NotFound')
    const noNet = await left(hns.createEndpoint({ Name: 'e', VirtualNetwork: 'NOPE' })())
    assert.equal(noNet._tag, 'NotFound')
    sim.failNextNetworkCreates(1)
    const flaky = await left(hns.createNetwork({ Name: 'n', Type: 'transparent' })())
    assert.equal(flaky._tag, 'Transient')
    const net = await right(
      hns.createNetwork({ Name: 'n', Type: 'transparent', Subnets: [{ AddressPrefix: '10.253.31.0/24' }] })()
    )
    const outside = await left(hns.createEndpoint({ Name: 'e', VirtualNetwork: net.ID, IPAddress: '10.253.32.3' })())
    assert.equal(
      describeError(outside),
      'I/O failure during create endpoint e: HNS failed with error : The IP address is not in the network subnets.'
    )
    const badMac = await left(
      hns.createEndpoint({ Name: 'e', VirtualNetwork: net.ID, MacAddress: 'XX-YY-ZZ-00-11-22' })()
    )
    assert.equal(badMac._tag, 'Io')
  })
})

describe('HNS requests from core records (the Contrail driver’s shapes)', () => {
  it('a Contrail network becomes a transparent HNS network; its endpoint one named by the endpoint id', async () => {
    const network = {
      id: 'n1',
      name: 'n1',
      addressSpace: 'isthmus-local',
      ipv6: [],
      internal: false,
      ipMasquerade: false,
      options: {},
      createdAt: '',
      ipv4: [{ subnet: '10.253.33.0/24', gateway: '10.253.33.1' }],
      controller: {
        tenant: 'a:b',
        network: 'blue',
        hostNetworkName: 'Contrail:a%3Ab:blue:10.253.33.0/24'
      }
    } as never
    const sim = hnsSimulator()
    const hns = hnsClient(sim.transport)
    const netReq = hnsNetworkRequest(network)
    assert.ok(E.isRight(netReq))
    const net = await right(hns.createNetwork(netReq.right)())
    assert.equal(net.Name, 'Contrail:a%3Ab:blue:10.253.33.0/24')
    const endpoint = {
      id: 'ep-hns-1',
      addresses: [{ cidr: '10.253.33.7/24', gateway: '10.253.33.1' }],
      mac: '02:ab:cd:ef:01:23'
    } as never
    const epReq = hnsEndpointRequest(endpoint, net.ID)
    assert.ok(E.isRight(epReq))
    const ep = await right(hns.createEndpoint(epReq.right)())
    assert.deepEqual(
      [ep.Name, ep.IPAddress, ep.PrefixLength, ep.GatewayAddress, ep.MacAddress, ep.VirtualNetworkName],
      ['ep-hns-1', '10.253.33.7', 24, '10.253.33.1', '02-AB-CD-EF-01-23', net.Name]
    )
    assert.equal(hnsNetworkName({ ...(network as object), controller: undefined } as never), 'isthmus:n1')
  })
})
