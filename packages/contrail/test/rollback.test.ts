/**
 * createEndpoint's rollback on the Contrail control plane: what is undone, in which order, and
 * that an undo the controller refuses is logged with its step (the saga of @isthmus/core), while
 * the flow still fails with the step's own error.
 */
import { strict as assert } from 'node:assert'
import { after, afterEach, before, describe, it } from 'node:test'
import {
  builtinControlPlane,
  compositeControlPlane,
  createEndpoint,
  describe as describeError,
  ensureNetwork,
  makeIpam,
  type Env
} from '@isthmus/core'
import { testEnv } from '@isthmus/core/testing'
import { configApi, contrailControlPlane, removeEndpointObjects, vrouterAgent } from '@isthmus/contrail'
import { contrailSpec, epId, FAST, left, NET, right, startSims, TENANT, type Sims } from './support/helpers.js'
import { OWNER } from './support/env.js'

/** A core Env whose config API client logs where the flows log, as the daemon wires it. */
const loggingEnv = (sims: Sims) => {
  const t = testEnv()
  const api = configApi({ url: sims.contrail.url, auth: { kind: 'none' }, policy: FAST, log: t.log.port })
  const store = t.env.store
  const controlPlane = compositeControlPlane({
    controller: contrailControlPlane({ api, owner: OWNER, store }),
    builtin: builtinControlPlane(makeIpam({ store, clock: t.env.clock }), store)
  })
  const env: Env = { ...t.env, controlPlane, agent: vrouterAgent({ url: sims.agent.url, policy: FAST }) }
  return { t, api, env }
}

const request = (id: string) => ({
  id: epId(id),
  owner: { kind: 'docker' as const, endpointId: epId(id) },
  addresses: [{ _tag: 'Any' as const, family: 4 as const }]
})

const deletes = (sims: Sims, from: number): ReadonlyArray<string> =>
  sims.contrail.journal
    .slice(from)
    .filter((e) => e.method === 'DELETE')
    .map((e) => `${e.path.split('/')[1]} ${e.status}`)

describe('Contrail createEndpoint rollback through core’s saga', () => {
  let sims: Sims
  before(async () => {
    sims = await startSims()
  })
  after(async () => sims.close())
  afterEach(() => sims.contrail.clearFaults())

  it('undoes in the order the server accepts: instance-ip, interface, VM', async () => {
    const { t, env } = loggingEnv(sims)
    await right(ensureNetwork(contrailSpec())(env)())
    sims.contrail.inject({
      method: 'GET',
      path: /^\/instance-ip\//,
      nth: 1,
      status: 400,
      body: 'injected refusal of the read'
    })
    const from = sims.contrail.journal.length
    const e = await left(createEndpoint(NET, request('ep-rb-order'))(env)())
    assert.match(describeError(e), /refused read instance-ip .* \(HTTP 400\): injected refusal of the read$/)
    assert.deepEqual(deletes(sims, from), ['instance-ip 200', 'virtual-machine-interface 200', 'virtual-machine 200'])
    assert.deepEqual(sims.contrail.created(), [])
    assert.deepEqual(t.log.state.at('warn'), [])
  })

  it('an undo the controller refuses is logged with its step; the flow fails with the step’s error', async () => {
    const { t, api, env } = loggingEnv(sims)
    await right(ensureNetwork(contrailSpec())(env)())
    sims.contrail.inject({
      method: 'POST',
      path: '/instance-ips',
      nth: 1,
      status: 400,
      body: 'injected refusal of the create'
    })
    sims.contrail.inject({
      method: 'DELETE',
      path: /^\/virtual-machine-interface\//,
      nth: 1,
      status: 400,
      body: 'injected refusal of the undo'
    })
    const from = sims.contrail.journal.length
    const e = await left(createEndpoint(NET, request('ep-rb-undo'))(env)())
    assert.match(
      describeError(e),
      /refused create instance-ip ep-rb-undo \(HTTP 400\): injected refusal of the create$/
    )
    // the VM is still tried after the interface: the server refuses it while the interface refers to it
    assert.deepEqual(deletes(sims, from), ['virtual-machine-interface 400', 'virtual-machine 409'])
    const warns = t.log.state.at('warn')
    assert.equal(warns.length, 1, JSON.stringify(warns))
    const w = warns[0]!
    assert.match(w.msg, /^contrail createEndpoint ep-rb-undo: could not undo interfaceAndVm after instanceIp failed$/)
    assert.equal(w.fields['step'], 'interfaceAndVm')
    assert.equal(w.fields['failedStep'], 'instanceIp')
    assert.match(
      String(w.fields['error']),
      /refused delete virtual-machine-interface .* \(HTTP 400\): injected refusal of the undo/
    )
    // what the rollback left behind, deleteEndpoint's way (by name) clears
    sims.contrail.clearFaults()
    await right(removeEndpointObjects(api, 'default-domain', TENANT, 'ep-rb-undo', {})())
    assert.deepEqual(sims.contrail.created(), [])
  })

  it('a VM create that fails takes the interface back; a refused delete of it is logged too', async () => {
    const { t, api, env } = loggingEnv(sims)
    await right(ensureNetwork(contrailSpec())(env)())
    sims.contrail.inject({
      method: 'POST',
      path: '/virtual-machines',
      nth: 1,
      status: 400,
      body: 'injected refusal of the VM'
    })
    sims.contrail.inject({
      method: 'DELETE',
      path: /^\/virtual-machine-interface\//,
      nth: 1,
      status: 400,
      body: 'injected refusal of the undo'
    })
    const e = await left(createEndpoint(NET, request('ep-rb-vm'))(env)())
    assert.match(describeError(e), /refused create virtual-machine ep-rb-vm \(HTTP 400\): injected refusal of the VM$/)
    const warns = t.log.state.at('warn')
    assert.deepEqual(
      warns.map((w) => [w.fields['step'], w.fields['failedStep']]),
      [['interface', 'vm']]
    )
    sims.contrail.clearFaults()
    await right(removeEndpointObjects(api, 'default-domain', TENANT, 'ep-rb-vm', {})())
    assert.deepEqual(sims.contrail.created(), [])
  })
})
