import { strict as assert } from 'node:assert'
import { after, describe, it } from 'node:test'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { Etcd3 } from 'etcd3'
import { Lease, Network, type AddressSpace, type IpAddress } from '@isthmus/core'
import { sampleEndpoint, sampleLease, sampleNetwork, samplePool } from '@isthmus/core/testing'
import { storeContract } from '@isthmus/core/testing/store-contract'
import { uniquePrefix } from '@isthmus/testkit'
import { clusterPrefix, clusterRoot, etcdStore, hostStorePrefix } from '../src/index.js'
import { freshPrefix, right, sharedEtcd } from './support/etcd.js'

const etcd = sharedEtcd()

storeContract('etcdStore', async () => {
  const e = await etcd()
  return { store: await right(etcdStore({ endpoints: [e.endpoint], prefix: freshPrefix() })), cleanup: async () => {} }
})

const closers: Array<() => Promise<void> | void> = []
after(async () => {
  for (const c of closers) await c()
})

describe('etcdStore in etcd', () => {
  it('keeps each thing under its key of the layout, in its envelope, and nothing else', async () => {
    const e = await etcd()
    const cluster = uniquePrefix('test')
    const base = clusterRoot(cluster)
    const prefix = hostStorePrefix(cluster, 'h1')
    const store = await right(etcdStore({ endpoints: [e.endpoint], prefix }))
    const raw = new Etcd3({ hosts: [e.endpoint] })
    closers.push(
      () => store.close(),
      () => raw.close()
    )
    const space = 'isthmus-local' as AddressSpace
    const net = sampleNetwork('net-1')
    const pool = samplePool('isthmus-local/10.1.0.0/24')
    const lease = sampleLease(space, 'fd00:1::5', { kind: 'gateway' }, pool.id)
    await right(store.networks.put(net))
    await right(store.endpoints.put(sampleEndpoint('ep-1')))
    await right(store.pools.put(pool))
    assert.equal(await right(store.leases.reserve(lease)), true)
    await right(store.leases.setCursor(pool.id, '10.1.0.7' as IpAddress))
    const inside = await right(
      store.withLock(
        'space:isthmus-local',
        TE.fromTask(() => raw.getAll().prefix(base).keys())
      )
    )

    assert.deepEqual(inside.sort(), [
      `${prefix}cursors/isthmus-local%2F10.1.0.0%2F24`,
      `${prefix}endpoints/ep-1`,
      `${prefix}leases/isthmus-local/fd00:1::5`,
      `${prefix}locks/space:isthmus-local`,
      `${prefix}networks/net-1`,
      `${prefix}pools/isthmus-local%2F10.1.0.0%2F24`
    ])
    assert.equal(prefix, `/isthmus/${cluster}/hosts/h1/`)
    assert.equal(clusterPrefix(cluster), `/isthmus/${cluster}/cluster/`)
    assert.deepEqual(JSON.parse((await raw.get(`${prefix}networks/net-1`).string()) ?? ''), {
      schema: 1,
      kind: 'network',
      data: Network.encode(net)
    })
    assert.deepEqual(JSON.parse((await raw.get(`${prefix}leases/isthmus-local/fd00:1::5`).string()) ?? ''), {
      schema: 1,
      kind: 'lease',
      data: Lease.encode(lease)
    })
    // the lock is gone with its task
    assert.deepEqual(await raw.getAll().prefix(`${prefix}locks/`).keys(), [])
  })

  it('lists more records than one answer of etcd holds, all of them once', async () => {
    const e = await etcd()
    const store = await right(etcdStore({ endpoints: [e.endpoint], prefix: freshPrefix() }))
    closers.push(() => store.close())
    const space = 'isthmus-local' as AddressSpace
    const addresses = Array.from({ length: 2_500 }, (_, i) => `10.9.${Math.floor(i / 250)}.${(i % 250) + 1}`)
    for (let i = 0; i < addresses.length; i += 250) {
      await Promise.all(
        addresses.slice(i, i + 250).map((a) => right(store.leases.reserve(sampleLease(space, a, { kind: 'gateway' }))))
      )
    }
    const listed = (await right(store.leases.list(space))).map((l) => l.address)
    assert.equal(listed.length, addresses.length)
    assert.deepEqual([...listed].sort(), [...addresses].sort())
  })
})
