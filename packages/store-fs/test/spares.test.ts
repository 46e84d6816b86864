/**
 * Spare files (src/spares.ts): a store opened with `spareFiles` writes its records into files it
 * made ahead of time and takes its locks by linking one to the lock's name. It keeps every promise
 * of the Store port (the contract suite, with its exclusion probe), excludes a store that locks with
 * directories (an older process), falls back to making its own file when a spare was swept, and
 * leaves no spare behind when closed.
 */
import { strict as assert } from 'node:assert'
import { readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import type { Store } from '@isthmus/core'
import { expectRight, sampleEndpoint } from '@isthmus/core/testing'
import { storeContract } from '@isthmus/core/testing/store-contract'
import { openStore, removeDir, tempDir } from './support/children.js'

const made: string[] = []
const fresh = async (): Promise<string> => {
  const dir = await tempDir('isthmus-spares-')
  made.push(dir)
  return dir
}
after(async () => {
  await Promise.all(made.map(removeDir))
})

storeContract('fileStore with spare files', async () => {
  const dir = await tempDir('isthmus-spares-')
  return { store: await openStore(dir, { spareFiles: 4 }), cleanup: () => removeDir(dir) }
})

const temps = async (dir: string): Promise<string[]> => (await readdir(dir)).filter((n) => n.startsWith('.tmp-'))
const settle = () => new Promise((r) => setTimeout(r, 100))

// Holds `name` in `a` until the returned function is called.
const hold = async (a: Store, name: string): Promise<{ release: () => void; done: Promise<unknown> }> => {
  let release: () => void = () => undefined
  let entered: () => void = () => undefined
  const inside = new Promise<void>((r) => (entered = r))
  const done = a.withLock(
    name,
    TE.fromTask(
      () =>
        new Promise<string>((r) => {
          release = () => r('done')
          entered()
        })
    )
  )()
  await inside
  return { release, done }
}

describe('fileStore spare files', () => {
  it('a record is written into a spare made ahead of time, and closing removes the rest', async () => {
    const dir = await fresh()
    const store = await openStore(dir, { spareFiles: 4 })
    const endpoints = join(dir, 'v1', 'endpoints')
    const first = sampleEndpoint('ep-first')
    await expectRight(store.endpoints.put(first, { durable: false }))
    await settle()
    const ready = await temps(endpoints)
    assert.equal(ready.length, 4, 'the pool of that directory is full')
    const inodes = new Set(await Promise.all(ready.map(async (n) => (await stat(join(endpoints, n))).ino)))
    await expectRight(store.endpoints.put(sampleEndpoint('ep-second'), { durable: false }))
    const record = (await readdir(endpoints)).find((n) => n.startsWith('ep-second'))
    assert.ok(record !== undefined)
    assert.ok(inodes.has((await stat(join(endpoints, record))).ino), 'the record is one of the spares, renamed')
    await store.close()
    assert.deepEqual(await temps(endpoints), [], 'no spare left after close')
  })

  it('spares waiting longer than their age limit are kept young, not made again', async () => {
    const dir = await fresh()
    // Age limit: a third of the temp age, 300 ms here (20 s by default).
    const store = await openStore(dir, { spareFiles: 2, tempMaxAgeMs: 900 })
    const endpoints = join(dir, 'v1', 'endpoints')
    await expectRight(store.endpoints.put(sampleEndpoint('ep-young-1'), { durable: false }))
    await settle()
    const ready = await temps(endpoints)
    assert.equal(ready.length, 2)
    // Three age limits later the same spares are still there, and the next write takes one.
    await new Promise((r) => setTimeout(r, 1000))
    assert.deepEqual((await temps(endpoints)).sort(), ready.sort(), 'the same spares, not swept or made again')
    await expectRight(store.endpoints.put(sampleEndpoint('ep-young-2'), { durable: false }))
    await settle()
    // One of them became the record; the other still waits (a spare too old is removed when a
    // write looks for one, and that write makes its own file).
    assert.equal((await temps(endpoints)).filter((n) => ready.includes(n)).length, 1, 'one spare taken, one left')
    assert.ok((await readdir(endpoints)).some((n) => n.startsWith('ep-young-2')))
    await store.close()
  })

  it('a spare swept behind its back: the write makes its own file', async () => {
    const dir = await fresh()
    const store = await openStore(dir, { spareFiles: 2 })
    const endpoints = join(dir, 'v1', 'endpoints')
    await expectRight(store.endpoints.put(sampleEndpoint('ep-a')))
    await settle()
    for (const n of await temps(endpoints)) await rm(join(endpoints, n))
    await expectRight(store.endpoints.put(sampleEndpoint('ep-b')))
    const got = await store.endpoints.get(sampleEndpoint('ep-b').id)()
    assert.ok(E.isRight(got) && got.right._tag === 'Some', JSON.stringify(got))
    await store.close()
  })

  it('a lock taken by linking a spare excludes a store that locks with directories, and the other way round', async () => {
    const dir = await fresh()
    const spares = await openStore(dir, { spareFiles: 2, lockTimeoutMs: 300 })
    const plain = await openStore(dir, { lockTimeoutMs: 300 })
    // Warm the spares of the lock directory.
    await expectRight(spares.withLock('space:warm', TE.right(undefined)))
    await settle()
    const locks = join(dir, 'v1', 'locks')

    const a = await hold(spares, 'space:one')
    const lockFile = (await readdir(locks)).find((n) => n.endsWith('.lock'))
    assert.ok(lockFile !== undefined)
    assert.ok((await stat(join(locks, lockFile))).isFile(), 'held as a linked file')
    const refused = await plain.withLock('space:one', TE.right('plain'))()
    assert.ok(E.isLeft(refused) && refused.left._tag === 'Transient', JSON.stringify(refused))
    a.release()
    await a.done
    assert.deepEqual(await plain.withLock('space:one', TE.right('plain'))(), E.right('plain'))

    const b = await hold(plain, 'space:two')
    const refusedToo = await spares.withLock('space:two', TE.right('spares'))()
    assert.ok(E.isLeft(refusedToo) && refusedToo.left._tag === 'Transient', JSON.stringify(refusedToo))
    b.release()
    await b.done
    assert.deepEqual(await spares.withLock('space:two', TE.right('spares'))(), E.right('spares'))
    assert.deepEqual(
      (await readdir(locks)).filter((n) => n.endsWith('.lock')),
      [],
      'every lock is gone once released'
    )
    await spares.close()
    await plain.close()
  })
})
