/**
 * An address given out is exclusive, whoever asked for it: `docker run --ip` of an address a
 * running container holds fails at isthmus's IPAM driver, under Docker's own bridge driver as on
 * an isthmus network, against the real dockerd 20.10; and the same at the socket. Subnets: a
 * random /24 of 10.251.0.0/16.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import {
  containerNetwork,
  docker,
  ensureBusyboxImage,
  ensureDockerd,
  inContainer,
  mustDocker,
  pluginCall,
  removeDockerObjects,
  startPlugin,
  uniquePrefix,
  type DockerDaemon,
  type PluginProcess
} from '@isthmus/testkit'
import { readState } from './support/state.js'

describe('address exclusivity', { timeout: 240_000 }, () => {
  const prefix = uniquePrefix()
  const block = 4 * Math.floor(Math.random() * 64)
  const base = (i: number) => `10.251.${block + i}`
  let daemon: DockerDaemon | undefined
  let plugin: PluginProcess
  let image = ''

  before(async () => {
    daemon = await ensureDockerd()
    image = await ensureBusyboxImage()
    plugin = await startPlugin(`${prefix}-ex`)
  })
  after(async () => {
    await removeDockerObjects(prefix)
    await plugin?.dispose()
    await daemon?.stop()
  })

  // What isthmus holds in one subnet: `address holder-kind`, sorted.
  const held = async (b: string) =>
    (await readState(plugin.stateDir)).leases
      .filter((l) => l.address.startsWith(`${b}.`))
      .map((l) => `${l.address} ${l.owner.kind}`)
      .sort()

  for (const [i, driver] of [
    [0, 'bridge'],
    [1, 'isthmus']
  ] as const) {
    it(`refuses a second docker run --ip of a held address at the IPAM driver (-d ${driver} --ipam-driver isthmus); the first keeps it, nothing leaks`, async () => {
      const b = base(i)
      const net = `${prefix}-n${i}`
      const first = `${prefix}-a${i}`
      const second = `${prefix}-b${i}`
      await mustDocker(
        'network',
        'create',
        '-d',
        driver === 'bridge' ? 'bridge' : plugin.name,
        '--ipam-driver',
        plugin.name,
        '--subnet',
        `${b}.0/24`,
        net
      )
      await mustDocker('run', '-d', '--name', first, '--net', net, '--ip', `${b}.9`, image, 'sleep', '600')
      assert.equal((await containerNetwork(first, net)).IPAddress, `${b}.9`)

      const r = await docker('run', '-d', '--name', second, '--net', net, '--ip', `${b}.9`, image, 'sleep', '600')
      assert.notEqual(r.code, 0, 'the second container started with the same address')
      // under Docker's bridge the runtime holds it; on an isthmus network CreateEndpoint handed it to the endpoint
      const holderText = driver === 'bridge' ? 'runtime reservation docker' : 'endpoint [0-9a-f]{64}'
      assert.match(
        r.stderr,
        new RegExp(
          `IpamDriver\\.RequestAddress: address ${b.replace(/\./g, '\\.')}\\.9 is already in use by ${holderText} in address space isthmus-local`
        )
      )
      assert.notEqual((await docker('inspect', '--format', '{{.State.Running}}', second)).stdout.trim(), 'true')

      // the first keeps its address, inside the container too, and is the only holder of it
      assert.equal((await containerNetwork(first, net)).IPAddress, `${b}.9`)
      assert.match(
        (await inContainer(first, 'ip', '-o', '-4', 'addr', 'show', 'eth0')).stdout,
        new RegExp(`inet ${b.replace(/\./g, '\\.')}\\.9/24`)
      )
      const holder = driver === 'bridge' ? 'runtime' : 'endpoint'
      assert.deepEqual(await held(b), [`${b}.1 gateway`, `${b}.9 ${holder}`])

      // a container without --ip gets another address
      const third = await mustDocker('run', '--rm', '--net', net, image, 'ip', '-o', '-4', 'addr', 'show', 'eth0')
      assert.doesNotMatch(third.stdout, new RegExp(`inet ${b.replace(/\./g, '\\.')}\\.9/`))

      await mustDocker('rm', '-f', first, second)
      // the address is free again once its holder is gone
      await mustDocker('run', '--rm', '--net', net, '--ip', `${b}.9`, image, 'true')
      await mustDocker('network', 'rm', net)
      assert.deepEqual(await held(b), [])
      assert.deepEqual(
        (await readState(plugin.stateDir)).pools.filter((p) => p.subnet.startsWith(`${b}.`)),
        []
      )
    })
  }

  it('answers RequestAddress of a held address with Err and Error at the socket; a dynamic one never gets it; released, it is given again', async () => {
    const b = base(2)
    const call = (path: string, body: unknown) => pluginCall(plugin.socket, path, body)
    const pool = await call('/IpamDriver.RequestPool', {
      AddressSpace: 'isthmus-local',
      Pool: `${b}.0/24`,
      Options: {}
    })
    assert.equal(pool.status, 200)
    const PoolID = (pool.body as { PoolID: string }).PoolID
    assert.deepEqual(await call('/IpamDriver.RequestAddress', { PoolID, Address: `${b}.2`, Options: null }), {
      status: 200,
      body: { Address: `${b}.2/24`, Data: {} }
    })
    const sentence = `address ${b}.2 is already in use by runtime reservation docker in address space isthmus-local`
    assert.deepEqual(await call('/IpamDriver.RequestAddress', { PoolID, Address: `${b}.2`, Options: null }), {
      status: 500,
      body: { Err: sentence, Error: sentence }
    })
    const dynamic = await call('/IpamDriver.RequestAddress', { PoolID, Options: null })
    assert.equal(dynamic.status, 200)
    assert.notEqual((dynamic.body as { Address: string }).Address, `${b}.2/24`)
    for (const a of [`${b}.2`, (dynamic.body as { Address: string }).Address.split('/')[0]]) {
      assert.deepEqual(await call('/IpamDriver.ReleaseAddress', { PoolID, Address: a }), { status: 200, body: {} })
    }
    assert.equal((await call('/IpamDriver.RequestAddress', { PoolID, Address: `${b}.2`, Options: null })).status, 200)
    assert.deepEqual(await call('/IpamDriver.ReleaseAddress', { PoolID, Address: `${b}.2` }), { status: 200, body: {} })
    assert.deepEqual(await call('/IpamDriver.ReleasePool', { PoolID }), { status: 200, body: {} })
    assert.deepEqual(await held(b), [])
  })
})
