import { strict as assert } from 'node:assert'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { describe as describeError, type AddressSpace, type CoreError, type NetworkId } from '@isthmus/core'
import { sampleLease, sampleNetwork } from '@isthmus/core/testing'
import { makeEtcdCerts, mustRun, type EtcdCerts } from '@isthmus/testkit'
import { etcdCluster, etcdStore, type EtcdOptions } from '../src/index.js'
import { freshPrefix, leftOf, right, sharedEtcd } from './support/etcd.js'

const DEADLINE = 1_000
const SPACE = 'isthmus-local' as AddressSpace

let certs: EtcdCerts
let dir: string
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'isthmus-etcd-tls-'))
  certs = await makeEtcdCerts(dir)
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

const tlsEtcd = sharedEtcd({
  get tls() {
    return { caFile: certs.caFile, ...certs.server, client: certs.client }
  }
})
const authEtcd = sharedEtcd()

const closers: Array<() => Promise<void>> = []
after(async () => {
  for (const c of closers) await c()
})

/** Open a store with `settings`, use it, and answer what the first call gave and how long it took. */
const firstCall = async (settings: EtcdOptions): Promise<{ r: E.Either<CoreError, void>; ms: number }> => {
  const store = await right(etcdStore(settings))
  closers.push(() => store.close())
  const t0 = Date.now()
  const r = await store.ping()()
  return { r, ms: Date.now() - t0 }
}

const works = async (settings: EtcdOptions) => {
  const store = await right(etcdStore(settings))
  const cluster = await right(etcdCluster({ ...settings, prefix: freshPrefix() }))
  closers.push(
    () => store.close(),
    () => cluster.close()
  )
  await right(store.ping())
  await right(store.networks.put(sampleNetwork('net-1')))
  assert.deepEqual(await right(store.networks.get('net-1' as NetworkId)), O.some(sampleNetwork('net-1')))
  assert.equal(await right(store.leases.reserve(sampleLease(SPACE, '10.1.0.5', { kind: 'gateway' }))), true)
  assert.equal(await right(store.withLock('space:isthmus-local', TE.right(3))), 3)
  await right(cluster.ping())
  const reg = await right(
    cluster.hosts.register(
      { name: 'h1', underlay: '192.0.2.1', vtepMac: '02:00:00:00:00:01', since: 'now' } as never,
      5
    )
  )
  assert.equal((await right(cluster.hosts.list())).length, 1)
  await reg.close()
}

/** The error of a first call: a clear sentence, within the deadline. */
const refused = async (settings: EtcdOptions, pattern: RegExp): Promise<CoreError> => {
  const { r, ms } = await firstCall(settings)
  assert.equal(r._tag, 'Left', 'the call succeeded')
  if (E.isRight(r)) throw new Error('unreachable')
  const e = r.left
  assert.match(describeError(e), pattern)
  assert.ok(ms <= DEADLINE + 400, `took ${ms} ms`)
  return e
}

describe('etcd over TLS with client certificates', () => {
  it('works with the CA and a client certificate', async () => {
    const e = await tlsEtcd()
    assert.match(e.endpoint, /^https:\/\//)
    await works({
      endpoints: [e.endpoint],
      prefix: freshPrefix(),
      caFile: certs.caFile,
      ...certs.client,
      deadlineMs: DEADLINE
    })
  })

  it('refuses clearly, within the deadline, without a client certificate, with a stranger one, or another CA', async () => {
    const e = await tlsEtcd()
    const base = { endpoints: [e.endpoint], prefix: freshPrefix(), deadlineMs: DEADLINE }
    const tls =
      /^invalid configuration: etcd at https:\/\/127\.0\.0\.1:\d+ refused the TLS connection \(check caFile, certFile and keyFile\): /
    for (const settings of [
      { ...base, caFile: certs.caFile },
      { ...base, caFile: certs.caFile, ...certs.stranger },
      { ...base, caFile: join(dir, 'other-ca.crt'), ...certs.client }
    ]) {
      const e = await refused(settings, tls)
      assert.equal(e._tag, 'InvalidConfig')
      assert.match(describeError(e), /certificate/)
    }
  })

  it('refuses settings it cannot use when opening, naming the setting', async () => {
    const e = await tlsEtcd()
    const base = { endpoints: [e.endpoint], prefix: freshPrefix() }
    const noFile = await leftOf(etcdStore({ ...base, caFile: join(dir, 'absent.crt') }))
    assert.equal(noFile._tag, 'InvalidConfig')
    assert.match(describeError(noFile), /caFile .*absent\.crt cannot be read/)
    const half = await leftOf(etcdStore({ ...base, caFile: certs.caFile, certFile: certs.client.certFile }))
    assert.match(describeError(half), /certFile and keyFile/)
    const plain = await leftOf(etcdStore({ endpoints: ['http://127.0.0.1:1'], prefix: '/p/', caFile: certs.caFile }))
    assert.match(describeError(plain), /must be https:\/\/ URLs/)
    const bad = await leftOf(etcdStore({ endpoints: ['127.0.0.1:2379'], prefix: '/p/' }))
    assert.equal(bad._tag, 'DecodeFailure')
    assert.match(describeError(bad), /endpoints\.0: expected an etcd client URL/)
  })
})

describe('etcd with user and password', () => {
  before(async () => {
    const e = await authEtcd()
    const ctl = (...args: string[]) =>
      mustRun(['etcdctl', '--endpoints', e.endpoint, ...args], { env: { ...process.env, ETCDCTL_API: '3' } })
    await ctl('user', 'add', 'root', '--new-user-password=root-pw')
    await ctl('user', 'add', 'isthmus', '--new-user-password=s3cret')
    await ctl('role', 'add', 'isthmus')
    await ctl('role', 'grant-permission', 'isthmus', '--prefix=true', 'readwrite', '/isthmus-test/')
    await ctl('user', 'grant-role', 'isthmus', 'isthmus')
    await ctl('auth', 'enable')
  })

  it('works with a user whose role covers the prefix', async () => {
    const e = await authEtcd()
    await works({ endpoints: [e.endpoint], prefix: freshPrefix(), username: 'isthmus', password: 's3cret' })
  })

  it('refuses clearly, within the deadline, a wrong password, no user, or a prefix outside the role', async () => {
    const e = await authEtcd()
    const base = { endpoints: [e.endpoint], prefix: freshPrefix(), deadlineMs: DEADLINE }
    const wrong = await refused({ ...base, username: 'isthmus', password: 'nope' }, /refused the user name or password/)
    assert.equal(wrong._tag, 'InvalidConfig')
    assert.ok(!describeError(wrong).includes('nope'))
    const anonymous = await refused(base, /etcd at http:\/\/127\.0\.0\.1:\d+ requires a user name and password/)
    assert.equal(anonymous._tag, 'InvalidConfig')
    const outside = await refused(
      { ...base, prefix: '/elsewhere/', username: 'isthmus', password: 's3cret' },
      /denied .*needs read and write access to the keys under \/elsewhere\//
    )
    assert.equal(outside._tag, 'InvalidConfig')
  })
})
