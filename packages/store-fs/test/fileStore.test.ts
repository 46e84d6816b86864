import { strict as assert } from 'node:assert'
import { existsSync } from 'node:fs'
import { readFile, readdir, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { Lease, Network, type AddressSpace, type CoreError, type IpAddress, type NetworkId } from '@isthmus/core'
import { expectRight, sampleEndpoint, sampleLease, sampleNetwork, samplePool } from '@isthmus/core/testing'
import { storeContract } from '@isthmus/core/testing/store-contract'
import { decodeName, encodeName, fileStore } from '../src/index.js'
import { killChild, openStore, removeDir, startChild, tempDir } from './support/children.js'

const made: string[] = []
const fresh = async () => {
  const dir = await tempDir()
  made.push(dir)
  return dir
}
after(async () => {
  await Promise.all(made.map(removeDir))
})

storeContract('fileStore', async () => {
  const dir = await tempDir()
  return { store: await openStore(dir), cleanup: () => removeDir(dir) }
})

const SPACE = 'isthmus-local' as AddressSpace
const runtime = (ref: string) => ({ kind: 'runtime' as const, ref })

const leftOf = async <A>(te: TE.TaskEither<CoreError, A>): Promise<CoreError> => {
  const r = await te()
  if (E.isRight(r)) assert.fail(`expected a failure, got ${JSON.stringify(r.right)}`)
  return r.left
}

// Every entry under `dir`, as paths relative to it.
const walk = async (dir: string, prefix = ''): Promise<string[]> => {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix === '' ? e.name : `${prefix}/${e.name}`
    out.push(rel)
    if (e.isDirectory()) out.push(...(await walk(join(dir, e.name), rel)))
  }
  return out
}

describe('fileStore on disk', () => {
  it('writes each record in its envelope at its place in the layout, and nothing else', async () => {
    const dir = await fresh()
    const store = await openStore(dir)
    const net = sampleNetwork('net-1')
    const pool = samplePool('isthmus-local/fd00:1::/64')
    const lease = sampleLease(SPACE, 'fd00:1::5', runtime('r1'), pool.id)
    await expectRight(store.networks.put(net))
    await expectRight(store.pools.put(pool))
    assert.equal(await expectRight(store.leases.reserve(lease)), true)
    await expectRight(store.leases.setCursor(pool.id, 'fd00:1::5' as IpAddress))
    await store.close()

    const v1 = join(dir, 'v1')
    assert.deepEqual(JSON.parse(await readFile(join(v1, 'networks/net-1.json'), 'utf8')), {
      schema: 1,
      kind: 'network',
      data: Network.encode(net)
    })
    const leaseFile = JSON.parse(
      await readFile(join(v1, 'leases/isthmus-local/fd00%3A1%3A%3A5.json'), 'utf8')
    ) as unknown
    assert.deepEqual(leaseFile, { schema: 1, kind: 'lease', data: Lease.encode(lease) })
    assert.deepEqual((await walk(v1)).sort(), [
      'cursors',
      'cursors/isthmus-local%2Ffd00%3A1%3A%3A%2F64.json',
      'endpoints',
      'leases',
      'leases/isthmus-local',
      'leases/isthmus-local/fd00%3A1%3A%3A5.json',
      'locks',
      'networks',
      'networks/net-1.json',
      'pools',
      'pools/isthmus-local%2Ffd00%3A1%3A%3A%2F64.json',
      'quarantine'
    ])
  })

  it('a store opened later (another process) reads what the first wrote', async () => {
    const dir = await fresh()
    const first = await openStore(dir)
    const ep = sampleEndpoint('ep-1', 3)
    await expectRight(first.endpoints.put(ep))
    await expectRight(first.leases.reserve(sampleLease(SPACE, '10.1.0.9', runtime('r'))))
    await first.close()
    const second = await openStore(dir)
    assert.deepEqual(await expectRight(second.endpoints.get(ep.id)), O.some(ep))
    assert.equal(await expectRight(second.leases.reserve(sampleLease(SPACE, '10.1.0.9', runtime('other')))), false)
    assert.deepEqual(await expectRight(second.leases.list(SPACE)), [sampleLease(SPACE, '10.1.0.9', runtime('r'))])
    await second.close()
  })

  it('reads each record from its file every time: a change behind its back is seen, a bad one quarantined', async () => {
    const dir = await fresh()
    const store = await openStore(dir)
    const net = sampleNetwork('n1')
    await expectRight(store.networks.put(net))
    const once = await expectRight(store.networks.get(net.id))
    const twice = await expectRight(store.networks.get(net.id))
    assert.deepEqual(twice, O.some(net))
    // the texts it has decoded before are remembered, but a caller still gets its own copy
    assert.ok(O.isSome(once) && O.isSome(twice) && once.value !== twice.value)
    const file = join(dir, 'v1/networks/n1.json')
    const edited = { ...net, mtu: 1400 }
    await writeFile(file, JSON.stringify({ schema: 1, kind: 'network', data: Network.encode(edited) }))
    assert.deepEqual(await expectRight(store.networks.get(net.id)), O.some(edited))
    await writeFile(file, JSON.stringify({ schema: 1, kind: 'network', data: { ...Network.encode(net), mtu: 'big' } }))
    assert.deepEqual(await expectRight(store.networks.get(net.id)), O.none)
    assert.deepEqual(
      (await expectRight(store.quarantine.list())).map((q) => q.object),
      ['network n1']
    )
    await store.close()
  })

  it('an empty record file (a write without fsync that a power loss cut) reads as absent, and a reserve takes its place', async () => {
    const dir = await fresh()
    const store = await openStore(dir)
    await expectRight(store.networks.put(sampleNetwork('good')))
    const net = join(dir, 'v1/networks', 'cut.json')
    await writeFile(net, '')
    assert.ok(O.isNone(await expectRight(store.networks.get('cut' as NetworkId))))
    assert.deepEqual(
      (await expectRight(store.networks.list())).map((n) => n.id),
      ['good']
    )
    // A lease written without fsync, cut the same way: free to list, get and reserve.
    assert.equal(
      await expectRight(store.leases.reserve(sampleLease(SPACE, '10.1.0.7', runtime('gone')), { durable: false })),
      true
    )
    const [file] = (await walk(join(dir, 'v1/leases'))).filter((f) => f.endsWith('.json'))
    assert.ok(file !== undefined)
    await writeFile(join(dir, 'v1/leases', file), '')
    assert.deepEqual(await expectRight(store.leases.list(SPACE)), [])
    assert.ok(O.isNone(await expectRight(store.leases.get(SPACE, '10.1.0.7' as IpAddress))))
    await expectRight(store.leases.release(SPACE, '10.1.0.7' as IpAddress))
    assert.equal(await expectRight(store.leases.reserve(sampleLease(SPACE, '10.1.0.7', runtime('new')))), true)
    assert.deepEqual(await expectRight(store.leases.list(SPACE)), [sampleLease(SPACE, '10.1.0.7', runtime('new'))])
    await store.close()
  })

  it('never reads a temp file as a record, and sweeps old ones on open and on list', async () => {
    const dir = await fresh()
    const store = await openStore(dir)
    await expectRight(store.networks.put(sampleNetwork('real')))
    await expectRight(store.leases.reserve(sampleLease(SPACE, '10.1.0.5', runtime('r'))))
    const nets = join(dir, 'v1/networks')
    const leases = join(dir, 'v1/leases', SPACE)
    const body = await readFile(join(nets, 'real.json'))
    const old = new Date(Date.now() - 5 * 60_000)
    const files = {
      freshTmp: join(nets, '.tmp-1-0-fresh'),
      oldTmp: join(nets, '.tmp-1-1-old'),
      oldTomb: join(leases, '.tomb-1-2-old'),
      oldLeaseTmp: join(leases, '.tmp-1-3-old')
    }
    for (const f of Object.values(files)) await writeFile(f, body)
    for (const f of [files.oldTmp, files.oldTomb, files.oldLeaseTmp]) await utimes(f, old, old)
    assert.deepEqual(await expectRight(store.networks.list()), [sampleNetwork('real')])
    assert.equal(existsSync(files.oldTmp), false, 'list swept the old temp file of its directory')
    assert.equal(existsSync(files.freshTmp), true, 'a fresh temp file may belong to a live writer')
    assert.equal(existsSync(files.oldTomb), true)
    await store.close()
    const reopened = await openStore(dir)
    assert.equal(existsSync(files.oldTomb), false)
    assert.equal(existsSync(files.oldLeaseTmp), false)
    assert.equal(existsSync(files.freshTmp), true)
    assert.equal((await expectRight(reopened.leases.list(SPACE))).length, 1)
    await reopened.close()
  })

  it('reserve leaves no temp file behind, whether it wins or loses', async () => {
    const dir = await fresh()
    const store = await openStore(dir)
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        expectRight(store.leases.reserve(sampleLease(SPACE, `10.1.0.${(i % 10) + 1}`, runtime(`r${i}`))))
      )
    )
    assert.equal(results.filter((x) => x).length, 10)
    assert.deepEqual(
      (await readdir(join(dir, 'v1/leases', SPACE))).filter((n) => n.startsWith('.')),
      []
    )
    await store.close()
  })

  it('refuses a relative state directory and one that is not a directory', async () => {
    const relative = await leftOf(fileStore({ stateDir: 'var/lib/isthmus' }))
    assert.equal(relative._tag, 'InvalidConfig')
    const dir = await fresh()
    await writeFile(join(dir, 'plain-file'), 'x')
    const notDir = await leftOf(fileStore({ stateDir: join(dir, 'plain-file') }))
    assert.equal(notDir._tag, 'Io')
  })

  it('ping fails once the state directory is gone', async () => {
    const dir = await fresh()
    const store = await openStore(dir)
    assert.deepEqual(await store.ping()(), E.right(undefined))
    await removeDir(dir)
    assert.equal((await leftOf(store.ping()))._tag, 'Io')
    await store.close()
  })
})

describe('fileStore locks', () => {
  it('a lock held by another store times out as Transient, and is free once released', async () => {
    const dir = await fresh()
    const a = await openStore(dir)
    const b = await openStore(dir, { lockTimeoutMs: 300 })
    let release: () => void = () => undefined
    let entered: () => void = () => undefined
    const inside = new Promise<void>((r) => (entered = r))
    const held = a.withLock(
      'space:isthmus-local',
      TE.fromTask(
        () =>
          new Promise<string>((r) => {
            release = () => r('a done')
            entered()
          })
      )
    )()
    await inside
    const t0 = Date.now()
    const e = await leftOf(b.withLock('space:isthmus-local', TE.right('b')))
    assert.equal(e._tag, 'Transient')
    assert.ok(Date.now() - t0 >= 280, 'waited for the timeout')
    release()
    assert.deepEqual(await held, E.right('a done'))
    assert.deepEqual(await b.withLock('space:isthmus-local', TE.right('b'))(), E.right('b'))
    await a.close()
    await b.close()
  })

  it("a process-scoped lock queues this store's callers in order and makes no lock directory", async () => {
    const dir = await fresh()
    const a = await openStore(dir)
    const order: number[] = []
    const step = (i: number, ms: number) =>
      a.withLock(
        'endpoint:e1',
        TE.fromTask(() => new Promise<number>((r) => setTimeout(() => (order.push(i), r(i)), ms))),
        'process'
      )
    const all = await Promise.all([step(1, 30)(), step(2, 0)(), step(3, 10)()])
    assert.deepEqual(all, [E.right(1), E.right(2), E.right(3)])
    assert.deepEqual(order, [1, 2, 3], 'one at a time, in call order')
    let seen: string[] = []
    await a.withLock(
      'endpoint:e2',
      TE.fromTask(async () => (seen = await walk(dir))),
      'process'
    )()
    assert.deepEqual(
      seen.filter((f) => f.startsWith('v1/locks/')),
      [],
      'no lock directory while held'
    )
    await a.close()
  })

  it('a put that need not be durable is still atomic and read back, also by another store', async () => {
    const dir = await fresh()
    const a = await openStore(dir)
    const net = sampleNetwork('n-light')
    await expectRight(a.networks.put(net, { durable: false }))
    const b = await openStore(dir)
    assert.deepEqual(await expectRight(b.networks.get(net.id)), O.some(net))
    assert.ok(!(await walk(dir)).some((f) => f.split('/').pop()!.startsWith('.tmp-')), 'no temp file left')
    await a.close()
    await b.close()
  })

  it('close releases the locks a store holds', async () => {
    const dir = await fresh()
    const a = await openStore(dir)
    const b = await openStore(dir, { lockTimeoutMs: 2000 })
    let entered: () => void = () => undefined
    let finish: () => void = () => undefined
    const inside = new Promise<void>((r) => (entered = r))
    const held = a.withLock(
      'x',
      TE.fromTask(() => (entered(), new Promise<void>((r) => (finish = r))))
    )()
    await inside
    await a.close()
    const t0 = Date.now()
    assert.deepEqual(await b.withLock('x', TE.right(1))(), E.right(1))
    assert.ok(Date.now() - t0 < 1000)
    finish()
    await held
    await b.close()
  })

  it('a lock whose holder was killed (SIGKILL) is taken over once stale', async () => {
    const dir = await fresh()
    await openStore(dir).then((s) => s.close())
    const child = startChild(['hold-lock', dir, 'space:isthmus-local', '2000'])
    await child.waitFor('locked')
    assert.equal((await readdir(join(dir, 'v1/locks'))).length, 1, 'the child holds a lock directory')
    const { signal } = await killChild(child)
    assert.equal(signal, 'SIGKILL')
    const store = await openStore(dir, { lockStaleMs: 2000, lockTimeoutMs: 8000 })
    const t0 = Date.now()
    assert.deepEqual(await store.withLock('space:isthmus-local', TE.right('mine'))(), E.right('mine'))
    const waited = Date.now() - t0
    assert.ok(waited > 500 && waited < 5000, `waited ${waited} ms for the dead holder's lock`)
    await store.close()
  })
})

describe('file names', () => {
  it('encode keys reversibly into safe names that never look like temp files', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }), (key) => {
        const name = encodeName(key)
        assert.match(name, /^[A-Za-z0-9_.%-]+$/)
        assert.ok(!name.startsWith('.'))
        assert.equal(decodeName(name), key)
      })
    )
  })

  it('keep distinct keys apart, long ones too, within the 255-byte limit', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 400 }),
        fc.string({ unit: 'grapheme', maxLength: 400 }),
        (x, y) => {
          const [nx, ny] = [encodeName(x), encodeName(y)]
          assert.ok(Buffer.byteLength(`${nx}.json`) <= 255)
          assert.equal(nx === ny, x === y)
        }
      )
    )
    const long = '/proc/1/ns/'.repeat(40)
    assert.equal(decodeName(encodeName(long)), undefined)
    assert.notEqual(encodeName(long), encodeName(`${long}x`))
    assert.equal(encodeName('fd00::1'), 'fd00%3A%3A1')
  })
})
