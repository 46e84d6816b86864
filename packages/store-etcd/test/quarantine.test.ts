import { strict as assert } from 'node:assert'
import { after, describe, it } from 'node:test'
import * as O from 'fp-ts/lib/Option.js'
import { Etcd3 } from 'etcd3'
import {
  Lease,
  quarantineHolder,
  type AddressSpace,
  type IpAddress,
  type NetworkId,
  type PoolId,
  type Store
} from '@isthmus/core'
import { sampleLease, sampleNetwork, samplePool } from '@isthmus/core/testing'
import { etcdStore, storeKeys } from '../src/index.js'
import { freshPrefix, right, sharedEtcd } from './support/etcd.js'

const etcd = sharedEtcd()
const closers: Array<() => Promise<void> | void> = []
after(async () => {
  for (const c of closers) await c()
})

/** A store on a fresh prefix, and a raw etcd3 client to write under it as a broken writer would. */
const fixture = async () => {
  const e = await etcd()
  const prefix = freshPrefix()
  const store: Store = await right(etcdStore({ endpoints: [e.endpoint], prefix }))
  const raw = new Etcd3({ hosts: [e.endpoint] })
  closers.push(
    () => store.close(),
    () => raw.close()
  )
  const keys = storeKeys(prefix)
  const under = async () => (await raw.getAll().prefix(prefix).keys()).sort()
  return { store, raw, keys, prefix, under }
}

const SPACE = 'isthmus-local' as AddressSpace
const envelope = (kind: string, data: unknown, schema = 1) => JSON.stringify({ schema, kind, data })

describe('etcdStore quarantine', () => {
  it('moves an undecodable record aside: get answers none, list skips it, the entry tells what and why', async () => {
    const { store, raw, keys, under } = await fixture()
    const good = sampleNetwork('net-good')
    await right(store.networks.put(good))
    await raw.put(keys.record('networks', 'net-1')).value('{"schema":1,"kind":"network","data":{"id":')
    await raw
      .put(keys.record('networks', 'net-2'))
      .value(envelope('network', { ...sampleNetwork('net-2'), ipv4: [{ subnet: '10.1.0.0/24', gateway: 'nope' }] }))
    await raw.put(keys.record('networks', 'net-3')).value(envelope('network', sampleNetwork('net-other')))
    await raw.put(keys.record('networks', 'net-4')).value(envelope('network', sampleNetwork('net-4'), 7))
    await raw.put(`${keys.collection('networks')}a/b`).value(envelope('network', sampleNetwork('net-5')))

    assert.deepEqual(await right(store.networks.get('net-1' as NetworkId)), O.none)
    assert.deepEqual(await right(store.networks.list()), [good])
    assert.deepEqual(await right(store.networks.list()), [good])

    const entries = await right(store.quarantine.list())
    assert.equal(entries.length, 5)
    const byKey = new Map(entries.map((x) => [x.key ?? x.object, x]))
    const e1 = byKey.get('net-1')
    assert.ok(e1 !== undefined)
    assert.equal(e1.kind, 'network')
    assert.equal(e1.object, 'network net-1')
    assert.match(e1.reason, /not JSON/)
    assert.equal(e1.location, `etcd key ${keys.quarantineEntry(e1.id)}`)
    assert.equal(e1.formerLocation, `etcd key ${keys.record('networks', 'net-1')}`)
    assert.match(byKey.get('net-2')?.reason ?? '', /^ipv4\.0\.gateway: /)
    assert.match(byKey.get('net-3')?.reason ?? '', /holds the network net-other/)
    assert.match(byKey.get('net-4')?.reason ?? '', /schema: version 7/)
    assert.ok(entries.some((x) => x.key === undefined && /not under the key of a record/.test(x.reason)))
    // Only the good record and the entries are left; the bytes are kept in the entry.
    const left = await under()
    assert.deepEqual(
      left.filter((k) => !k.startsWith(keys.quarantine)),
      [keys.record('networks', 'net-good')]
    )
    const kept = JSON.parse((await raw.get(keys.quarantineEntry(e1.id)).string()) ?? '{}') as {
      data: { bytes: { encoding: string; data: string } }
    }
    assert.deepEqual(kept.data.bytes, { encoding: 'utf8', data: '{"schema":1,"kind":"network","data":{"id":' })

    // A record put again later is read as usual; dropping an entry forgets it.
    await right(store.networks.put(sampleNetwork('net-1')))
    assert.deepEqual(await right(store.networks.get('net-1' as NetworkId)), O.some(sampleNetwork('net-1')))
    assert.equal(await right(store.quarantine.drop(e1.id)), true)
    assert.equal(await right(store.quarantine.drop(e1.id)), false)
    assert.equal((await right(store.quarantine.list())).length, 4)
  })

  it('keeps the address of an unreadable lease held until its entry is dropped', async () => {
    const { store, raw, keys } = await fixture()
    const a = '10.1.0.5' as IpAddress
    await right(store.pools.put(samplePool('isthmus-local/10.1.0.0/24')))
    await raw.put(keys.lease(SPACE, a)).value('garbage')
    // reserve never frees it: a value there, readable or not, is a taken address
    assert.equal(await right(store.leases.reserve(sampleLease(SPACE, a, { kind: 'gateway' }))), false)

    const held = O.toUndefined(await right(store.leases.get(SPACE, a)))
    assert.ok(held !== undefined)
    const [entry] = await right(store.quarantine.list())
    assert.ok(entry !== undefined)
    assert.deepEqual(held.owner, quarantineHolder(entry.id))
    // no pool named in the bytes: the pool of the space whose subnet holds the address
    assert.equal(held.poolId, 'isthmus-local/10.1.0.0/24')
    assert.deepEqual(entry.holds, { addressSpace: SPACE, address: a })
    assert.equal(entry.kind, 'lease')
    assert.equal(entry.object, `lease of ${a} in ${SPACE}`)
    assert.deepEqual(await right(store.leases.list(SPACE)), [held])

    // Another owner's release or transfer leaves the hold; a reserve still answers false.
    await right(store.leases.release(SPACE, a, { kind: 'gateway' }))
    assert.equal(await right(store.leases.transfer(SPACE, a, { kind: 'gateway' }, { kind: 'gateway' })), false)
    assert.equal(await right(store.leases.reserve(sampleLease(SPACE, a, { kind: 'gateway' }))), false)
    assert.deepEqual(await right(store.leases.get(SPACE, a)), O.some(held))

    assert.equal(await right(store.quarantine.drop(entry.id)), true)
    assert.deepEqual(await right(store.leases.get(SPACE, a)), O.none)
    assert.equal(await right(store.leases.reserve(sampleLease(SPACE, a, { kind: 'gateway' }))), true)
  })

  it('holds an unreadable lease found by a listing, in the pool its bytes still name', async () => {
    const { store, raw, keys } = await fixture()
    const good = sampleLease(SPACE, '10.1.0.6', { kind: 'gateway' }, 'pool-a')
    assert.equal(await right(store.leases.reserve(good)), true)
    const bad = { ...Lease.encode(sampleLease(SPACE, '10.1.0.7', { kind: 'gateway' }, 'pool-x')), mac: 'nope' }
    await raw.put(keys.lease(SPACE, '10.1.0.7')).value(envelope('lease', bad))
    const other = Lease.encode(sampleLease(SPACE, '10.1.0.9', { kind: 'gateway' }, 'pool-a'))
    await raw.put(keys.lease(SPACE, '10.1.0.8')).value(envelope('lease', other))
    await raw.put(`${keys.leaseSpace(SPACE)}not-an-address`).value(envelope('lease', other))

    const listed = await right(store.leases.list(SPACE))
    assert.deepEqual(
      listed.map((l) => [l.address, l.poolId, l.owner.kind]),
      [
        ['10.1.0.6', 'pool-a', 'gateway'],
        ['10.1.0.7', 'pool-x', 'runtime'],
        // the lease of another address under this one's key: the pool its bytes name
        ['10.1.0.8', 'pool-a', 'runtime']
      ]
    )
    assert.deepEqual(await right(store.leases.list(SPACE, 'pool-x' as PoolId)), [listed[1]])
    const entries = await right(store.quarantine.list())
    assert.equal(entries.length, 3)
    assert.equal(entries.filter((x) => x.holds !== undefined).length, 2)
    // the hold is an ordinary lease for its holder
    const hold = listed[1]!
    await right(store.leases.release(SPACE, hold.address, hold.owner))
    assert.deepEqual(await right(store.leases.get(SPACE, hold.address)), O.none)
  })
})
