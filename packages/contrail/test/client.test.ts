import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import { describe as describeError, type LogFields } from '@isthmus/core'
import { configApi, Contrail, type KeystoneAuth } from '@isthmus/contrail'
import { api, closedPort, FAST, left, right, startSims, TENANT, USER, VN, type Sims } from './support/helpers.js'

describe('the config API client against the simulator', () => {
  let sims: Sims
  before(async () => {
    sims = await startSims({ auth: 'keystone', users: [USER] })
  })
  after(async () => sims.close())

  const v2 = (): KeystoneAuth => ({ kind: 'keystone', url: sims.contrail.keystoneV2, version: 'v2', ...USER })
  const v3 = (): KeystoneAuth => ({ kind: 'keystone', url: sims.contrail.keystoneV3, version: 'v3', ...USER })

  it('looks names up with keystone v2 tokens, sending X-Auth-Token', async () => {
    const c = api(sims, v2())
    assert.equal(await right(c.fqNameToId('project', ['default-domain', TENANT])()), sims.projectId)
    const last = sims.contrail.calls('POST', '/fqname-to-id').at(-1)!
    assert.match(String(last.headers['x-auth-token']), /^[0-9a-f]{32}$/)
    assert.equal(sims.contrail.calls('POST', '/v2.0/tokens').length >= 1, true)
  })

  it('authenticates with keystone v3 (token from X-Subject-Token, 201)', async () => {
    const before = sims.contrail.calls('POST', '/v3/auth/tokens').length
    const c = api(sims, v3())
    assert.equal(await right(c.fqNameToId('virtual-network', ['default-domain', TENANT, VN])()), sims.networkId)
    assert.equal(sims.contrail.calls('POST', '/v3/auth/tokens').length, before + 1)
  })

  it('re-authenticates once when the API answers 401, then succeeds', async () => {
    const c = api(sims, v3())
    await right(c.fqNameToId('project', ['default-domain', TENANT])())
    const issued = sims.contrail.tokensIssued()
    sims.contrail.expireTokens()
    await right(c.fqNameToId('project', ['default-domain', TENANT])())
    assert.equal(sims.contrail.tokensIssued(), issued + 1)
    const statuses = sims.contrail
      .calls('POST', '/fqname-to-id')
      .slice(-2)
      .map((e) => e.status)
    assert.deepEqual(statuses, [401, 200])
  })

  it('fetches a new token once half of its lifetime has passed', async () => {
    let now = Date.now()
    const c = configApi({ url: sims.contrail.url, auth: v2(), policy: FAST, now: () => now })
    await right(c.fqNameToId('project', ['default-domain', TENANT])())
    const issued = sims.contrail.tokensIssued()
    now += 1_000
    await right(c.fqNameToId('project', ['default-domain', TENANT])())
    assert.equal(sims.contrail.tokensIssued(), issued, 'no new token early in its life')
    now += 1_900_000 // past half of the simulator's one hour
    await right(c.fqNameToId('project', ['default-domain', TENANT])())
    assert.equal(sims.contrail.tokensIssued(), issued + 1)
  })

  it('a wrong password is a Controller 401 whose text holds neither the password nor a token', async () => {
    const bad = { ...v2(), password: 'Wrong-Passw0rd-xyz' }
    // the server echoes the password back: the client must still not repeat it
    sims.contrail.inject({
      method: 'POST',
      path: '/v2.0/tokens',
      nth: 1,
      status: 401,
      body: `bad credentials for password Wrong-Passw0rd-xyz`
    })
    const lines: string[] = []
    const log = {
      debug: (m: string, f?: LogFields) => lines.push(m + JSON.stringify(f)),
      info: () => undefined,
      warn: () => undefined,
      error: () => undefined
    }
    const c = configApi({ url: sims.contrail.url, auth: bad, policy: FAST, log })
    const e = await left(c.fqNameToId('project', ['default-domain', TENANT])())
    sims.contrail.clearFaults()
    assert.equal(e._tag, 'Controller')
    assert.equal(e._tag === 'Controller' && e.status, 401)
    const text = describeError(e)
    assert.ok(!text.includes('Wrong-Passw0rd-xyz'), text)
    assert.match(text, /\[redacted\]/)
  })

  it('never puts a token into an error text or a log line, even when the server echoes it', async () => {
    const lines: string[] = []
    const log = {
      debug: (m: string, f?: LogFields) => lines.push(m + JSON.stringify(f)),
      info: () => undefined,
      warn: () => undefined,
      error: () => undefined
    }
    const c = configApi({ url: sims.contrail.url, auth: v2(), policy: FAST, log })
    await right(c.fqNameToId('project', ['default-domain', TENANT])())
    const token = String(sims.contrail.calls('POST', '/fqname-to-id').at(-1)!.headers['x-auth-token'])
    sims.contrail.inject({
      method: 'GET',
      path: /^\/virtual-network\//,
      nth: 1,
      status: 403,
      body: `token ${token} may not read this (password ${USER.password})`
    })
    const e = await left(c.read('virtual-network', sims.networkId, Contrail.VirtualNetwork)())
    sims.contrail.clearFaults()
    const text = describeError(e)
    assert.match(text, /HTTP 403/)
    for (const secret of [token, USER.password]) {
      assert.ok(!text.includes(secret), text)
      assert.ok(!lines.some((l) => l.includes(secret)), 'a log line holds a secret')
    }
    assert.ok(lines.length > 0)
  })
})

describe('config API operations and their errors', () => {
  let sims: Sims
  before(async () => {
    sims = await startSims()
  })
  after(async () => sims.close())

  it('fq_name to uuid: found, and 404 as a numeric status', async () => {
    const c = api(sims)
    assert.equal(await right(c.fqNameToId('virtual-network', ['default-domain', TENANT, VN])()), sims.networkId)
    const e = await left(c.fqNameToId('virtual-network', ['default-domain', TENANT, 'nope'])())
    assert.deepEqual([e._tag, e._tag === 'Controller' && e.status], ['Controller', 404])
    assert.match(describeError(e), /look up virtual-network default-domain:demo:nope \(HTTP 404\): Name .* not found/)
  })

  it('reads a virtual network with its ipam subnets, gateway and subnet uuid', async () => {
    const vn = await right(
      api(sims).read('virtual-network', sims.networkId, Contrail.VirtualNetwork, { excludeBackRefs: true })()
    )
    const s = vn.network_ipam_refs?.[0]?.attr.ipam_subnets[0]
    assert.equal(s?.default_gateway, '10.253.10.1')
    assert.match(String(s?.subnet_uuid), /^[0-9a-f-]{36}$/)
  })

  it('create answers the short envelope; a second create is 409; delete is 404 when gone', async () => {
    const c = api(sims)
    const made = await right(c.create('virtual-machine', { fq_name: ['vm-client-1'] })())
    assert.deepEqual(made.fq_name, ['vm-client-1'])
    const dup = await left(c.create('virtual-machine', { fq_name: ['vm-client-1'] })())
    assert.equal(dup._tag === 'Controller' && dup.status, 409)
    assert.match(describeError(dup), /exists already with ID/)
    await right(c.remove('virtual-machine', made.uuid)())
    await right(c.remove('virtual-machine', made.uuid)()) // 404 = done
    assert.equal(
      sims.contrail
        .calls('DELETE', `/virtual-machine/${made.uuid}`)
        .map((e) => e.status)
        .join(','),
      '200,404'
    )
  })

  it('ref-update links an interface to a VM; deleting the VM then is 409 (still referred)', async () => {
    const c = api(sims)
    const vm = await right(c.create('virtual-machine', { fq_name: ['vm-client-2'] })())
    const vmi = await right(
      c.create('virtual-machine-interface', {
        fq_name: ['default-domain', TENANT, 'vmi-client-2'],
        parent_type: 'project',
        virtual_network_refs: [{ to: ['default-domain', TENANT, VN] }]
      })()
    )
    await right(
      c.refUpdate({
        type: 'virtual-machine-interface',
        uuid: vmi.uuid,
        'ref-type': 'virtual-machine',
        'ref-uuid': vm.uuid,
        'ref-fq-name': ['vm-client-2'],
        operation: 'ADD',
        attr: null
      })()
    )
    const read = await right(c.read('virtual-machine-interface', vmi.uuid, Contrail.VirtualMachineInterface)())
    assert.equal(read.virtual_machine_refs?.[0]?.uuid, vm.uuid)
    const refused = await left(c.remove('virtual-machine', vm.uuid)())
    assert.equal(refused._tag === 'Controller' && refused.status, 409)
    assert.match(describeError(refused), /still referred/)
    const listed = await right(
      c.list('virtual-machine-interface', Contrail.VirtualMachineInterface, { parentId: sims.projectId })()
    )
    assert.deepEqual(
      listed.map((v) => v.uuid),
      [vmi.uuid]
    )
    await right(c.remove('virtual-machine-interface', vmi.uuid)())
    await right(c.remove('virtual-machine', vm.uuid)())
  })

  it('retries a transient 503 and succeeds', async () => {
    sims.contrail.inject({ method: 'POST', path: '/fqname-to-id', nth: 1, status: 503 })
    const before = sims.contrail.calls('POST', '/fqname-to-id').length
    await right(api(sims).fqNameToId('project', ['default-domain', TENANT])())
    sims.contrail.clearFaults()
    assert.equal(sims.contrail.calls('POST', '/fqname-to-id').length - before, 2)
  })

  it('gives up after the bounded retries with the last status', async () => {
    sims.contrail.inject({ method: 'POST', path: '/fqname-to-id', status: 503, body: 'overloaded' })
    const before = sims.contrail.calls('POST', '/fqname-to-id').length
    const e = await left(api(sims).fqNameToId('project', ['default-domain', TENANT])())
    sims.contrail.clearFaults()
    assert.equal(sims.contrail.calls('POST', '/fqname-to-id').length - before, 1 + FAST.retries)
    assert.equal(
      describeError(e),
      'network controller refused look up project default-domain:demo (HTTP 503): overloaded'
    )
  })

  it('does not retry a 400', async () => {
    sims.contrail.inject({ method: 'POST', path: '/virtual-machines', status: 400, body: 'Bad Request: nope' })
    const before = sims.contrail.calls('POST', '/virtual-machines').length
    await left(api(sims).create('virtual-machine', { fq_name: ['vm-x'] })())
    sims.contrail.clearFaults()
    assert.equal(sims.contrail.calls('POST', '/virtual-machines').length - before, 1)
  })

  it('a hanging server times out per attempt and ends as a Transient error', async () => {
    sims.contrail.inject({ method: 'POST', path: '/fqname-to-id', hang: true })
    const started = Date.now()
    const e = await left(api(sims).fqNameToId('project', ['default-domain', TENANT])())
    sims.contrail.clearFaults()
    assert.equal(e._tag, 'Transient')
    assert.match(describeError(e), /no answer within 400 ms during look up project/)
    assert.ok(Date.now() - started >= 3 * 400)
  })

  it('a reset connection is retried', async () => {
    sims.contrail.inject({ method: 'POST', path: '/fqname-to-id', nth: 1, reset: true })
    assert.equal(await right(api(sims).fqNameToId('project', ['default-domain', TENANT])()), sims.projectId)
    sims.contrail.clearFaults()
  })

  it('an unreachable API is a Transient error naming the URL', async () => {
    const port = await closedPort()
    const c = configApi({ url: `http://127.0.0.1:${port}`, auth: { kind: 'none' }, policy: FAST })
    const e = await left(c.fqNameToId('project', ['default-domain', TENANT])())
    assert.equal(e._tag, 'Transient')
    assert.equal(
      describeError(e),
      `temporary failure, try again: Contrail config API at http://127.0.0.1:${port} unreachable (ECONNREFUSED) during look up project default-domain:demo`
    )
  })

  it('an undecodable answer is a DecodeFailure', async () => {
    sims.contrail.inject({ method: 'POST', path: '/fqname-to-id', nth: 1, status: 200, body: '{"id":"x"}' })
    // an injected status answers as text; 200 with a non-JSON-shaped body must not pass as a uuid
    const e = await left(api(sims).fqNameToId('project', ['default-domain', TENANT])())
    sims.contrail.clearFaults()
    assert.equal(e._tag, 'DecodeFailure')
  })
})
