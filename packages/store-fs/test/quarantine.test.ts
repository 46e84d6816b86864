/**
 * Quarantine on read, on real files: every way a record file can be unreadable (cut short,
 * garbage, a bad field, another schema, kind or key) is moved aside with its reason and bytes,
 * logged once, and never stops work on other records. An unreadable lease keeps its address held
 * (the IPAM engine over this store skips it and refuses it) until the operator drops the entry.
 * Errors name the object, never the file.
 */
import { strict as assert } from 'node:assert'
import { existsSync } from 'node:fs'
import { mkdir, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import * as O from 'fp-ts/lib/Option.js'
import {
  DEFAULT_LOCAL_SPACE,
  Network,
  describe as describeError,
  makeIpam,
  quarantineHolder,
  type AddressSpace,
  type EndpointId,
  type IpAddress,
  type LeaseOwner,
  type NetworkId,
  type PoolId,
  type Store,
  type Subnet
} from '@isthmus/core'
import {
  expectRight,
  fixedClock,
  left,
  recordingLogger,
  right,
  sampleEndpoint,
  sampleLease,
  sampleNetwork,
  type RecordingLogger
} from '@isthmus/core/testing'
import { layout } from '../src/index.js'
import { fileQuarantine } from '../src/quarantine.js'
import { openStore, removeDir, tempDir } from './support/children.js'

const made: string[] = []
after(async () => {
  await Promise.all(made.map(removeDir))
})

const opened = async (): Promise<{ dir: string; store: Store; log: RecordingLogger }> => {
  const dir = await tempDir()
  made.push(dir)
  const log = recordingLogger()
  return { dir, store: await openStore(dir, { log: log.port }), log }
}

const QUARANTINED = 'quarantined an unreadable record'
const linesFor = (log: RecordingLogger, object: string) =>
  log.state.entries.filter((e) => e.msg === QUARANTINED && e.fields['object'] === object)

const SPACE = DEFAULT_LOCAL_SPACE
const ep = (id: string): LeaseOwner => ({ kind: 'endpoint', id: id as EndpointId })

describe('quarantine of unreadable records', () => {
  it('moves each kind of bad file aside: get answers none, list skips it, one log line, the bytes kept', async () => {
    const { dir, store, log } = await opened()
    const L = layout(dir)
    const good = sampleNetwork('good')
    await expectRight(store.networks.put(good))
    const goodText = await readFile(L.record('networks', 'good'), 'utf8')
    const envelope = (data: unknown, schema = 1, kind = 'network') => JSON.stringify({ schema, kind, data })
    await expectRight(store.endpoints.put(sampleEndpoint('ep-1')))
    const cases: ReadonlyArray<readonly [string, string, RegExp]> = [
      ['cut short', goodText.slice(0, goodText.length / 2), /^not JSON/],
      ['garbage', '\u0000\u00ff garbage {', /^not JSON/],
      [
        'bad field',
        envelope({ ...Network.encode(sampleNetwork('x')), mtu: 'big' }),
        /^mtu: expected number, got "big"/
      ],
      ['another schema', envelope({ anything: true }, 7), /^schema: version 7 is not one this isthmus reads/],
      [
        'another kind',
        await readFile(L.record('endpoints', 'ep-1'), 'utf8'),
        /^kind: expected "network", got "endpoint"/
      ],
      ['another key', goodText, /^holds network good, not the record of this file/]
    ]
    for (const [i, [name, text, reason]] of cases.entries()) {
      const id = `bad-${i}` as NetworkId
      const path = L.record('networks', id)
      await writeFile(path, text)
      // half of the cases are first met by a listing, the others by a get
      if (i % 2 === 0) {
        assert.deepEqual(
          (await expectRight(store.networks.list())).map((n) => n.id),
          ['good'],
          name
        )
      }
      assert.deepEqual(await expectRight(store.networks.get(id)), O.none, name)
      assert.deepEqual(
        (await expectRight(store.networks.list())).map((n) => n.id),
        ['good'],
        name
      )
      assert.equal(existsSync(path), false, `${name}: moved away`)
      const entry = (await expectRight(store.quarantine.list())).find((q) => q.key === id)
      assert.ok(entry !== undefined, `${name}: listed`)
      assert.deepEqual([entry.kind, entry.object, entry.formerLocation], ['network', `network ${id}`, path], name)
      assert.match(entry.reason, reason, name)
      assert.equal(await readFile(entry.location, 'utf8'), text, `${name}: the bytes as found`)
      assert.ok(Math.abs(Date.parse(entry.at) - Date.now()) < 60_000, name)
      assert.equal(linesFor(log, `network ${id}`).length, 1, `${name}: logged once`)
      assert.equal(linesFor(log, `network ${id}`)[0]?.fields['file'], path, `${name}: the log line has the file`)
      // the id is free for a new record
      await expectRight(store.networks.put(sampleNetwork(id)))
      assert.deepEqual(await expectRight(store.networks.get(id)), O.some(sampleNetwork(id)))
      await expectRight(store.networks.delete(id))
    }
    assert.equal((await expectRight(store.quarantine.list())).length, cases.length)
    assert.equal(log.state.entries.filter((e) => e.msg === QUARANTINED).length, cases.length)
    assert.deepEqual(await expectRight(store.networks.get(good.id)), O.some(good))
    await store.close()
  })

  it('quarantines in every collection, a file whose name is no key too, and a dropped entry is gone with its bytes', async () => {
    const { dir, store, log } = await opened()
    const L = layout(dir)
    // A hashed name (what a key too long to spell out becomes, names.ts) names no key.
    const hashed = `n~${'ab'.repeat(32)}.json`
    await expectRight(store.networks.put(sampleNetwork('ok')))
    await writeFile(join(L.collection('networks'), hashed), '{"schema":1,"kind":"network","data":{"id":')
    await writeFile(L.record('endpoints', 'ep-2'), '{')
    await writeFile(L.record('pools', 'isthmus-local/10.9.0.0/24'), 'null')
    assert.deepEqual(
      (await expectRight(store.networks.list())).map((x) => x.id),
      ['ok']
    )
    assert.deepEqual(await expectRight(store.endpoints.list()), [])
    assert.deepEqual(await expectRight(store.pools.get('isthmus-local/10.9.0.0/24' as PoolId)), O.none)
    const entries = await expectRight(store.quarantine.list())
    assert.deepEqual(entries.map((e) => [e.kind, e.object]).sort(), [
      ['endpoint', 'endpoint ep-2'],
      ['network', `network in file ${hashed}`],
      ['pool', 'pool isthmus-local/10.9.0.0/24']
    ])
    assert.equal(log.state.entries.filter((e) => e.msg === QUARANTINED).length, 3)
    const [first] = entries
    assert.equal(await expectRight(store.quarantine.drop(first!.id)), true)
    assert.equal(existsSync(first!.location), false)
    assert.deepEqual(
      (await expectRight(store.quarantine.list())).map((e) => e.id),
      entries.slice(1).map((e) => e.id)
    )
    assert.equal(await expectRight(store.quarantine.drop(first!.id)), false)
    assert.equal(await expectRight(store.quarantine.drop('../../v1/networks/x')), false)
    await store.close()
  })

  it('never takes a temp file, a tombstone or a directory for a record: nothing of them is quarantined', async () => {
    const { dir, store } = await opened()
    const L = layout(dir)
    await expectRight(store.networks.put(sampleNetwork('n1')))
    await expectRight(store.leases.reserve(sampleLease(SPACE, '10.1.0.5', ep('e1'))))
    await writeFile(join(L.collection('networks'), '.tmp-1-0-abc'), '{"cut')
    await writeFile(join(L.leaseDir(SPACE), '.tomb-1-0-abc'), 'junk')
    await mkdir(join(L.collection('networks'), 'n2.json.lock'))
    await mkdir(L.record('networks', 'n3'))
    assert.deepEqual(
      (await expectRight(store.networks.list())).map((n) => n.id),
      ['n1']
    )
    assert.deepEqual(await expectRight(store.networks.get('n3' as NetworkId)), O.none)
    assert.equal((await expectRight(store.leases.list(SPACE))).length, 1)
    assert.deepEqual(await expectRight(store.quarantine.list()), [])
    await store.close()
  })

  it('lists an entry whose description was lost, from its id and bytes', async () => {
    const { dir, store } = await opened()
    const id = 'network-20260102T030405Z-0123456789ab'
    const bytes = join(layout(dir).quarantine, `${id}.record`)
    await writeFile(bytes, 'whatever')
    await writeFile(join(layout(dir).quarantine, 'stray.txt'), 'not an entry')
    const [entry, ...rest] = await expectRight(store.quarantine.list())
    assert.deepEqual(rest, [])
    assert.deepEqual(
      [entry?.id, entry?.kind, entry?.at, entry?.location],
      [id, 'network', '2026-01-02T03:04:05.000Z', bytes]
    )
    assert.match(entry?.reason ?? '', /^not described/)
    assert.equal(await expectRight(store.quarantine.drop(id)), true)
    assert.equal(existsSync(bytes), false)
    await store.close()
  })

  it('never moves a record that a put replaced after it was judged bad: the new record stays in place', async () => {
    const { dir, store, log } = await opened()
    const L = layout(dir)
    await expectRight(store.networks.put(sampleNetwork('n1')))
    const path = L.record('networks', 'n1')
    const now = await readFile(path, 'utf8')
    const q = fileQuarantine(L.quarantine, log.port)
    const moved = await expectRight(
      q.moveAside({
        kind: 'network',
        key: 'n1',
        object: 'network n1',
        path,
        dir: L.collection('networks'),
        text: '{"cut',
        reason: 'not JSON'
      })
    )
    assert.equal(moved, false)
    assert.equal(await readFile(path, 'utf8'), now)
    assert.deepEqual(await expectRight(store.quarantine.list()), [])
    assert.deepEqual(log.state.entries, [])
    await store.close()
  })
})

describe('quarantine of unreadable leases', () => {
  it('keeps the address held: dynamic allocation skips it, a static request is refused as in use, until the entry is dropped', async () => {
    const { dir, store, log } = await opened()
    const ipam = makeIpam({ store, clock: fixedClock().port })
    const pool = await right(ipam.requestPool({ addressSpace: SPACE, family: 4, subnet: '10.1.0.0/29' as Subnet })())
    const a3 = '10.1.0.3' as IpAddress
    await right(ipam.allocate(pool.id, ep('e1'), { address: a3 })())
    const file = layout(dir).lease(SPACE, a3)
    await truncate(file, 40)
    const cut = await readFile(file, 'utf8')

    const refused = await left(ipam.allocate(pool.id, ep('e2'), { address: a3 })())
    assert.equal(refused._tag, 'AddressInUse', describeError(refused))
    const [entry] = await expectRight(store.quarantine.list())
    assert.ok(entry !== undefined)
    assert.match(
      describeError(refused),
      new RegExp(`^address 10\\.1\\.0\\.3 is already in use by runtime reservation quarantined record ${entry.id}`)
    )
    assert.deepEqual(
      [entry.kind, entry.key, entry.object, entry.holds],
      ['lease', a3, `lease of ${a3} in ${SPACE}`, { addressSpace: SPACE, address: a3 }]
    )
    assert.match(entry.reason, /^not JSON/)
    assert.equal(await readFile(entry.location, 'utf8'), cut)

    // the file holds the hold now, a lease like any other, in the pool around the address
    const hold = O.toUndefined(await expectRight(store.leases.get(SPACE, a3)))
    assert.deepEqual([hold?.owner, hold?.poolId], [quarantineHolder(entry.id), pool.id])
    assert.deepEqual(
      (await expectRight(store.leases.list(SPACE, pool.id))).map((l) => l.address),
      [pool.gateway, a3]
    )

    // every other address goes on being handed out, never this one (.1 is the gateway)
    const got: string[] = []
    for (let i = 0; i < 4; i++) got.push((await right(ipam.allocate(pool.id, ep(`d${i}`))())).address)
    assert.deepEqual([...got].sort(), ['10.1.0.2', '10.1.0.4', '10.1.0.5', '10.1.0.6'])
    assert.equal((await left(ipam.allocate(pool.id, ep('d9'))()))._tag, 'PoolExhausted')

    // its former owner's release, or anyone else's, leaves the hold
    await right(ipam.release(SPACE, a3, ep('e1'))())
    await expectRight(store.leases.release(SPACE, a3, ep('e1')))
    assert.equal(await expectRight(store.leases.transfer(SPACE, a3, ep('e1'), ep('e3'))), false)
    assert.ok(O.isSome(await expectRight(store.leases.get(SPACE, a3))))
    assert.equal(linesFor(log, `lease of ${a3} in ${SPACE}`).length, 1)
    assert.equal(linesFor(log, `lease of ${a3} in ${SPACE}`)[0]?.fields['holds'], `${a3} in ${SPACE}`)

    // the operator frees it
    assert.equal(await expectRight(store.quarantine.drop(entry.id)), true)
    assert.deepEqual(await expectRight(store.leases.get(SPACE, a3)), O.none)
    assert.equal((await right(ipam.allocate(pool.id, ep('e2'), { address: a3 })())).address, a3)
    await store.close()
  })

  it('a listing replaces an unreadable lease by its hold in the pool its bytes name; a stray file is moved aside', async () => {
    const { dir, store, log } = await opened()
    const L = layout(dir)
    const space = 'tenant-a' as AddressSpace
    const poolId = 'tenant-a/10.9.0.0/24' as PoolId
    const a = '10.9.0.7' as IpAddress
    await expectRight(store.leases.reserve(sampleLease(space, a, ep('e1'), poolId)))
    await expectRight(store.leases.reserve(sampleLease(space, '10.9.0.8', ep('e2'), poolId)))
    const text = await readFile(L.lease(space, a), 'utf8')
    await writeFile(L.lease(space, a), text.replace('"since"', '"mac":"nope","since"'))
    await writeFile(join(L.leaseDir(space), 'not-an-address.json'), 'junk')
    const listed = await expectRight(store.leases.list(space, poolId))
    assert.deepEqual(
      listed.map((l) => [l.address, l.owner.kind]),
      [
        [a, 'runtime'],
        ['10.9.0.8', 'endpoint']
      ]
    )
    const entries = await expectRight(store.quarantine.list())
    assert.deepEqual(entries.map((e) => [e.object, e.holds?.address]).sort(), [
      [`lease in file not-an-address.json of ${space}`, undefined],
      [`lease of ${a} in ${space}`, a]
    ])
    assert.match(entries.find((e) => e.holds !== undefined)!.reason, /^mac: expected a MAC address/)
    assert.equal(await expectRight(store.leases.reserve(sampleLease(space, a, ep('e9'), poolId))), false)
    assert.equal(log.state.entries.filter((e) => e.msg === QUARANTINED).length, 2)
    assert.equal(existsSync(join(L.leaseDir(space), 'not-an-address.json')), false)
    await store.close()
  })
})

describe('error sentences', () => {
  it('name the object, never the state directory, for I/O failures', async () => {
    const { dir, store } = await opened()
    const L = layout(dir)
    // a directory of the layout that became a file: every call on it fails with ENOTDIR
    for (const d of [L.collection('endpoints'), L.locks]) {
      await rm(d, { recursive: true })
      await writeFile(d, 'not a directory')
    }
    await mkdir(L.leaseSpaces, { recursive: true })
    await writeFile(L.leaseDir(SPACE), 'not a directory')
    const sentences = [
      await left(store.endpoints.put(sampleEndpoint('ep-1'))),
      await left(store.endpoints.get('ep-1' as EndpointId)),
      await left(store.endpoints.list()),
      await left(store.leases.reserve(sampleLease(SPACE, '10.1.0.5', ep('e1')))),
      await left(store.withLock('space:x', async () => ({ _tag: 'Right', right: 1 }) as const))
    ].map(describeError)
    assert.deepEqual(sentences, [
      'I/O failure during write of endpoint ep-1: ENOTDIR: not a directory',
      'I/O failure during read of endpoint ep-1: ENOTDIR: not a directory',
      'I/O failure during readdir of the endpoint records: ENOTDIR: not a directory',
      `I/O failure during mkdir of the leases of ${SPACE}: EEXIST: file already exists`,
      'I/O failure during take of lock "space:x": ENOTDIR: not a directory'
    ])
    for (const s of sentences) assert.ok(!s.includes(dir), s)
    await store.close()
  })
})
