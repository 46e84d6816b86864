import { strict as assert } from 'node:assert'
import { after, describe, it } from 'node:test'
import * as TE from 'fp-ts/lib/TaskEither.js'
import {
  Block,
  ClusterNetwork,
  HostRecord,
  describe as describeError,
  type AddressSpace,
  type Cluster,
  type ClusterView,
  type CoreError,
  type NetworkId,
  type Store
} from '@isthmus/core'
import { recordingLogger, sampleLease, sampleNetwork } from '@isthmus/core/testing'
import { waitUntil } from '@isthmus/testkit'
import { etcdCluster, etcdStore } from '../src/index.js'
import { freshPrefix, right, sharedEtcd, sleep, valid } from './support/etcd.js'

const etcd = sharedEtcd()
const DEADLINE = 1_000
// what a call may take beyond its deadline: timers and the event loop of a busy machine
const MARGIN = 400
const SPACE = 'isthmus-local' as AddressSpace
const T = '2026-01-01T00:00:00.000Z'

const closers: Array<() => Promise<void>> = []
after(async () => {
  for (const c of closers) await c()
})

const open = async () => {
  const e = await etcd()
  const log = recordingLogger()
  const settings = { endpoints: [e.endpoint], deadlineMs: DEADLINE, lockTtlSeconds: 2, log: log.port }
  const store: Store = await right(etcdStore({ ...settings, prefix: freshPrefix() }))
  const cluster: Cluster = await right(etcdCluster({ ...settings, prefix: freshPrefix() }))
  closers.push(
    () => store.close(),
    () => cluster.close()
  )
  return { e, store, cluster, log: log.state }
}

const host = valid(HostRecord, { name: 'h1', underlay: '192.0.2.1', vtepMac: '02:00:00:00:00:01', since: T })
const blue = valid(ClusterNetwork, {
  name: 'blue',
  subnet: '10.40.0.0/16',
  gateway: '10.40.0.1',
  vni: 42,
  blockPrefix: 26,
  createdAt: T
})
const block = (i: number) => valid(Block, { network: 'blue', cidr: `10.40.${i}.0/26`, host: 'h1', claimedAt: T })

/** Every kind of call, each a fresh one per run. */
const calls = (
  store: Store,
  cluster: Cluster,
  i: number
): ReadonlyArray<[string, TE.TaskEither<CoreError, unknown>]> => [
  ['reserve', store.leases.reserve(sampleLease(SPACE, `10.1.0.${i + 10}`, { kind: 'gateway' }))],
  ['release', store.leases.release(SPACE, `10.1.0.${i + 10}` as never)],
  ['get', store.networks.get('net-1' as NetworkId)],
  ['put', store.networks.put(sampleNetwork(`net-${i}`))],
  ['list', store.endpoints.list()],
  ['withLock', store.withLock(`space:${i}`, TE.right(1))],
  ['ping', store.ping()],
  ['quarantine', store.quarantine.list()],
  ['cluster claim', cluster.blocks.claim(block(i))],
  [
    'cluster define',
    cluster.networks.define({ ...blue, name: `n${i}` as never, subnet: `10.${100 + i}.0.0/16` as never, vni: 100 + i })
  ],
  ['cluster hosts', cluster.hosts.list()],
  ['cluster register', cluster.hosts.register({ ...host, name: `h${i}` as never }, 5)],
  ['cluster ping', cluster.ping()]
]

/** Run every call at once; each must fail with Transient within the deadline. */
const allFailInTime = async (store: Store, cluster: Cluster, round: number) => {
  const started = Date.now()
  const results = await Promise.all(
    calls(store, cluster, round).map(async ([name, te]) => {
      const t0 = Date.now()
      const r = await te()
      return { name, r, ms: Date.now() - t0 }
    })
  )
  for (const { name, r, ms } of results) {
    assert.equal(r._tag, 'Left', `${name} succeeded while etcd was down`)
    if (r._tag !== 'Left') continue
    assert.equal(r.left._tag, 'Transient', `${name}: ${describeError(r.left)}`)
    assert.match(
      describeError(r.left),
      /the cluster store \(etcd at http:\/\/127\.0\.0\.1:\d+\) did not answer within 1 s: /
    )
    assert.ok(ms <= DEADLINE + MARGIN, `${name} took ${ms} ms`)
  }
  assert.ok(Date.now() - started <= DEADLINE + MARGIN, `all took ${Date.now() - started} ms`)
}

const allWork = async (store: Store, cluster: Cluster, round: number) => {
  for (const [name, te] of calls(store, cluster, round)) {
    const r = await te()
    assert.equal(r._tag, 'Right', `${name}: ${r._tag === 'Left' ? describeError(r.left) : ''}`)
    if (name === 'cluster register' && r._tag === 'Right') await (r.right as { close: () => Promise<void> }).close()
  }
}

describe('etcdStore and etcdCluster when etcd is gone', () => {
  it('fail every call with Transient within the deadline while etcd is killed, and work once it is back', async () => {
    const { e, store, cluster } = await open()
    await right(cluster.networks.define(blue))
    await allWork(store, cluster, 1)
    const views: ClusterView[] = []
    const errors: CoreError[] = []
    const w = await right(
      cluster.watch(
        (v) => views.push(v),
        (x) => errors.push(x)
      )
    )
    try {
      await e.kill()
      await allFailInTime(store, cluster, 2)
      // and again: nothing queued up behind the first failures
      await allFailInTime(store, cluster, 3)
      await waitUntil('the watch to report the outage', () => Promise.resolve(errors.length > 0), 5_000, 20)
      assert.equal(errors[0]?._tag, 'Transient')
      assert.equal(errors.length, 1, errors.map(describeError).join('\n'))

      await e.restart()
      await waitUntil('etcd to answer the store', async () => (await store.ping()())._tag === 'Right', 10_000, 50)
      await allWork(store, cluster, 4)
      // The watch sends a fresh view, and sees what changed after.
      const before = views.length
      await right(cluster.blocks.claim(block(99)))
      await waitUntil(
        'a view with the new block',
        () => Promise.resolve(views.slice(before).some((v) => v.blocks.some((b) => b.cidr === '10.40.99.0/26'))),
        10_000,
        20
      )
    } finally {
      await w.close()
    }
  })

  it('register a host again and take locks again after an outage longer than their leases', async () => {
    const { e, store, cluster, log } = await open()
    const reg = await right(cluster.hosts.register(host, 2))
    assert.equal(await right(store.withLock('space:a', TE.right(1))), 1)
    await e.kill()
    // keep-alives fail for longer than twice the TTL: the client gives both leases up
    await sleep(5_000)
    await e.restart()
    await waitUntil('etcd to answer the store', async () => (await store.ping()())._tag === 'Right', 10_000, 50)
    assert.equal(await right(store.withLock('space:a', TE.right(2))), 2)
    // The old leases expire after the restart; the host stays, under the lease it registered again with.
    await sleep(4_000)
    assert.deepEqual(
      (await right(cluster.hosts.list())).map((h) => h.name),
      ['h1']
    )
    assert.deepEqual(
      log.entries.map((x) => x.msg).filter((m) => /registe/.test(m)),
      ['the host registration lost its lease; registering again', 'registered the host again after losing its lease']
    )
    await reg.close()
    assert.deepEqual(await right(cluster.hosts.list()), [])
  })

  it('fail within the deadline, never hang, when etcd takes connections but does not answer', async () => {
    const { e, store, cluster } = await open()
    await right(cluster.networks.define(blue))
    await allWork(store, cluster, 5)
    const pid = e.pid()
    assert.ok(pid !== undefined)
    process.kill(pid, 'SIGSTOP')
    try {
      await allFailInTime(store, cluster, 6)
    } finally {
      process.kill(pid, 'SIGCONT')
    }
    await waitUntil('etcd to answer again', async () => (await store.ping()())._tag === 'Right', 10_000, 50)
    await sleep(100)
    await allWork(store, cluster, 7)
  })
})
