/**
 * Teardown calls Docker sent while the daemon was down (killed, restarting) are lost: dockerd does
 * not send them again. What `docker network rm` sends afterwards must still leave nothing behind,
 * against the real `isthmus serve` over its plugin socket, on the real kernel.
 */
import { strict as assert } from 'node:assert'
import { after, describe, it } from 'node:test'
import { hostLinks, pluginCall, startPlugin, uniquePrefix, waitUntil, type PluginProcess } from '@isthmus/testkit'
import { createEndpoint, createNetwork, join, leave, removeNetwork } from './support/cnmCalls.js'
import { dockerId } from './support/harness.js'
import { ownedRulesUnder } from './support/protocol.js'
import { readState, summary } from './support/state.js'

const prefix = uniquePrefix('hdl')
let plugin: PluginProcess | undefined

describe('Docker teardown calls lost while the daemon was down (real daemon, real kernel)', () => {
  after(async () => {
    await plugin?.dispose()
  })

  it('network rm still removes every endpoint, address, link, rule and record', async () => {
    plugin = await startPlugin(`${prefix}-p`)
    const socket = plugin.socket
    const bridge = `${prefix.replace(/-/g, '')}b`.slice(0, 15)
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
    assert.equal((await pluginCall(socket, '/NetworkDriver.DeleteEndpoint', { NetworkID: networkId, EndpointID: c.id })).status, 200)
    await plugin.kill('SIGKILL')
    await plugin.start()
    const before = summary(await readState(plugin.stateDir))
    assert.equal(before.endpoints.length, 2, 'a and b are still stored')
    assert.equal(before.leases.filter((l) => l.includes('"kind":"runtime"')).length, 1, `c's address is still Docker's: ${before.leases.join(', ')}`)

    // docker network rm, as dockerd sends it: every call answers success.
    await removeNetwork(socket, { id: networkId, poolId: net.poolId, gateway: net.gateway })

    assert.deepEqual(summary(await readState(plugin.stateDir)), { networks: [], endpoints: [], sandboxes: [], pools: [], leases: [] })
    // the pairs' removals run after the answers (deferred): they are gone within moments
    await waitUntil('the links of a, b and the bridge to go', async () => {
      const links = await hostLinks()
      return [aLink, bLink, bridge].every((l) => !links.includes(l))
    }, 5_000, 50)
    assert.deepEqual(await ownedRulesUnder(plugin.chainPrefix), [])
  })
})
