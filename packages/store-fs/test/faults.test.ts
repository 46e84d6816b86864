/**
 * Store faults on a real file system: a state directory on its own small tmpfs, filled to
 * ENOSPC, then remounted read-only. Every call answers within a few seconds (writes with an error
 * naming the object, reads with what is stored), no record is changed or cut, nothing throws
 * from a timer (a lock held while the disk turns read-only), and everything works again once
 * space or write access returns.
 */
import { strict as assert } from 'node:assert'
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import type * as t from 'io-ts'
import {
  Endpoint,
  Lease,
  Network,
  Pool,
  describe as describeError,
  type AddressSpace,
  type CoreError,
  type EndpointId,
  type IpAddress,
  type LeaseOwner,
  type NetworkId,
  type Store
} from '@isthmus/core'
import {
  expectRight,
  recordingLogger,
  sampleEndpoint,
  sampleLease,
  sampleNetwork,
  samplePool
} from '@isthmus/core/testing'
import { fillFileSystem, remount, withTmpfs } from '@isthmus/testkit'
import { decodeEnvelope, layout, type RecordKind } from '../src/index.js'
import { openStore } from './support/children.js'

const SPACE = 'isthmus-local' as AddressSpace
const runtime: LeaseOwner = { kind: 'runtime', ref: 'docker' }
const ep = (id: string): LeaseOwner => ({ kind: 'endpoint', id: id as EndpointId })
const a = (n: number) => `10.1.0.${n}` as IpAddress

// Each call answers within this: a full or read-only disk is an answer, never a wait.
const PROMPT_MS = 3000
const timed = async <A>(te: TE.TaskEither<CoreError, A>): Promise<E.Either<CoreError, A>> => {
  const t0 = Date.now()
  const r = await te()
  assert.ok(Date.now() - t0 < PROMPT_MS, `answered in ${Date.now() - t0} ms`)
  return r
}
const failsWith = async (te: TE.TaskEither<CoreError, unknown>, code: string, object: string, mnt: string) => {
  const r = await timed(te)
  assert.ok(E.isLeft(r), `expected a failure naming ${object}`)
  const sentence = describeError(r.left)
  assert.equal(r.left._tag, 'Io', sentence)
  assert.ok(sentence.includes(object) && sentence.includes(code), sentence)
  assert.ok(!sentence.includes(mnt), `no path in: ${sentence}`)
}

const CODECS: Readonly<Record<string, readonly [RecordKind, t.Mixed]>> = {
  networks: ['network', Network],
  endpoints: ['endpoint', Endpoint],
  pools: ['pool', Pool],
  leases: ['lease', Lease]
}

// Every record file under the state directory with its text; each must decode with its codec.
const records = async (stateDir: string): Promise<Map<string, string>> => {
  const v1 = layout(stateDir).root
  const out = new Map<string, string>()
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, e.name)
      const rel = relative(v1, path)
      if (rel === 'locks' || rel === 'quarantine' || rel === 'cursors') continue
      if (e.isDirectory()) await walk(path)
      else {
        assert.ok(!e.name.startsWith('.'), `no temp file left: ${rel}`)
        const text = await readFile(path, 'utf8')
        const [kind, codec] = CODECS[rel.split('/')[0]!]!
        assert.ok(E.isRight(decodeEnvelope(kind, codec)(rel, text)), `${rel} decodes`)
        out.set(rel, text)
      }
    }
  }
  await walk(v1)
  return out
}

const populate = async (store: Store) => {
  await expectRight(store.networks.put(sampleNetwork('n1')))
  await expectRight(store.endpoints.put(sampleEndpoint('e1')))
  await expectRight(store.pools.put(samplePool('isthmus-local/10.1.0.0/24')))
  for (const n of [5, 6]) assert.equal(await expectRight(store.leases.reserve(sampleLease(SPACE, a(n), runtime))), true)
}

describe('store faults on a small tmpfs', () => {
  it('full (ENOSPC): writes fail at once naming the object, reads go on, nothing changes, all works once space returns', () =>
    withTmpfs('1m', async (mnt) => {
      const stateDir = join(mnt, 'state')
      const store = await openStore(stateDir, { lockTimeoutMs: PROMPT_MS - 1000 })
      try {
        await populate(store)
        const before = await records(stateDir)
        const filler = join(mnt, 'filler')
        fillFileSystem(filler)

        await failsWith(store.networks.put(sampleNetwork('n2')), 'ENOSPC', 'network n2', mnt)
        await failsWith(store.networks.put(sampleNetwork('n1', 2)), 'ENOSPC', 'network n1', mnt)
        await failsWith(store.endpoints.put(sampleEndpoint('e2'), { durable: false }), 'ENOSPC', 'endpoint e2', mnt)
        await failsWith(
          store.leases.reserve(sampleLease(SPACE, a(7), runtime)),
          'ENOSPC',
          `lease of ${a(7)} in ${SPACE}`,
          mnt
        )
        await failsWith(
          store.leases.transfer(SPACE, a(5), runtime, ep('e1')),
          'ENOSPC',
          `lease of ${a(5)} in ${SPACE}`,
          mnt
        )
        assert.equal((await timed(store.ping()))._tag, 'Left')
        // reads answer what is stored
        assert.deepEqual(await expectRight(store.networks.get('n1' as NetworkId)), O.some(sampleNetwork('n1')))
        assert.deepEqual(
          (await expectRight(store.leases.list(SPACE))).map((l) => [l.address, l.owner]),
          [
            [a(5), runtime],
            [a(6), runtime]
          ]
        )
        assert.deepEqual(await records(stateDir), before, 'no record changed, no temp file left')

        await rm(filler)
        await expectRight(store.networks.put(sampleNetwork('n2')))
        await expectRight(store.networks.put(sampleNetwork('n1', 2)))
        await expectRight(store.endpoints.put(sampleEndpoint('e2'), { durable: false }))
        assert.equal(await expectRight(store.leases.reserve(sampleLease(SPACE, a(7), runtime))), true)
        assert.equal(await expectRight(store.leases.transfer(SPACE, a(5), runtime, ep('e1'))), true)
        await expectRight(store.leases.release(SPACE, a(6), runtime))
        await expectRight(store.ping())
        assert.equal((await records(stateDir)).size, before.size + 2)
        assert.deepEqual(await expectRight(store.quarantine.list()), [])
      } finally {
        await store.close()
      }
    }))

  it('read-only (EROFS): writes and locks fail at once, a held lock is lost without a throw, reads go on, all works once writable', () =>
    withTmpfs('1m', async (mnt) => {
      const stateDir = join(mnt, 'state')
      const log = recordingLogger()
      const store = await openStore(stateDir, { lockTimeoutMs: PROMPT_MS - 1000, lockStaleMs: 2000, log: log.port })
      let roMounted = false
      try {
        await populate(store)
        // an unreadable record that cannot be moved aside while the disk is read-only
        const bad = layout(stateDir).record('networks', 'bad')
        await writeFile(bad, '{"schema":1,"kind":"net')
        const before = await readdir(layout(stateDir).collection('networks'))

        // A lock held while the disk turns read-only: its refresh timer fails (EROFS) and then
        // gives it up; the process goes on and the task's caller hears that the lock was lost.
        let release: () => void = () => undefined
        let entered: () => void = () => undefined
        const inside = new Promise<void>((r) => (entered = r))
        const held = store.withLock(
          'held',
          TE.fromTask(() => (entered(), new Promise<string>((r) => (release = () => r('done')))))
        )()
        await inside
        remount(mnt, 'ro')
        roMounted = true
        await new Promise((r) => setTimeout(r, 3000))
        release()
        const lost = await held
        assert.ok(
          E.isLeft(lost) && lost.left._tag === 'Transient' && describeError(lost.left).includes('was lost while held'),
          JSON.stringify(lost)
        )

        await failsWith(store.networks.put(sampleNetwork('n2')), 'EROFS', 'network n2', mnt)
        await failsWith(store.endpoints.delete('e1' as EndpointId), 'EROFS', 'endpoint e1', mnt)
        await failsWith(
          store.leases.reserve(sampleLease(SPACE, a(7), runtime)),
          'EROFS',
          `lease of ${a(7)} in ${SPACE}`,
          mnt
        )
        await failsWith(store.leases.release(SPACE, a(5), runtime), 'EROFS', `lock address ${a(5)} in ${SPACE}`, mnt)
        await failsWith(store.withLock('space:x', TE.right(1)), 'EROFS', 'lock "space:x"', mnt)
        assert.equal((await timed(store.ping()))._tag, 'Left')

        // reads go on; the bad record reads as absent, and its failed quarantine is logged once
        for (let i = 0; i < 3; i++) {
          assert.deepEqual(await timed(store.networks.get('bad' as NetworkId)), E.right(O.none))
          assert.deepEqual(
            (await expectRight(store.networks.list())).map((n) => n.id),
            ['n1']
          )
        }
        assert.equal(log.state.at('error').filter((e) => e.fields['object'] === 'network bad').length, 1)
        assert.deepEqual(await expectRight(store.endpoints.get('e1' as EndpointId)), O.some(sampleEndpoint('e1')))
        assert.equal((await expectRight(store.leases.list(SPACE))).length, 2)
        assert.deepEqual(await readdir(layout(stateDir).collection('networks')), before)

        remount(mnt, 'rw')
        roMounted = false
        await expectRight(store.networks.put(sampleNetwork('n2')))
        assert.equal(await expectRight(store.leases.reserve(sampleLease(SPACE, a(7), runtime))), true)
        await expectRight(store.leases.release(SPACE, a(5), runtime))
        await expectRight(store.endpoints.delete('e1' as EndpointId))
        // the lost lock's directory could not be removed while read-only: it is taken over once stale
        const t0 = Date.now()
        assert.deepEqual(await store.withLock('held', TE.right('again'))(), E.right('again'))
        assert.ok(Date.now() - t0 < PROMPT_MS, `lock free in ${Date.now() - t0} ms`)
        await expectRight(store.ping())
        // now the bad record can be moved aside
        assert.deepEqual(await expectRight(store.networks.get('bad' as NetworkId)), O.none)
        assert.deepEqual(
          (await expectRight(store.quarantine.list())).map((q) => q.object),
          ['network bad']
        )
        await records(stateDir)
      } finally {
        if (roMounted) remount(mnt, 'rw')
        await store.close()
      }
    }))

  it('a state directory that cannot be created on a read-only disk fails to open, naming it', () =>
    withTmpfs('1m', async (mnt) => {
      await mkdir(join(mnt, 'empty'))
      remount(mnt, 'ro')
      try {
        const r = await (await import('../src/index.js')).fileStore({ stateDir: join(mnt, 'empty', 'state') })()
        assert.ok(
          E.isLeft(r) &&
            describeError(r.left) === 'I/O failure during mkdir of the state directory: EROFS: read-only file system',
          JSON.stringify(r)
        )
      } finally {
        remount(mnt, 'rw')
      }
    }))
})
