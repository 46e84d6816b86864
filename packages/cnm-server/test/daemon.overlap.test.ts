/**
 * Concurrent CreateNetwork calls with overlapping subnets over the real socket of `isthmus
 * serve`: exactly one wins, each other gets one sentence, and only the winner's bridge exists.
 * Subnets: 10.244.0.0/16 (a /16 and /24s inside it; one try at a time, each cleaned up).
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import { bridgeIfName, type NetworkId } from '@isthmus/core'
import { hostLinks, pluginCall, startPlugin, uniquePrefix, type PluginProcess } from '@isthmus/testkit'
import { hexId, networkBody, ownedRulesUnder } from './support/protocol.js'
import { readState } from './support/state.js'

describe('overlapping networks created at the same time', { timeout: 180_000 }, () => {
  const prefix = uniquePrefix()
  let plugin: PluginProcess
  const call = (path: string, body?: unknown) => pluginCall(plugin.socket, path, body)

  before(async () => {
    plugin = await startPlugin(`${prefix}-ov`)
  })
  after(async () => {
    await plugin?.dispose()
  })

  // Send every creation at once; return who won, and check the losers' sentences and the bridges.
  const race = async (subnets: ReadonlyArray<string>) => {
    const ids = subnets.map(() => hexId())
    const answers = await Promise.all(
      ids.map((id, i) => call('/NetworkDriver.CreateNetwork', networkBody(id, subnets[i]!)))
    )
    try {
      const won = answers.flatMap((a, i) => (a.status === 200 ? [i] : []))
      assert.equal(won.length, 1, `exactly one creation wins: ${JSON.stringify(answers)}`)
      const winner = won[0]!
      for (const [i, a] of answers.entries()) {
        if (i === winner) continue
        assert.deepEqual(a, {
          status: 500,
          body: {
            Err: `invalid configuration: subnet ${subnets[i]} overlaps ${subnets[winner]} of network ${ids[winner]!.slice(0, 12)} on this host`
          }
        })
      }
      const links = new Set(await hostLinks())
      assert.deepEqual(
        ids.filter((id) => links.has(bridgeIfName(id as NetworkId))),
        [ids[winner]],
        'one bridge, the winner’s'
      )
      assert.deepEqual(
        (await readState(plugin.stateDir)).networks.map((n) => n.id),
        [ids[winner]]
      )
    } finally {
      for (const id of ids) {
        assert.deepEqual(await call('/NetworkDriver.DeleteNetwork', { NetworkID: id }), { status: 200, body: {} })
      }
    }
    const links = new Set(await hostLinks())
    assert.deepEqual(
      ids.filter((id) => links.has(bridgeIfName(id as NetworkId))),
      [],
      'no bridge left'
    )
  }

  it('of a /16 and a /24 inside it sent together, exactly one wins (10 tries)', async () => {
    for (let i = 0; i < 10; i++) {
      await race(i % 2 === 0 ? ['10.244.0.0/16', '10.244.7.0/24'] : ['10.244.7.0/24', '10.244.0.0/16'])
    }
  })

  it('of a burst of 8 creations that all overlap, exactly one wins (3 tries); nothing is left afterwards', async () => {
    // 10.244.0.0/16, /17, ... /23: nested, so every pair overlaps
    const nested = Array.from({ length: 8 }, (_, i) => `10.244.0.0/${16 + i}`)
    for (let i = 0; i < 3; i++) await race(i === 1 ? [...nested].reverse() : nested)
    assert.deepEqual(await ownedRulesUnder(plugin.chainPrefix), [])
    assert.deepEqual((await readState(plugin.stateDir)).networks, [])
  })
})
