/**
 * The daemon's own clean-up, against the real `isthmus serve` (testkit startPlugin) over its plugin
 * socket, on the real kernel: stopping as systemd stops it (SIGTERM to every process of the group),
 * kill -9 right after a DeleteEndpoint answer and a restart, and one bridge name used by network
 * after network. Every network here gets a bridge of this run's own (`hds…`) in 10.252.0.0/16.
 */
import { strict as assert } from 'node:assert'
import { readdirSync, readFileSync } from 'node:fs'
import { after, describe, it } from 'node:test'
import {
  bridgePorts,
  docker,
  ensureBusyboxImage,
  ensureDockerd,
  linkExists,
  mustRun,
  removeDockerObjects,
  run,
  startPlugin,
  uniquePrefix,
  waitUntil,
  type DockerDaemon,
  type PluginProcess
} from '@isthmus/testkit'
import { hostIfName, type EndpointId } from '@isthmus/core'
import { dockerId } from './support/harness.js'
import { createEndpoint, createNetwork, deleteEndpoint, deleteNetwork, join, leave } from './support/cnmCalls.js'

const prefix = uniquePrefix('hds')
const tag = prefix.replace(/-/g, '')
const started: PluginProcess[] = []
const bridges: string[] = []

const bridge = (n: string): string => {
  const b = `${tag}${n}`.slice(0, 15)
  bridges.push(b)
  return b
}

const plugin = async (name: string, processGroup = false): Promise<PluginProcess> => {
  const p = await startPlugin(`${prefix}-${name}`, [], { processGroup })
  started.push(p)
  return p
}

/** The PIDs of `pid`'s children (its kept `ip -batch` helpers). */
const childrenOf = (pid: number): ReadonlyArray<number> =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .flatMap((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid ? [Number(p)] : []
      } catch {
        return []
      }
    })

// A kept `ip -batch` helper, not the daemon's spawner (which the DeleteEndpoint below needs).
const isIp = (pid: number): boolean => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'ip'
  } catch {
    return false
  }
}

const spares = async (b: string): Promise<ReadonlyArray<string>> =>
  (await bridgePorts(b)).filter((p) => p.alias === 'isthmus-spare').map((p) => p.name)

let dockerd: DockerDaemon | undefined

after(async () => {
  await removeDockerObjects(prefix)
  await dockerd?.stop()
  for (const p of started) await p.dispose()
  for (const b of bridges) {
    for (const port of await bridgePorts(b)) await run(['ip', 'link', 'del', 'dev', port.name])
    await run(['ip', 'link', 'del', 'dev', b])
  }
})

describe('the daemon sweeps what it leaves (real daemon, real kernel)', () => {
  it('SIGTERM to its whole process group (systemd KillMode=control-group): exits 0 and leaves no spare pair', async () => {
    const p = await plugin('term', true)
    const b = bridge('t')
    const net = await createNetwork(p.socket, { id: dockerId(`${prefix}-term`), subnet: '10.252.1.0/24', bridge: b })
    assert.equal(net.status, 200, JSON.stringify(net.body))
    await waitUntil('two spare pairs on the bridge', async () => (await spares(b)).length === 2, 10_000)
    const helpers = childrenOf(p.pid())
    assert.ok(helpers.length > 0, 'the daemon keeps ip -batch helpers in its group')
    assert.equal(await p.killGroup('SIGTERM'), 0, p.logs().slice(-2000))
    assert.deepEqual(await spares(b), [], p.logs().slice(-2000))
    assert.ok(await linkExists(b), 'the network itself stays (Docker still has it)')
  })

  it('kill -9 right after DeleteEndpoint answers (an endpoint on a spare pair, then one with a published port on its own pair): a restart removes its links before it serves', async () => {
    const p = await plugin('kill')
    const b = bridge('k')
    const networkId = dockerId(`${prefix}-kill`)
    const net = await createNetwork(p.socket, { id: networkId, subnet: '10.252.2.0/24', bridge: b })
    assert.equal(net.status, 200, JSON.stringify(net.body))
    await waitUntil('two spare pairs on the bridge', async () => (await spares(b)).length === 2, 10_000)
    const cases = [
      {
        what: 'a spare pair',
        ep: { networkId, id: dockerId(`${prefix}-kill-a`), poolId: net.poolId },
        alias: () => 'isthmus-spare'
      },
      {
        what: 'its own pair',
        ep: { networkId, id: dockerId(`${prefix}-kill-b`), poolId: net.poolId, publish: 18231 },
        alias: () => `isthmus:endpoint:${dockerId(`${prefix}-kill-b`)}`
      }
    ]
    for (const { what, ep, alias } of cases) {
      const { address } = await createEndpoint(p.socket, ep)
      const hostEnd = (await join(p.socket, ep)).replace(/^istc/, 'istv')
      assert.equal((await bridgePorts(b)).find((l) => l.name === hostEnd)?.alias, alias(), what)
      if (ep.publish !== undefined) assert.equal(hostEnd, hostIfName(ep.id as EndpointId))
      await leave(p.socket, ep)
      // The daemon is idle (a spare taken is refilled 50 ms later); then its kept ip helpers are
      // stopped, so the removal DeleteEndpoint defers is handed to one and never done, and the
      // daemon and its helpers are killed right after the answer.
      await new Promise((r) => setTimeout(r, 300))
      const helpers = childrenOf(p.pid()).filter(isIp)
      for (const pid of helpers) process.kill(pid, 'SIGSTOP')
      try {
        await deleteEndpoint(p.socket, { ...ep, address })
        await p.kill('SIGKILL')
      } finally {
        for (const pid of helpers) {
          try {
            process.kill(pid, 'SIGKILL')
          } catch {
            // gone already
          }
        }
      }
      if (!(await linkExists(hostEnd))) {
        // The removal may have run before the kill: the spawner serves a pair's removal over
        // netlink itself (only the kept `ip` helpers are stopped: DeleteEndpoint of a published
        // port needs the spawner for iptables), and a pair of its own had neighbour entries, so
        // the kept helper that made it was ended after that batch (an `ip neigh` reads every
        // link). Put back what a kill before it leaves: the pair on the bridge, marked as it was.
        await mustRun([
          'ip',
          'link',
          'add',
          'name',
          hostEnd,
          'master',
          b,
          'up',
          'type',
          'veth',
          'peer',
          'name',
          hostEnd.replace(/^istv/, 'istc')
        ])
        await mustRun(['ip', 'link', 'set', 'dev', hostEnd, 'alias', alias()])
      }
      assert.ok(await linkExists(hostEnd), `${what}: the link outlived the daemon`)

      const restarted = Date.now()
      await p.start()
      // Removed before it serves: by the time it answers, the bridge has no port (the spares the
      // dead daemon kept went too).
      assert.deepEqual(await bridgePorts(b), [], what)
      assert.ok(!(await linkExists(hostEnd.replace(/^istv/, 'istc'))), `${what}: both ends went`)
      assert.match(
        p.logs(),
        ep.publish === undefined ? /removed spare links left by an earlier run/ : /removed what an earlier run left/
      )
      assert.ok(Date.now() - restarted < 15_000)
    }
    await deleteNetwork(p.socket, networkId, net.poolId)
    assert.equal(await linkExists(b), false)
  })

  it('one bridge name for network after network, each with endpoints: a second network naming it is refused while the first exists, and nothing is left', async () => {
    const p = await plugin('reuse')
    const b = bridge('r')
    for (const i of [0, 1, 2]) {
      const id = dockerId(`${prefix}-reuse-${i}`)
      const net = await createNetwork(p.socket, { id, subnet: `10.252.${10 + (i % 2)}.0/24`, bridge: b })
      assert.equal(net.status, 200, JSON.stringify(net.body))
      // Another network naming the same bridge while this one exists: one sentence, nothing made.
      const clash = await createNetwork(p.socket, {
        id: dockerId(`${prefix}-clash-${i}`),
        subnet: '10.252.20.0/24',
        bridge: b
      })
      assert.equal(clash.status, 500)
      assert.equal(
        clash.body['Err'],
        `invalid configuration: bridge ${b} is already the bridge of network ${id.slice(0, 12)} (${id}); name another bridge or remove that network first`
      )
      const eps = [0, 1].map((j) => ({
        networkId: id,
        id: dockerId(`${prefix}-reuse-${i}-${j}`),
        poolId: net.poolId,
        ...(j === 1 ? { publish: 18240 + i } : {})
      }))
      const addrs = []
      for (const ep of eps) addrs.push(await createEndpoint(p.socket, ep))
      for (const [j, ep] of eps.entries()) await deleteEndpoint(p.socket, { ...ep, address: addrs[j]!.address })
      // At once: the pairs are still being removed in the background, spares still being refilled.
      await deleteNetwork(p.socket, id, net.poolId)
    }
    await waitUntil('nothing on the host', async () => !(await linkExists(b)), 5_000, 50)
    const ours = (await run(['ip', '-json', '-details', 'link', 'show'])).stdout
    assert.ok(!ours.includes(`isthmus:endpoint:${dockerId(`${prefix}-reuse-0-0`)}`))
  })

  it('docker: network rm and create with one bridge name at the same time, round after round (a container each): a clash is one sentence, and no bridge or link is left', async () => {
    dockerd = await ensureDockerd()
    const image = await ensureBusyboxImage()
    const p = await plugin('docker')
    const b = bridge('d')
    const create = (i: number) =>
      docker(
        'network',
        'create',
        '-d',
        p.name,
        '--ipam-driver',
        p.name,
        '--subnet',
        `10.252.${30 + (i % 2)}.0/24`,
        '-o',
        `com.docker.network.bridge.name=${b}`,
        `${prefix}-d${i}`
      )
    const sentence = new RegExp(
      `bridge ${b} is already the bridge of network \\w+ \\(\\w+\\); name another bridge or remove that network first`
    )
    assert.equal((await create(0)).code, 0)
    for (const i of [1, 2, 3, 4]) {
      const ran = await docker('run', '--rm', '--net', `${prefix}-d${i - 1}`, image, 'true')
      assert.equal(ran.code, 0, ran.stderr)
      const [rm, made] = await Promise.all([docker('network', 'rm', `${prefix}-d${i - 1}`), create(i)])
      assert.equal(rm.code, 0, rm.stderr)
      // Docker sends the old network's DeleteNetwork after or before the new one's CreateNetwork:
      // before, the new one is made; after, it is refused in one sentence and made once the old is gone.
      if (made.code !== 0) {
        assert.match(made.stderr, sentence)
        assert.equal((await create(i)).code, 0)
      }
      const alias = (
        JSON.parse((await run(['ip', '-json', 'link', 'show', 'dev', b])).stdout) as Array<{ ifalias?: string }>
      )[0]?.ifalias
      const id = (await docker('network', 'inspect', '-f', '{{.Id}}', `${prefix}-d${i}`)).stdout.trim()
      assert.equal(alias, `isthmus:net:${id}`, `round ${i}: the bridge is the new network's`)
    }
    assert.equal((await docker('run', '--rm', '--net', `${prefix}-d4`, image, 'true')).code, 0)
    assert.equal((await docker('network', 'rm', `${prefix}-d4`)).code, 0)
    await waitUntil('the bridge gone', async () => !(await linkExists(b)), 5_000, 50)
    assert.doesNotMatch(p.logs(), /"level":"(warn|error)"/)
  })
})
