/**
 * Address spaces over the plugin's HTTP surface (in-memory ports): `--ipam-opt address-space`
 * puts a pool in a tenant's space, `-o address-space` puts the network there, and CreateNetwork
 * refuses overlapping subnets in one space always, across spaces only when the dataplane routes
 * every subnet on the host. Also the embedding entry points: `startPluginServer` on a socket and
 * on TCP loopback with its discovery file.
 */
import { strict as assert } from 'node:assert'
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { memoryStore, testEnv } from '@isthmus/core/testing'
import { pluginCall } from '@isthmus/testkit'
import { embeddedEnv, startPluginServer, type EmbeddedPlugin } from '../src/index.js'
import { dockerId } from './support/harness.js'

const SUBNET = '10.243.7.0/24'
const dirs: string[] = []
const plugins: EmbeddedPlugin[] = []

after(async () => {
  for (const p of plugins) await p.close()
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

const tempDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'isthmus-spaces-'))
  dirs.push(d)
  return d
}

/** A plugin over a fake dataplane that does, or does not, route subnets on the host. */
const plugin = async (routesSubnetsOnHost: boolean) => {
  const fake = testEnv().dataplane.port
  const { env, ipam } = embeddedEnv({ store: memoryStore(), dataplane: { ...fake, routesSubnetsOnHost } })
  const socket = join(await tempDir(), 'p.sock')
  const p = await startPluginServer({ env, ipam, pluginName: 'spaces', listen: { socket } })
  plugins.push(p)
  const call = async (path: string, body: unknown) => {
    const r = await pluginCall(socket, path, body)
    return { status: r.status, body: r.body as Record<string, unknown> }
  }
  /** What dockerd sends for `network create --ipam-opt address-space=S -o address-space=S`. */
  const network = async (
    name: string,
    space: string | undefined,
    generic: Record<string, string> = {}
  ): Promise<{ step: string; status: number; body: Record<string, unknown>; poolId?: unknown }> => {
    const pool = await call('/IpamDriver.RequestPool', {
      AddressSpace: 'isthmus-local',
      Pool: SUBNET,
      SubPool: '',
      Options: space === undefined ? {} : { 'address-space': space },
      V6: false
    })
    if (pool.status !== 200) return { step: 'RequestPool', ...pool }
    const gw = await call('/IpamDriver.RequestAddress', {
      PoolID: pool.body['PoolID'],
      Address: '',
      Options: { RequestAddressType: 'com.docker.network.gateway' }
    })
    if (gw.status !== 200) return { step: 'RequestAddress', ...gw }
    const created = await call('/NetworkDriver.CreateNetwork', {
      NetworkID: dockerId(name),
      Options: {
        'com.docker.network.enable_ipv6': false,
        'com.docker.network.generic': { ...(space === undefined ? {} : { 'address-space': space }), ...generic }
      },
      IPv4Data: [{ AddressSpace: 'isthmus-local', Gateway: gw.body['Address'], Pool: SUBNET }],
      IPv6Data: []
    })
    return { step: 'CreateNetwork', poolId: pool.body['PoolID'], ...created }
  }
  return { call, network, env }
}

describe('address spaces (RequestPool, CreateNetwork)', () => {
  it('puts a pool in the space --ipam-opt address-space names, and refuses a bad name', async () => {
    const p = await plugin(true)
    const a = await p.call('/IpamDriver.RequestPool', {
      AddressSpace: 'isthmus-local',
      Pool: SUBNET,
      Options: { 'address-space': 'tenant-a' }
    })
    const b = await p.call('/IpamDriver.RequestPool', {
      AddressSpace: 'isthmus-local',
      Pool: SUBNET,
      Options: { 'address-space': 'tenant-b' }
    })
    assert.deepEqual([a.status, a.body['PoolID'], a.body['Pool']], [200, `tenant-a/${SUBNET}`, SUBNET])
    assert.deepEqual([b.status, b.body['PoolID']], [200, `tenant-b/${SUBNET}`])
    // overlapping pools within one space stay refused by the IPAM itself
    const overlap = await p.call('/IpamDriver.RequestPool', {
      AddressSpace: 'isthmus-local',
      Pool: '10.243.7.128/25',
      Options: { 'address-space': 'tenant-a' }
    })
    assert.equal(overlap.status, 500)
    assert.equal(overlap.body['Error'], `pool 10.243.7.128/25 overlaps pool ${SUBNET} in address space tenant-a`)
    const bad = await p.call('/IpamDriver.RequestPool', {
      AddressSpace: 'isthmus-local',
      Pool: SUBNET,
      Options: { 'address-space': 'a/b' }
    })
    assert.equal(bad.status, 400)
    assert.match(String(bad.body['Err']), /Options\.address-space/)
  })

  it('accepts the same subnet in two spaces when the dataplane routes no subnet on the host', async () => {
    const p = await plugin(false)
    const a = await p.network('a', 'tenant-a')
    const b = await p.network('b', 'tenant-b')
    assert.deepEqual([a.step, a.status, b.step, b.status], ['CreateNetwork', 200, 'CreateNetwork', 200])
    const stored = await p.env.store.networks.list()()
    assert.ok(stored._tag === 'Right')
    assert.deepEqual(stored.right.map((n) => `${n.addressSpace} ${n.ipv4[0]?.subnet} ${n.ipv4[0]?.poolId}`).sort(), [
      `tenant-a ${SUBNET} tenant-a/${SUBNET}`,
      `tenant-b ${SUBNET} tenant-b/${SUBNET}`
    ])
  })

  it('refuses the same subnet in one space whatever the dataplane (an identical RequestPool shares the pool)', async () => {
    for (const routes of [true, false]) {
      const p = await plugin(routes)
      assert.equal((await p.network('a', 'tenant-a')).status, 200)
      const again = await p.network('a2', 'tenant-a')
      assert.deepEqual([again.step, again.status], ['CreateNetwork', 500], `routesSubnetsOnHost ${routes}`)
      assert.match(
        String(again.body['Err']),
        new RegExp(`^invalid configuration: subnet ${SUBNET} overlaps ${SUBNET} of network \\w+ on this host$`)
      )
    }
  })

  it('refuses the same subnet across spaces when the dataplane routes subnets on the host (Linux bridge)', async () => {
    const p = await plugin(true)
    assert.equal((await p.network('a', 'tenant-a')).status, 200)
    const b = await p.network('b', 'tenant-b')
    assert.deepEqual([b.step, b.status], ['CreateNetwork', 500])
    assert.match(
      String(b.body['Err']),
      /overlaps 10\.243\.7\.0\/24 of network \w+ on this host \(address space tenant-a; this dataplane routes every subnet on the host\)/
    )
  })

  it('refuses a network that names no space for a subnet its IPAM holds only in another space', async () => {
    const p = await plugin(false)
    const pool = await p.call('/IpamDriver.RequestPool', {
      AddressSpace: 'isthmus-local',
      Pool: SUBNET,
      Options: { 'address-space': 'tenant-a' }
    })
    const r = await p.call('/NetworkDriver.CreateNetwork', {
      NetworkID: dockerId('nospace'),
      Options: { 'com.docker.network.generic': {} },
      IPv4Data: [{ AddressSpace: 'isthmus-local', Pool: SUBNET }],
      IPv6Data: []
    })
    assert.equal(pool.status, 200)
    assert.equal(r.status, 500)
    assert.equal(
      r.body['Err'],
      `invalid configuration: subnet ${SUBNET} is a pool of address space tenant-a, not isthmus-local: name the space with -o address-space=<space> as in --ipam-opt`
    )
    const badName = await p.call('/NetworkDriver.CreateNetwork', {
      NetworkID: dockerId('badspace'),
      Options: { 'com.docker.network.generic': { 'address-space': 'a b' } },
      IPv4Data: [{ AddressSpace: 'isthmus-local', Pool: SUBNET }],
      IPv6Data: []
    })
    assert.deepEqual(badName.body, {
      Err: 'invalid configuration: option address-space="a b" must be an address space name (letters, digits, _ . -)'
    })
  })

  it('answers Join with the static routes of -o routes, and refuses a malformed one at CreateNetwork', async () => {
    const p = await plugin(true)
    const bad = await p.network('bad', 'tenant-a', { routes: '10.9.0.0/16 through 10.243.7.1' })
    assert.equal(bad.status, 500)
    assert.match(
      String(bad.body['Err']),
      /option routes entry "10\.9\.0\.0\/16 through 10\.243\.7\.1" must be <subnet> or <subnet> via <address>/
    )
    const ok = await p.network('ok', 'tenant-b', { routes: '10.9.0.0/16 via 10.243.7.254, 10.8.0.0/24' })
    assert.equal(ok.status, 200)
    const ip = await p.call('/IpamDriver.RequestAddress', { PoolID: ok.poolId, Address: '10.243.7.5', Options: null })
    const ep = { NetworkID: dockerId('ok'), EndpointID: dockerId('ep') }
    assert.equal(
      (await p.call('/NetworkDriver.CreateEndpoint', { ...ep, Interface: { Address: ip.body['Address'] } })).status,
      200
    )
    const joined = await p.call('/NetworkDriver.Join', { ...ep, SandboxKey: '/var/run/docker/netns/abc' })
    assert.equal(joined.status, 200)
    assert.deepEqual(joined.body['StaticRoutes'], [
      { Destination: '10.9.0.0/16', RouteType: 0, NextHop: '10.243.7.254' },
      { Destination: '10.8.0.0/24', RouteType: 1 }
    ])
    assert.equal(joined.body['Gateway'], '10.243.7.1')
  })
})

describe('startPluginServer', () => {
  const env = () => embeddedEnv({ store: memoryStore(), dataplane: testEnv().dataplane.port })

  for (const format of ['spec', 'json'] as const) {
    it(`serves on 127.0.0.1 and writes the .${format} discovery file dockerd reads, removed at close`, async () => {
      const specDir = join(await tempDir(), 'plugins')
      const p = await startPluginServer({
        ...env(),
        pluginName: 'embedtest',
        listen: { port: 0, specDir, specFormat: format }
      })
      const port = Number(/:(\d+)$/.exec(p.address)?.[1])
      assert.match(p.address, /^tcp:\/\/127\.0\.0\.1:\d+$/)
      assert.equal(p.specFile, join(specDir, `embedtest.${format}`))
      const text = await readFile(p.specFile, 'utf8')
      assert.equal(
        text,
        format === 'spec'
          ? `tcp://127.0.0.1:${port}\n`
          : `${JSON.stringify({ Name: 'embedtest', Addr: `http://127.0.0.1:${port}` })}\n`
      )
      assert.deepEqual(await readdir(specDir), [`embedtest.${format}`], 'no temp file left')
      const r = await fetch(`http://127.0.0.1:${port}/Plugin.Activate`, { method: 'POST' })
      assert.deepEqual(await r.json(), { Implements: ['NetworkDriver', 'IpamDriver'] })
      await p.close()
      await assert.rejects(stat(specDir), /ENOENT/, 'the directory it made is gone with the file')
      await assert.rejects(fetch(`http://127.0.0.1:${port}/Plugin.Activate`, { method: 'POST' }))
    })
  }

  it('serves on a unix socket, removed at close, and refuses a name dockerd could not look up', async () => {
    const socket = join(await tempDir(), 'x.sock')
    const p = await startPluginServer({ ...env(), pluginName: 'embedtest', listen: { socket } })
    assert.equal(p.address, `unix://${socket}`)
    assert.equal((await pluginCall(socket, '/Plugin.Activate')).status, 200)
    await p.close()
    await assert.rejects(stat(socket), /ENOENT/)
    await assert.rejects(
      startPluginServer({ ...env(), pluginName: '../etc', listen: { socket } }),
      /invalid plugin name/
    )
  })
})
