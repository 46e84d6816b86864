/**
 * One network, both frontends (docs/one-network.md), on the real dockerd 20.10, `isthmus serve`
 * and the kernel: a network Docker made with the isthmus drivers, named in a CNI netconf
 * (`dockerNetwork`, by name and by id), and a network made by CNI ADD, used by Docker
 * (`-o cni-network=<name>`). Either way a Docker container and a CNI sandbox (a namespace made
 * here) sit on one bridge, take addresses from one pool, and ping each other; removing
 * everything leaves no link, namespace or lease.
 *
 * Subnets: random /24s of 10.242.32.0/20; names start with this run's prefix.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import { deleteNetwork, silentLogger, type NetworkId } from '@isthmus/core'
import {
  containerNetworks,
  docker,
  ensureBusyboxImage,
  ensureDockerd,
  linkExists,
  mustDocker,
  pings as containerPings,
  removeDockerObjects,
  startPlugin,
  uniquePrefix,
  type DockerDaemon,
  type PluginProcess
} from '@isthmus/testkit'
import type { Cni } from '@isthmus/cni-exec'
import { cniEnv, firewallLines, invoke, link, pings, realRuntime, requireRoot, Scope, sh } from './support.js'
import { leasesIn } from './dockerSupport.js'

const prefix = uniquePrefix('ison')
const name = (s: string) => `${prefix}-${s}`
const base = 32 + 2 * Math.floor(Math.random() * 8)
const [subnetD, subnetC] = [`10.242.${base}`, `10.242.${base + 1}`]
const scope = new Scope()
const runtime = realRuntime()

/** The bridge of a container's eth0: the master of its peer in the host (found by the peer's ifindex). */
const bridgeOf = async (container: string): Promise<string | undefined> => {
  const peer = Number((await mustDocker('exec', container, 'cat', '/sys/class/net/eth0/iflink')).stdout.trim())
  return (JSON.parse(sh('ip', ['-json', 'link', 'show'])) as Array<{ ifindex: number; master?: string }>).find(
    (l) => l.ifindex === peer
  )?.master
}
const ports = (bridge: string): string[] =>
  (JSON.parse(sh('ip', ['-json', 'link', 'show', 'master', bridge])) as Array<{ ifname: string }>).map((l) => l.ifname)

describe('one network, both frontends', { timeout: 240_000 }, () => {
  let daemon: DockerDaemon | undefined
  let plugin: PluginProcess | undefined
  let image = ''
  const conf = (over: Record<string, unknown>) => ({
    cniVersion: '1.0.0',
    type: 'isthmus',
    stateDir: plugin?.stateDir,
    chainPrefix: scope.chainPrefix,
    ...over
  })
  // On a Docker-made network: the daemon's state directory and chain prefix.
  const dconf = (over: Record<string, unknown>) => ({
    cniVersion: '1.0.0',
    type: 'isthmus',
    name: name('cni-d'),
    stateDir: plugin?.stateDir,
    chainPrefix: plugin?.chainPrefix,
    ...over
  })
  // Every CNI attachment made here, DELeted in `after` before Docker's networks go (also on failure).
  const made: Array<{ readonly cid: string; readonly netns: string; readonly conf: Record<string, unknown> }> = []
  const add = async (cid: string, netns: string, c: Record<string, unknown>) => {
    made.push({ cid, netns, conf: c })
    return invoke(runtime, cniEnv('ADD', { cid, netns, ifName: 'eth0' }), c)
  }

  before(async () => {
    requireRoot()
    daemon = await ensureDockerd()
    image = await ensureBusyboxImage()
    plugin = await startPlugin(name('p'))
  })
  after(async () => {
    for (const m of made) await invoke(runtime, cniEnv('DEL', { cid: m.cid, netns: m.netns, ifName: 'eth0' }), m.conf)
    await removeDockerObjects(prefix)
    await plugin?.dispose()
    await scope.cleanup()
    await daemon?.stop()
  })

  it('a Docker-made network named in a CNI netconf: one bridge, one pool, ping both ways; DEL finishes a network Docker dropped', async () => {
    const P = plugin!.name
    const netD = name('dnet')
    const id = (
      await mustDocker('network', 'create', '-d', P, '--ipam-driver', P, '--subnet', `${subnetD}.0/24`, netD)
    ).stdout.trim()
    await mustDocker('run', '-d', '--name', name('d1'), '--net', netD, image, 'sleep', '600')
    const d1 = (await containerNetworks(name('d1')))[netD]!

    // By name (resolved through the Engine API) and by full id (no Docker call needed).
    const sandboxes = [scope.addNetns('da'), scope.addNetns('db')]
    const refs = [netD, id]
    const results: Cni.Result100[] = []
    for (const [i, ns] of sandboxes.entries()) {
      const c = dconf({ dockerNetwork: { network: refs[i] } })
      const out = await add(`${prefix}-d${i}`, ns.path, c)
      assert.equal(out.exitCode, 0, out.stdout)
      results.push(out.doc as Cni.Result100)
    }
    const addresses = [d1.IPAddress, ...results.map((r) => r.ips?.[0]?.address.split('/')[0])]
    assert.equal(new Set(addresses).size, 3, `three distinct addresses: ${addresses.join(', ')}`)
    const bridge = results[0]?.interfaces?.[0]?.name ?? ''
    for (const r of results) {
      assert.equal(r.interfaces?.[0]?.name, bridge, "the Docker network's bridge")
      assert.equal(link(r.interfaces?.[1]?.name ?? '')?.master, bridge)
      assert.equal(r.ips?.[0]?.gateway, d1.Gateway)
      assert.match(r.ips?.[0]?.address ?? '', new RegExp(`^${subnetD.replace(/\./g, '\\.')}\\.\\d+/24$`))
    }
    const onBridge = ports(bridge)
    for (const l of results.map((r) => r.interfaces?.[1]?.name ?? '')) {
      assert.ok(onBridge.includes(l), `${l} on ${bridge}`)
    }
    assert.equal(await bridgeOf(name('d1')), bridge, 'the Docker container on the same bridge')
    assert.ok(pings(sandboxes[0]!.name, d1.IPAddress), 'CNI sandbox → Docker container')
    assert.ok(await containerPings(name('d1'), addresses[2]!, 3), 'Docker container → CNI sandbox')

    const check = await invoke(
      runtime,
      cniEnv('CHECK', { cid: `${prefix}-d0`, netns: sandboxes[0]!.path, ifName: 'eth0' }),
      dconf({ dockerNetwork: { network: netD }, prevResult: results[0] })
    )
    assert.equal(check.exitCode, 0, check.stdout)

    // The Docker network's pool serves both: Docker allocates around the CNI addresses.
    await mustDocker('run', '-d', '--name', name('d2'), '--net', netD, image, 'sleep', '600')
    assert.ok(!addresses.includes((await containerNetworks(name('d2')))[netD]!.IPAddress))

    await mustDocker('rm', '-f', name('d1'), name('d2'))
    const del1 = await invoke(
      runtime,
      cniEnv('DEL', { cid: `${prefix}-d1`, netns: sandboxes[1]!.path, ifName: 'eth0' }),
      dconf({ dockerNetwork: { network: id } })
    )
    assert.equal(del1.exitCode, 0, del1.stdout)

    // dockerd 20.10 removes its network although the driver refuses (a CNI attachment is left):
    // the isthmus network stays until that attachment's DEL, which finds it without Docker's name.
    await mustDocker('network', 'rm', netD)
    assert.ok(await linkExists(bridge), 'isthmus keeps the network while a CNI attachment is on it')
    const del0 = await invoke(
      runtime,
      cniEnv('DEL', { cid: `${prefix}-d0`, netns: sandboxes[0]!.path, ifName: 'eth0' }),
      dconf({ dockerNetwork: { network: netD } })
    )
    assert.equal(del0.exitCode, 0, del0.stdout)
    assert.ok(!(await linkExists(bridge)), 'the last DEL removed the network Docker had dropped')
    assert.deepEqual(firewallLines(id), [])
    assert.deepEqual(await leasesIn(plugin!.stateDir, subnetD), [])
    const again = await invoke(
      runtime,
      cniEnv('DEL', { cid: `${prefix}-d0`, netns: sandboxes[0]!.path, ifName: 'eth0' }),
      dconf({ dockerNetwork: { network: netD } })
    )
    assert.equal(again.exitCode, 0, again.stdout)
  })

  it("a CNI-made network used by Docker (-o cni-network): one bridge, one pool, ping both ways; the bridge stays the CNI network's", async () => {
    const P = plugin!.name
    const cniName = name('cni-c')
    const bridge = scope.bridge('c')
    const c = conf({ name: cniName, bridge, ipMasq: true, ipam: { ranges: [[{ subnet: `${subnetC}.0/24` }]] } })
    const ns = scope.addNetns('ca')
    const out = await add(`${prefix}-c0`, ns.path, c)
    assert.equal(out.exitCode, 0, out.stdout)
    const cniAddress = ((out.doc as Cni.Result100).ips?.[0]?.address ?? '').split('/')[0] ?? ''

    const wrong = await docker(
      'network',
      'create',
      '-d',
      P,
      '--ipam-driver',
      P,
      '--subnet',
      `10.242.${base + 16}.0/24`,
      '-o',
      `cni-network=${cniName}`,
      name('wrong')
    )
    assert.notEqual(wrong.code, 0, 'another subnet is refused')
    assert.match(wrong.stderr, /cni-network/)

    const netC = name('cnet')
    await mustDocker(
      'network',
      'create',
      '-d',
      P,
      '--ipam-driver',
      P,
      '--subnet',
      `${subnetC}.0/24`,
      '-o',
      `cni-network=${cniName}`,
      netC
    )
    await mustDocker('run', '-d', '--name', name('c1'), '--net', netC, image, 'sleep', '600')
    const c1 = (await containerNetworks(name('c1')))[netC]!
    assert.notEqual(c1.IPAddress, cniAddress)
    assert.equal(c1.Gateway, `${subnetC}.1`)
    assert.equal(await bridgeOf(name('c1')), bridge, "the Docker container is on the CNI network's bridge")
    assert.ok(pings(ns.name, c1.IPAddress), 'CNI sandbox → Docker container')
    assert.ok(await containerPings(name('c1'), cniAddress, 3), 'Docker container → CNI sandbox')

    // Docker leaves; the CNI network and its bridge stay, with the CNI sandbox's address.
    await mustDocker('rm', '-f', name('c1'))
    await mustDocker('network', 'rm', netC)
    assert.ok(await linkExists(bridge))
    assert.ok(pings(ns.name, `${subnetC}.1`), 'the gateway is still on the bridge')
    assert.deepEqual(await leasesIn(plugin!.stateDir, subnetC), [cniAddress])

    const del = await invoke(runtime, cniEnv('DEL', { cid: `${prefix}-c0`, netns: ns.path, ifName: 'eth0' }), c)
    assert.equal(del.exitCode, 0, del.stdout)
    // CNI never deletes networks; the core does, as an operator would.
    const opened = await runtime.open({ stateDir: plugin!.stateDir, chainPrefix: scope.chainPrefix }, silentLogger)()
    assert.ok(E.isRight(opened))
    const gone = await deleteNetwork(cniName as NetworkId)(opened.right.env)()
    await opened.right.close()
    assert.ok(E.isRight(gone), JSON.stringify(gone))
    assert.ok(!(await linkExists(bridge)))
    assert.deepEqual(await leasesIn(plugin!.stateDir, subnetC), [])
  })
})
