/**
 * The `dockerConnect` mode against the real dockerd 20.10 and `isthmus serve`: a `--net=none`
 * busybox container gets its address through CNI ADD (Docker connects it, the plugin answers
 * with what Docker did), and loses it on DEL. `docker inspect`, `ip addr` inside the container
 * and ping to another container of the network agree with the CNI results; CHECK sees Docker's
 * attachment; every refusal (wrong namespace, a MAC dockerd 20.10 ignores, unknown container or
 * network, a stopped container, no dockerd) leaves the container as it was, on `none`.
 *
 * Subnet: a random /24 of 10.242.16.0/20; names start with this run's prefix.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import {
  containerNetworks,
  ensureBusyboxImage,
  ensureDockerd,
  inContainer,
  mustDocker,
  pings,
  removeDockerObjects,
  startPlugin,
  uniquePrefix,
  type DockerDaemon,
  type PluginProcess
} from '@isthmus/testkit'
import type { Cni } from '@isthmus/cni-exec'
import { cniEnv, invoke, realRuntime, requireRoot, Scope } from './support.js'

const prefix = uniquePrefix('isdc')
const name = (s: string) => `${prefix}-${s}`
const subnet = `10.242.${16 + Math.floor(Math.random() * 16)}`
const net = name('net')
const scope = new Scope()
const runtime = realRuntime()

const conf = (over: Record<string, unknown> = {}) => ({
  cniVersion: '1.0.0',
  name: name('shim'),
  type: 'isthmus',
  dockerConnect: { network: net },
  ...over
})

/** A running `--net=none` container: its full id and the runtime's view of its namespace. */
const noneContainer = async (image: string, tag: string) => {
  const id = (await mustDocker('run', '-d', '--name', name(tag), '--net=none', image, 'sleep', '600')).stdout.trim()
  const pid = (await mustDocker('inspect', '--format', '{{.State.Pid}}', id)).stdout.trim()
  return { id, netns: `/proc/${pid}/ns/net` }
}
const sandboxKey = async (id: string) =>
  (await mustDocker('inspect', '--format', '{{.NetworkSettings.SandboxKey}}', id)).stdout.trim()
const ipAddr = async (id: string) => (await inContainer(id, 'ip', '-o', 'addr')).stdout
const networkNames = async (id: string) => Object.keys(await containerNetworks(id)).sort()

describe('dockerConnect: Docker attaches a --net=none container for CNI', { timeout: 240_000 }, () => {
  let daemon: DockerDaemon | undefined
  let plugin: PluginProcess | undefined
  let image = ''
  let peerAddress = ''
  let target = { id: '', netns: '' }

  before(async () => {
    requireRoot()
    daemon = await ensureDockerd()
    image = await ensureBusyboxImage()
    plugin = await startPlugin(name('p'))
    await mustDocker(
      'network',
      'create',
      '-d',
      plugin.name,
      '--ipam-driver',
      plugin.name,
      '--subnet',
      `${subnet}.0/24`,
      net
    )
    await mustDocker('run', '-d', '--name', name('peer'), '--net', net, image, 'sleep', '600')
    peerAddress = (await containerNetworks(name('peer')))[net]?.IPAddress ?? ''
    target = await noneContainer(image, 'c')
  })
  after(async () => {
    await removeDockerObjects(prefix)
    await plugin?.dispose()
    await scope.cleanup()
    await daemon?.stop()
  })

  let added: Cni.Result100 | undefined

  it('ADD: Docker connects the container with the requested address; the result is what docker inspect and the kernel say', async () => {
    assert.deepEqual(await networkNames(target.id), ['none'])
    const out = await invoke(
      runtime,
      cniEnv('ADD', { cid: target.id, netns: target.netns, ifName: 'eth0', args: `IP=${subnet}.50` }),
      conf()
    )
    assert.equal(out.exitCode, 0, out.stdout)
    added = out.doc as Cni.Result100
    const ep = (await containerNetworks(target.id))[net]
    assert.ok(ep !== undefined, 'docker inspect shows the attachment')
    assert.deepEqual(await networkNames(target.id), [net], 'the container left none for the network')
    assert.equal(ep.IPAddress, `${subnet}.50`)
    assert.deepEqual(added, {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'eth0', mac: ep.MacAddress, sandbox: await sandboxKey(target.id) }],
      ips: [{ address: `${ep.IPAddress}/${ep.IPPrefixLen}`, gateway: ep.Gateway, interface: 0 }],
      routes: [{ dst: '0.0.0.0/0', gw: ep.Gateway }],
      dns: {}
    })
    const inside = await ipAddr(target.id)
    assert.match(inside, new RegExp(`eth0\\s+inet ${subnet}\\.50/24 `))
    assert.ok(await pings(target.id, peerAddress, 3), 'the container reaches the peer')
    assert.ok(await pings(name('peer'), `${subnet}.50`, 3), 'the peer reaches the container')
  })

  it('CHECK: Docker still has the attachment prevResult describes', async () => {
    const out = await invoke(
      runtime,
      cniEnv('CHECK', { cid: target.id, netns: target.netns, ifName: 'eth0' }),
      conf({ prevResult: added })
    )
    assert.equal(out.exitCode, 0, out.stdout)
    const other = { ...added, ips: [{ address: `${subnet}.99/24`, interface: 0 }] }
    const bad = await invoke(
      runtime,
      cniEnv('CHECK', { cid: target.id, netns: target.netns, ifName: 'eth0' }),
      conf({ prevResult: other })
    )
    assert.equal(bad.doc?.['code'], 104, bad.stdout)
  })

  it('a second ADD is refused (code 7) and leaves the attachment alone', async () => {
    const out = await invoke(runtime, cniEnv('ADD', { cid: target.id, netns: target.netns, ifName: 'eth0' }), conf())
    assert.equal(out.doc?.['code'], 7, out.stdout)
    assert.equal((await containerNetworks(target.id))[net]?.IPAddress, `${subnet}.50`)
  })

  it('DEL: Docker disconnects, the container is back on none without the address; DEL again succeeds; CHECK then fails', async () => {
    const out = await invoke(runtime, cniEnv('DEL', { cid: target.id, netns: target.netns, ifName: 'eth0' }), conf())
    assert.equal(out.exitCode, 0, out.stdout)
    assert.equal(out.stdout, '')
    assert.deepEqual(await networkNames(target.id), ['none'])
    assert.doesNotMatch(await ipAddr(target.id), new RegExp(`${subnet}\\.50`))
    assert.ok(!(await pings(name('peer'), `${subnet}.50`)), 'the old address answers no more')
    const again = await invoke(runtime, cniEnv('DEL', { cid: target.id, netns: target.netns, ifName: 'eth0' }), conf())
    assert.equal(again.exitCode, 0, again.stdout)
    const check = await invoke(
      runtime,
      cniEnv('CHECK', { cid: target.id, netns: target.netns, ifName: 'eth0' }),
      conf({ prevResult: added })
    )
    assert.equal(check.doc?.['code'], 104, check.stdout)
  })

  it('ADD in 0.4.0 with a dynamic address, then DEL of a removed container succeeds', async () => {
    const c = await noneContainer(image, 'v04')
    const out = await invoke(
      runtime,
      cniEnv('ADD', { cid: c.id, netns: c.netns, ifName: 'eth0' }),
      conf({ cniVersion: '0.4.0' })
    )
    assert.equal(out.exitCode, 0, out.stdout)
    const r = out.doc as Cni.Result040
    const ep = (await containerNetworks(c.id))[net]
    assert.deepEqual(r.ips, [{ version: '4', address: `${ep?.IPAddress}/24`, gateway: ep?.Gateway, interface: 0 }])
    assert.notEqual(ep?.IPAddress, `${subnet}.50`, 'a fresh address, not the one just released')
    assert.ok(await pings(c.id, peerAddress, 5))
    await mustDocker('rm', '-f', c.id)
    const del = await invoke(
      runtime,
      cniEnv('DEL', { cid: c.id, netns: c.netns, ifName: 'eth0' }),
      conf({ cniVersion: '0.4.0' })
    )
    assert.equal(del.exitCode, 0, del.stdout)
  })

  it('refusals leave the container on none: another namespace (7), a MAC (2), unknown container (3) or network (7), no dockerd (11)', async () => {
    const other = scope.addNetns('x')
    const env = (over: { netns?: string; args?: string; cid?: string } = {}) =>
      cniEnv('ADD', {
        cid: over.cid ?? target.id,
        netns: over.netns ?? target.netns,
        ifName: 'eth0',
        ...(over.args === undefined ? {} : { args: over.args })
      })
    const cases: Array<[string, Awaited<ReturnType<typeof invoke>>, number]> = [
      ['another namespace', await invoke(runtime, env({ netns: other.path }), conf()), 7],
      ['a MAC', await invoke(runtime, env({ args: 'MAC=02:42:de:ad:be:ef' }), conf()), 2],
      ['unknown container', await invoke(runtime, env({ cid: name('nosuch') }), conf()), 3],
      ['unknown network', await invoke(runtime, env(), conf({ dockerConnect: { network: name('nosuch') } })), 7],
      [
        'no dockerd',
        await invoke(runtime, env(), conf({ dockerConnect: { network: net, socket: `/run/${prefix}-none.sock` } })),
        11
      ]
    ]
    for (const [what, out, code] of cases) {
      assert.equal(out.exitCode, 1, what)
      assert.equal(out.doc?.['code'], code, `${what}: ${out.stdout}`)
      assert.equal(typeof out.doc?.['msg'], 'string', what)
    }
    assert.match(String(cases[0]?.[1].doc?.['msg']), /CNI_NETNS is not the network namespace of the docker container/)
    assert.deepEqual(await networkNames(target.id), ['none'])
    assert.doesNotMatch(await ipAddr(target.id), /eth/)
  })

  it('a stopped container is "try again later" (11)', async () => {
    const c = await noneContainer(image, 'stopped')
    await mustDocker('stop', '-t', '0', c.id)
    const out = await invoke(runtime, cniEnv('ADD', { cid: c.id, netns: target.netns, ifName: 'eth0' }), conf())
    assert.equal(out.doc?.['code'], 11, out.stdout)
    assert.deepEqual(await networkNames(c.id), ['none'])
  })
})
