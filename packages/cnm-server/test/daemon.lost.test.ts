/**
 * Teardown calls Docker sent while the daemon was down (killed, restarting) are lost: dockerd does
 * not send them again. What `docker network rm` sends afterwards must still leave nothing behind,
 * against the real `isthmus serve` over its plugin socket, on the real kernel.
 */
import { strict as assert } from 'node:assert'
import { rm } from 'node:fs/promises'
import { after, describe, it } from 'node:test'
import {
  bridgePorts,
  hostLinks,
  linkExists,
  pluginCall,
  run,
  startPlugin,
  uniquePrefix,
  waitUntil,
  type PluginProcess
} from '@isthmus/testkit'
import { createEndpoint, createNetwork, join, leave, removeNetwork } from './support/cnmCalls.js'
import { dockerId } from './support/harness.js'
import { ownedRulesUnder } from './support/protocol.js'
import { readState, summary } from './support/state.js'
import { layout } from '@isthmus/store-fs'

const prefix = uniquePrefix('hdl')
const tag = prefix.replace(/-/g, '')
let plugin: PluginProcess | undefined
let other: PluginProcess | undefined
const bridges: string[] = []
const bridgeName = (n: string): string => {
  const b = `${tag}${n}`.slice(0, 15)
  bridges.push(b)
  return b
}

describe('Docker teardown calls lost while the daemon was down (real daemon, real kernel)', () => {
  after(async () => {
    await plugin?.dispose()
    await other?.dispose()
    // what a failed run left: each bridge's ports (spare pairs), then the bridge
    for (const b of bridges) {
      for (const port of await bridgePorts(b)) await run(['ip', 'link', 'del', 'dev', port.name])
      await run(['ip', 'link', 'del', 'dev', b])
    }
  })

  it('network rm still removes every endpoint, address, link, rule and record', async () => {
    plugin = await startPlugin(`${prefix}-p`)
    const socket = plugin.socket
    const bridge = bridgeName('b')
    const net = await createNetwork(socket, { id: dockerId(`${prefix}-net`), subnet: '10.252.77.0/24', bridge })
    assert.equal(net.status, 200, JSON.stringify(net.body))
    const networkId = (await readState(plugin.stateDir)).networks[0]!.id

    // Container a: Leave answered, then the daemon died: DeleteEndpoint and ReleaseAddress lost.
    const a = { networkId, id: dockerId(`${prefix}-a`), poolId: net.poolId }
    await createEndpoint(socket, a)
    const aLink = await join(socket, a)
    await leave(socket, a)
    // Container b publishes a port (a pair of its own, not a spare) and loses the same calls.
    const b = { networkId, id: dockerId(`${prefix}-b`), poolId: net.poolId, publish: 18931 }
    await createEndpoint(socket, b)
    const bLink = await join(socket, b)
    await leave(socket, b)
    // Container c: DeleteEndpoint answered, its ReleaseAddress lost.
    const c = { networkId, id: dockerId(`${prefix}-c`), poolId: net.poolId }
    await createEndpoint(socket, c)
    await join(socket, c)
    await leave(socket, c)
    assert.equal(
      (await pluginCall(socket, '/NetworkDriver.DeleteEndpoint', { NetworkID: networkId, EndpointID: c.id })).status,
      200
    )
    await plugin.kill('SIGKILL')
    await plugin.start()
    const before = summary(await readState(plugin.stateDir))
    assert.equal(before.endpoints.length, 2, 'a and b are still stored')
    assert.equal(
      before.leases.filter((l) => l.includes('"kind":"runtime"')).length,
      1,
      `c's address is still Docker's: ${before.leases.join(', ')}`
    )

    // docker network rm, as dockerd sends it: every call answers success.
    await removeNetwork(socket, { id: networkId, poolId: net.poolId, gateway: net.gateway })

    assert.deepEqual(summary(await readState(plugin.stateDir)), {
      networks: [],
      endpoints: [],
      pools: [],
      leases: []
    })
    // the pairs' removals run after the answers (deferred): they are gone within moments
    await waitUntil(
      'the links of a, b and the bridge to go',
      async () => {
        const links = await hostLinks()
        return [aLink, bLink, bridge].every((l) => !links.includes(l))
      },
      5_000,
      50
    )
    assert.deepEqual(await ownedRulesUnder(plugin.chainPrefix), [])
  })

  it("a bridge whose CreateNetwork was cut short (no record) goes at the next start; another state directory's and a CNI network's stay", async () => {
    const p = plugin ?? (plugin = await startPlugin(`${prefix}-p`))
    other = await startPlugin(`${prefix}-o`)
    const docker = await createNetwork(p.socket, {
      id: dockerId(`${prefix}-cut`),
      subnet: '10.252.78.0/24',
      bridge: bridgeName('c')
    })
    const cni = await pluginCall(p.socket, '/NetworkDriver.CreateNetwork', {
      NetworkID: `${prefix}-cni`,
      Options: { 'com.docker.network.generic': { 'com.docker.network.bridge.name': bridgeName('n') } },
      IPv4Data: [{ AddressSpace: 'isthmus-local', Gateway: '10.252.79.1/24', Pool: '10.252.79.0/24' }],
      IPv6Data: []
    })
    const elsewhere = await createNetwork(other.socket, {
      id: dockerId(`${prefix}-else`),
      subnet: '10.252.80.0/24',
      bridge: bridgeName('e')
    })
    for (const r of [docker, cni, elsewhere]) assert.equal(r.status, 200, JSON.stringify(r.body))
    const [cut, cniBridge, otherBridge] = bridges.slice(-3) as [string, string, string]
    // Killed after the bridge and its rules, before the record: the record is what never came.
    await p.kill('SIGKILL')
    for (const id of [dockerId(`${prefix}-cut`), `${prefix}-cni`]) await rm(layout(p.stateDir).record('networks', id))
    await p.start()
    assert.equal(await linkExists(cut), false, "the cut-short network's bridge is gone")
    assert.deepEqual(
      (await ownedRulesUnder(p.chainPrefix)).filter((r) => r.includes(dockerId(`${prefix}-cut`))),
      [],
      'and its rules'
    )
    assert.ok(await linkExists(cniBridge), 'a network the daemon does not make alone (CNI-named) is left')
    assert.ok(await linkExists(otherBridge), "another daemon's network is left")
    const said = p
      .logs()
      .split('\n')
      .filter((l) => l.includes('"removed what an earlier run left"'))
    assert.ok(
      said.some((l) => l.includes(`"devices":["${cut}"]`)),
      said.join('\n')
    )
  })
})
