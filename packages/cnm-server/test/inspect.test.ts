/**
 * The inspection routes on the plugin socket with in-memory ports: after a Docker sequence of
 * calls (pool, gateway, network, two addresses, one endpoint joined), each answer decodes with
 * its codec, lists what the store holds, answers GET as POST, and fails like the other routes.
 */
import { strict as assert } from 'node:assert'
import { mkdtemp, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import type * as t from 'io-ts'
import { builtinControlPlane, makeIpam, type Env } from '@isthmus/core'
import { right, testEnv } from '@isthmus/core/testing'
import { pluginCall } from '@isthmus/testkit'
import { createPluginApp, listen, type PluginServer } from '../src/index.js'
import { Inspect } from '../src/protocol/index.js'
import { dockerId } from './support/harness.js'

const CONFIGURATION: Inspect.ConfigurationResponse = {
  stateDir: '/var/lib/isthmus-test',
  socket: '/run/docker/plugins/isthmus-test.sock',
  socketActivated: false,
  logLevel: 'info',
  chainPrefix: 'ISTHMUS',
  dataplane: { kind: 'linux' },
  controlPlane: { kind: 'builtin' }
}

/** GET `path` on the unix socket, as curl --unix-socket does; status and parsed body. */
const getOn = (socket: string, path: string) =>
  new Promise<{ status: number; body: unknown }>((resolve, reject) => {
    const req = request({ socketPath: socket, path, method: 'GET' }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (text += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }))
    })
    req.on('error', reject)
    req.end()
  })

const decoded = <A>(codec: t.Type<A, unknown>, u: unknown): A => {
  const r = codec.decode(u)
  assert.ok(E.isRight(r), `${codec.name}: ${JSON.stringify(u)}`)
  return r.right
}

describe('inspection routes on the plugin socket', () => {
  let dir = ''
  let socket = ''
  let server: PluginServer | undefined
  let env: Env
  const NetworkID = dockerId('inspect-net')
  const EndpointID = dockerId('inspect-ep')
  const call = (path: string, body?: unknown) => pluginCall(socket, path, body)

  before(async () => {
    const te = testEnv()
    const ipam = makeIpam({ store: te.env.store, clock: te.env.clock })
    env = { ...te.env, controlPlane: builtinControlPlane(ipam, te.env.store) }
    dir = await mkdtemp(join(tmpdir(), 'isthmus-inspect-'))
    socket = join(dir, 'plugin.sock')
    server = await listen(
      createPluginApp({
        env,
        ipam,
        about: { version: '9.8.7', cniVersions: ['1.0.0', '1.1.0'], configuration: CONFIGURATION }
      }),
      { socket }
    )

    const pool = await call('/IpamDriver.RequestPool', {
      AddressSpace: 'isthmus-local',
      Pool: '10.241.250.0/24',
      SubPool: '',
      Options: {},
      V6: false
    })
    const PoolID = (pool.body as { PoolID: string }).PoolID
    await call('/IpamDriver.RequestAddress', {
      PoolID,
      Address: '',
      Options: { RequestAddressType: 'com.docker.network.gateway' }
    })
    await call('/NetworkDriver.CreateNetwork', {
      NetworkID,
      Options: { 'com.docker.network.generic': {} },
      IPv4Data: [{ AddressSpace: 'isthmus-local', Gateway: '10.241.250.1/24', Pool: '10.241.250.0/24' }]
    })
    const a = (await call('/IpamDriver.RequestAddress', { PoolID, Address: '', Options: null })).body as {
      Address: string
    }
    await call('/IpamDriver.RequestAddress', { PoolID, Address: '10.241.250.77', Options: null }) // not yet bound
    const created = await call('/NetworkDriver.CreateEndpoint', {
      NetworkID,
      EndpointID,
      Interface: { Address: a.Address, MacAddress: '' }
    })
    assert.equal(created.status, 200)
    const joined = await call('/NetworkDriver.Join', {
      NetworkID,
      EndpointID,
      SandboxKey: '/var/run/docker/netns/feedc0ffee00',
      Options: {}
    })
    assert.equal(joined.status, 200)
    await call('/NetworkDriver.Bogus', {})
  })

  after(async () => {
    await server?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('lists the endpoint record as the one attachment, and gateway and unbound address as reserved', async () => {
    const r = await call('/IpamDriver.Leases')
    assert.equal(r.status, 200)
    const v = decoded(Inspect.LeasesResponse, r.body)
    const [record] = await right(env.store.endpoints.list()())
    assert.deepEqual(
      v.attachments.map((x) => [
        x.endpointId,
        x.owner,
        x.addresses.map((y) => y.cidr),
        x.mac,
        x.hostIfName,
        x.sandbox,
        x.since,
        x.networkName
      ]),
      [
        [
          EndpointID,
          { kind: 'docker', endpointId: EndpointID },
          record!.addresses.map((y) => y.cidr),
          record!.mac,
          record!.hostIfName,
          '/var/run/docker/netns/feedc0ffee00',
          record!.createdAt,
          NetworkID.slice(0, 12)
        ]
      ]
    )
    assert.deepEqual(
      v.reserved.map((x) => `${x.kind} ${x.address} ${x.networkId}`),
      [`gateway 10.241.250.1 ${NetworkID}`, `runtime 10.241.250.77 ${NetworkID}`]
    )
  })

  it('answers GET as POST, and filters by network name, id or prefix', async () => {
    const post = await call('/IpamDriver.Leases', {})
    assert.deepEqual(await getOn(socket, '/IpamDriver.Leases'), post)
    for (const ref of [NetworkID, NetworkID.slice(0, 12), NetworkID.slice(0, 5)]) {
      assert.deepEqual(await getOn(socket, `/IpamDriver.Leases?network=${ref}`), post, ref)
      assert.deepEqual(await call('/IpamDriver.Leases', { network: ref }), post, ref)
    }
  })

  it('fails like the other IPAM routes: an unknown network, a body of the wrong shape', async () => {
    assert.deepEqual(await getOn(socket, '/IpamDriver.Leases?network=nope'), {
      status: 500,
      body: { Err: 'network nope not found', Error: 'network nope not found' }
    })
    const bad = await call('/IpamDriver.Leases', { network: 5 })
    assert.equal(bad.status, 400)
    assert.match(String((bad.body as { Err: string }).Err), /^invalid IpamDriver\.Leases request.*network/)
  })

  it('lists the network with its pool usage and endpoint count', async () => {
    const r = await getOn(socket, '/IpamDriver.Networks')
    assert.equal(r.status, 200)
    const v = decoded(Inspect.NetworksResponse, r.body)
    assert.deepEqual(
      v.networks.map((n) => [
        n.id,
        n.endpoints,
        n.subnets.map((s) => `${s.subnet} ${s.gateway}`),
        n.pools.map((p) => [p.subnet, p.size, p.used, p.free])
      ]),
      [[NetworkID, 1, ['10.241.250.0/24 10.241.250.1'], [['10.241.250.0/24', 254, 3, 251]]]]
    )
    assert.deepEqual(v.otherPools, [])
  })

  it('counts requests by method and outcome, and the store, in the Metrics answer', async () => {
    const v = decoded(Inspect.MetricsResponse, (await call('/IpamDriver.Metrics')).body)
    const count = (op: string, outcome: string) => v.requests.find((r) => r.op === op && r.outcome === outcome)?.count
    assert.equal(count('IpamDriver.RequestAddress', 'ok'), 3)
    assert.equal(count('NetworkDriver.Join', 'ok'), 1)
    assert.equal(count('other', 'not-implemented'), 1)
    assert.equal(count('IpamDriver.Leases', 'error'), 2)
    assert.ok(v.requests.every((r) => r.durationSeconds >= 0))
    assert.deepEqual(
      [v.networks, v.endpoints, v.leases],
      [1, 1, { attachment: 1, gateway: 1, aux: 0, runtime: 1, orphan: 0 }]
    )
    assert.deepEqual(
      v.pools.map((p) => [p.size, p.used]),
      [[254, 3]]
    )
  })

  it('tells its version, plugin API and CNI versions, and its configuration', async () => {
    const v = decoded(Inspect.VersionResponse, (await getOn(socket, '/IpamDriver.Version')).body)
    assert.deepEqual(
      [v.version, v.pluginApi.version, v.pluginApi.implements, v.cniVersions],
      ['9.8.7', '1.2', ['NetworkDriver', 'IpamDriver'], ['1.0.0', '1.1.0']]
    )
    assert.deepEqual(await call('/IpamDriver.Configuration'), { status: 200, body: CONFIGURATION })
  })
})
