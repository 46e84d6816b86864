/**
 * STATUS code 50 when the network's range has no free address (CNI SPEC 1.1.0 §STATUS, its own
 * example), on the real kernel and file store: ready before the first ADD, 50 naming the network
 * and the range once both addresses are held, ready again after a DEL.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import { cniEnv, errorDoc, invoke, realRuntime, requireRoot, Scope } from './support.js'

const scope = new Scope()
const runtime = realRuntime()
const stateDir = scope.tmpDir('state')
const name = `full-${scope.id}`
const conf = {
  cniVersion: '1.1.0',
  name,
  type: 'isthmus',
  bridge: scope.bridge('f'),
  isGateway: true,
  stateDir,
  chainPrefix: scope.chainPrefix,
  ipam: { ranges: [[{ subnet: '10.231.147.0/24', rangeStart: '10.231.147.10', rangeEnd: '10.231.147.11' }]] }
}
const status = () => invoke(runtime, cniEnv('STATUS', { path: '' }), conf)

describe('STATUS with a full range', () => {
  before(requireRoot)
  after(() => scope.cleanup())

  it('is ready before the first ADD, 50 with both addresses held, ready again after a DEL', async () => {
    const before = await status()
    assert.deepEqual([before.exitCode, before.stdout], [0, ''])

    const [nsA, nsB] = ['a', 'b'].map((tag) => scope.addNetns(tag).path) as [string, string]
    for (const [i, ns] of [nsA, nsB].entries()) {
      const out = await invoke(runtime, cniEnv('ADD', { cid: `ctr-${i}`, netns: ns, ifName: 'eth0' }), conf)
      assert.equal(out.exitCode, 0, out.stdout)
    }

    const full = await status()
    assert.notEqual(full.exitCode, 0)
    const doc = errorDoc(full)
    assert.equal(doc.code, 50)
    assert.equal(doc.msg, `no free address in network ${name}`)
    assert.equal(
      doc.details,
      'all 2 IPv4 addresses of 10.231.147.10-10.231.147.11 of 10.231.147.0/24 are in use; ' +
        'DEL an attachment or widen the range'
    )

    const del = await invoke(runtime, cniEnv('DEL', { cid: 'ctr-0', netns: nsA, ifName: 'eth0' }), conf)
    assert.equal(del.exitCode, 0, del.stdout)
    const again = await status()
    assert.deepEqual([again.exitCode, again.stdout], [0, ''])

    const rest = await invoke(runtime, cniEnv('DEL', { cid: 'ctr-1', netns: nsB, ifName: 'eth0' }), conf)
    assert.equal(rest.exitCode, 0, rest.stdout)
  })
})
