import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import { createEndpoint, deleteEndpoint, ensureNetwork, io, join, notFound, type EndpointId } from '@isthmus/core'
import { testEnv, type TestEnv } from '@isthmus/core/testing'
import {
  assertNoTraceOf,
  cniRequest,
  ifn,
  left,
  NET,
  netns,
  right,
  spec,
  storedEndpoint,
  storedNetwork,
  interfacesIn
} from './fixtures.js'

const joined = async (): Promise<{ t: TestEnv; id: EndpointId }> => {
  const t = testEnv()
  const req = { ...cniRequest('ctr1'), portMappings: [{ protocol: 'tcp' as const, containerPort: 80, hostPort: 8080 }] }
  await right(t.run(ensureNetwork(spec())))
  await right(t.run(createEndpoint(NET, req)))
  await right(t.run(join(req.id, { _tag: 'PluginMoves', sandbox: netns('x'), ifName: ifn('eth0') })))
  return { t, id: req.id }
}

describe('deleteEndpoint', () => {
  it('removes everything the endpoint holds, also when leave was skipped', async () => {
    const { t, id } = await joined()
    assert.equal(t.dataplane.state.published(id).length, 1)
    await right(t.run(deleteEndpoint(id)))
    await assertNoTraceOf(t, id)
    assert.deepEqual(t.controlPlane.state.held(), [])
    assert.deepEqual(await interfacesIn(t, netns('x')), [])
    assert.ok(await storedNetwork(t, NET), 'the network stays')
  })

  it('runs its steps in order: agent, ports, links, addresses, then the record', async () => {
    const { t, id } = await joined()
    const from = t.journal.calls.length
    await right(t.run(deleteEndpoint(id)))
    const order = t.journal.calls
      .slice(from)
      .map((c) => `${c.port}.${c.method}`)
      .filter((m) => !m.endsWith('.get') && m !== 'store.withLock')
    assert.deepEqual(order, [
      'agent.deletePort',
      'dataplane.unpublishPorts',
      'dataplane.deleteEndpoint',
      'controlPlane.deleteEndpoint',
      'store.endpoints.delete'
    ])
  })

  it('succeeds twice, and for an endpoint never created', async () => {
    const { t, id } = await joined()
    await right(t.run(deleteEndpoint(id)))
    await right(t.run(deleteEndpoint(id)))
    await right(t.run(deleteEndpoint('never' as EndpointId)))
    await assertNoTraceOf(t, id)
  })

  it('treats NotFound from any port as done', async () => {
    const { t, id } = await joined()
    t.agent.probe.failAt({ method: 'deletePort', error: notFound('endpoint', id) })
    t.controlPlane.probe.failAt({ method: 'deleteEndpoint', error: notFound('endpoint', id) })
    await right(t.run(deleteEndpoint(id)))
    assert.equal(await storedEndpoint(t, id), undefined)
    assert.deepEqual(t.dataplane.state.linksOf(id), [])
  })

  it('stops at a failing step with the record kept, so a retry finishes the job', async () => {
    const { t, id } = await joined()
    const failure = io('controlPlane.deleteEndpoint', 'controller unreachable')
    t.controlPlane.probe.failAt({ method: 'deleteEndpoint', nth: 1, error: failure })
    assert.deepEqual(await left(t.run(deleteEndpoint(id))), failure)
    assert.ok(await storedEndpoint(t, id), 'record kept')
    assert.deepEqual(t.dataplane.state.linksOf(id), [], 'the steps before it ran')
    assert.equal(t.controlPlane.state.heldBy(id).length, 1, 'the address is still held')
    await right(t.run(deleteEndpoint(id)))
    await assertNoTraceOf(t, id)
    assert.deepEqual(await interfacesIn(t, netns('x')), [])
  })

  it('refuses, rather than reporting NotFound, when the endpoint’s network record is gone', async () => {
    const { t, id } = await joined()
    await right(t.env.store.networks.delete(NET)())
    assert.equal((await left(t.run(deleteEndpoint(id))))._tag, 'InvalidConfig')
    assert.ok(await storedEndpoint(t, id))
  })
})
