import { strict as assert } from 'node:assert'
import { after, describe, it } from 'node:test'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { Etcd3 } from 'etcd3'
import { describe as describeError, type CoreError, type Store } from '@isthmus/core'
import { assertExcluded, exclusionProbe } from '@isthmus/core/testing'
import { etcdStore, storeKeys, type EtcdOptions } from '../src/index.js'
import { startChild } from './support/children.js'
import { freshPrefix, leftOf, right, sharedEtcd } from './support/etcd.js'

const etcd = sharedEtcd()
const closers: Array<() => Promise<void> | void> = []
after(async () => {
  for (const c of closers) await c()
})

const open = async (prefix: string, extra: Partial<EtcdOptions> = {}): Promise<Store> => {
  const e = await etcd()
  const s = await right(etcdStore({ endpoints: [e.endpoint], prefix, ...extra }))
  closers.push(() => s.close())
  return s
}
const rawClient = async () => {
  const e = await etcd()
  const raw = new Etcd3({ hosts: [e.endpoint] })
  closers.push(() => raw.close())
  return raw
}

describe('etcdStore locks', () => {
  it('excludes every other process of the prefix: two clients take turns', async () => {
    const prefix = freshPrefix()
    const [a, b] = [await open(prefix), await open(prefix)]
    const probe = exclusionProbe(5)
    const seen = await Promise.all(
      Array.from({ length: 12 }, (_, i) => right((i % 2 === 0 ? a : b).withLock('space:isthmus-local', probe.task)))
    )
    assertExcluded(probe, seen, 12)
    // Every lock is gone once its task is done, failed ones included.
    const failure: CoreError = { _tag: 'PoolExhausted', pool: 'p' }
    assert.deepEqual(await leftOf(a.withLock('x', TE.left(failure))), failure)
    const raw = await rawClient()
    assert.deepEqual(await raw.getAll().prefix(storeKeys(prefix).lock('')).keys(), [])
  })

  it('takes nothing in etcd for a lock of process scope', async () => {
    const prefix = freshPrefix()
    const s = await open(prefix)
    const raw = await rawClient()
    const inside = await right(
      s.withLock(
        'endpoint:ep-1',
        TE.fromTask(() => raw.getAll().prefix(prefix).keys()),
        'process'
      )
    )
    assert.deepEqual(inside, [])
  })

  it('lets another process in after the TTL when the holder dies without releasing', async () => {
    const prefix = freshPrefix()
    const e = await etcd()
    const child = startChild(['lock', e.endpoint, prefix, 'pool:dead', '2'])
    try {
      await child.ready
      const s = await open(prefix)
      // While the holder lives, its keep-alives hold the lock past the TTL.
      const busy = await leftOf((await open(prefix, { lockTimeoutMs: 3_000 })).withLock('pool:dead', TE.right(1)))
      assert.equal(busy._tag, 'Transient', describeError(busy))
      assert.match(describeError(busy), /lock "pool:dead" is held by another process/)
      const waiting = s.withLock(
        'pool:dead',
        TE.fromIO(() => Date.now())
      )()
      const killed = Date.now()
      await child.kill()
      const r = await waiting
      assert.equal(r._tag, 'Right')
      const after = (r._tag === 'Right' ? r.right : 0) - killed
      assert.ok(after < 5_000, `in after ${after} ms`)
    } finally {
      await child.kill()
    }
  })

  it('fails a task that succeeded when its lock was lost meanwhile (its lease gone)', async () => {
    const prefix = freshPrefix()
    const s = await open(prefix)
    const raw = await rawClient()
    const key = storeKeys(prefix).lock('pool:lost')
    const r = await leftOf(
      s.withLock(
        'pool:lost',
        TE.fromTask(async () => {
          // as if etcd had let the session lease expire during an outage
          const held = await raw.get(key).exec()
          const lease = held.kvs[0]?.lease ?? '0'
          await raw.leaseClient.leaseRevoke({ ID: lease })
          return 'done'
        })
      )
    )
    assert.equal(r._tag, 'Transient', describeError(r))
    assert.match(describeError(r), /lock "pool:lost" was lost while held/)
    // The store gets a new session for its next lock.
    assert.equal(await right(s.withLock('pool:lost', TE.right(7))), 7)
  })
})
