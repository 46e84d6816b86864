import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import { createEndpoint, deleteEndpoint, deleteNetwork, ensureNetwork, io, type NetworkId } from '@isthmus/core'
import { testEnv } from '@isthmus/core/testing'
import { cniRequest, dockerRequest, left, NET, right, spec, storedNetwork } from './fixtures.js'

describe('deleteNetwork', () => {
  it('removes the network from the host, the control plane and the store', async () => {
    const t = testEnv()
    await right(t.run(ensureNetwork(spec())))
    await right(t.run(deleteNetwork(NET)))
    assert.equal(await storedNetwork(t, NET), undefined)
    assert.deepEqual(t.dataplane.state.networks(), [])
    assert.deepEqual(t.dataplane.state.devices(), [])
    assert.deepEqual(t.controlPlane.state.networks(), [])
  })

  it('refuses while endpoints exist, and succeeds once they are gone', async () => {
    const t = testEnv()
    await right(t.run(ensureNetwork(spec())))
    const a = cniRequest('a')
    await right(t.run(createEndpoint(NET, a)))
    assert.deepEqual(await left(t.run(deleteNetwork(NET))), {
      _tag: 'AlreadyExists',
      kind: 'network',
      id: NET,
      detail: `has 1 endpoint: ${a.id}`
    })
    assert.ok(await storedNetwork(t, NET))
    assert.equal(t.dataplane.probe.callsOf('deleteNetwork').length, 0)
    assert.deepEqual(t.controlPlane.state.networks(), [NET])

    await right(t.run(deleteEndpoint(a.id)))
    await right(t.run(deleteNetwork(NET)))
    assert.equal(await storedNetwork(t, NET), undefined)
  })

  it('names a few endpoints and counts the rest', async () => {
    const t = testEnv()
    await right(t.run(ensureNetwork(spec())))
    for (const c of ['a', 'b', 'c', 'd', 'e']) await right(t.run(createEndpoint(NET, cniRequest(c))))
    const e = await left(t.run(deleteNetwork(NET)))
    assert.equal(e._tag, 'AlreadyExists')
    assert.match(e._tag === 'AlreadyExists' ? e.detail : '', /^has 5 endpoints: cni-\S+, cni-\S+, cni-\S+, and 2 more$/)
  })

  it('succeeds twice, and for a network never created', async () => {
    const t = testEnv()
    await right(t.run(ensureNetwork(spec())))
    await right(t.run(deleteNetwork(NET)))
    await right(t.run(deleteNetwork(NET)))
    await right(t.run(deleteNetwork('never' as NetworkId)))
    assert.equal(t.dataplane.probe.callsOf('deleteNetwork').length, 1)
  })

  it('keeps the record when a step fails, so a retry finishes', async () => {
    const t = testEnv()
    await right(t.run(ensureNetwork(spec())))
    const failure = io('controlPlane.deleteNetwork', 'boom')
    t.controlPlane.probe.failAt({ method: 'deleteNetwork', nth: 1, error: failure })
    assert.deepEqual(await left(t.run(deleteNetwork(NET))), failure)
    assert.ok(await storedNetwork(t, NET))
    await right(t.run(deleteNetwork(NET)))
    assert.equal(await storedNetwork(t, NET), undefined)
    assert.deepEqual(t.controlPlane.state.networks(), [])
  })

  it("with endpointsGoneOf 'docker', deletes Docker endpoints still stored (their teardown was lost) and then the network; a CNI attachment still refuses it", async () => {
    const t = testEnv()
    await right(t.run(ensureNetwork(spec())))
    const d = dockerRequest('d1')
    await right(t.run(createEndpoint(NET, d)))
    await right(t.run(deleteNetwork(NET, { endpointsGoneOf: 'docker' })))
    assert.equal(await storedNetwork(t, NET), undefined)
    assert.deepEqual(t.dataplane.probe.callsOf('deleteEndpoint').length, 1, "the endpoint's links went first")
    assert.deepEqual(t.controlPlane.state.networks(), [])

    await right(t.run(ensureNetwork(spec())))
    const a = cniRequest('a')
    await right(t.run(createEndpoint(NET, dockerRequest('d2'))))
    await right(t.run(createEndpoint(NET, a)))
    const e = await left(t.run(deleteNetwork(NET, { endpointsGoneOf: 'docker' })))
    assert.deepEqual(e, { _tag: 'AlreadyExists', kind: 'network', id: NET, detail: `has 1 endpoint: ${a.id}` })
  })
})
