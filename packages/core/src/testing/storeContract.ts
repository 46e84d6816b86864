/**
 * The Store contract as a reusable node:test suite: every Store adapter (memory, files, etcd)
 * runs the same behaviours, so the in-memory reference and the real stores cannot drift apart.
 * Call `storeContract(name, make)` at the top level of a test file; `make` opens a fresh, empty
 * store and says how to remove what it made.
 *
 * Only the port is used here (no file system), so adapter-specific checks (files on disk,
 * crashes, several processes) stay in each adapter's own tests.
 */
import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { describe as describeError, type CoreError } from '../errors.js'
import { left } from './assertions.js'
import {
  assertExcluded,
  exclusionProbe,
  expectRight,
  sampleEndpoint,
  sampleLease,
  sampleNetwork,
  samplePool
} from './samples.js'
import { attachmentEndpointId } from '../ids.js'
import type { AddressSpace, ContainerId, EndpointId, IfName, NetworkId, PoolId } from '../ids.js'
import type { IpAddress } from '../model/Address.js'
import type { Endpoint } from '../model/Endpoint.js'
import { type Lease, type Pool, sameOwner, type LeaseOwner } from '../model/Ipam.js'
import type { Network } from '../model/Network.js'
import type { Collection, Store } from '../ports/Store.js'

/** What `make` returns: an empty store and how to remove what it made. @category testing */
export interface StoreFixture {
  readonly store: Store
  readonly cleanup: () => Promise<void>
}

/** @category testing */
export interface StoreContractOptions {
  /** Runs of the model-based reserve/release/transfer property (default 30). */
  readonly modelRuns?: number
}

const byKey =
  <A>(keyOf: (a: A) => string) =>
  (x: A, y: A): number =>
    keyOf(x) < keyOf(y) ? -1 : keyOf(x) > keyOf(y) ? 1 : 0

const ep = (id: string): LeaseOwner => ({ kind: 'endpoint', id: id as EndpointId })
const runtime = (ref: string): LeaseOwner => ({ kind: 'runtime', ref })
const GATEWAY: LeaseOwner = { kind: 'gateway' }

const SPACE = 'isthmus-local' as AddressSpace
const OTHER_SPACE = 'isthmus-global' as AddressSpace

interface CollectionCase<K extends string, A> {
  readonly name: string
  readonly kind: 'network' | 'endpoint' | 'pool'
  readonly pick: (s: Store) => Collection<K, A>
  readonly keyOf: (a: A) => K
  /** Keys a file name cannot hold as they are: '/', ':', '%', '~', spaces, very long ones. */
  readonly keys: ReadonlyArray<K>
  readonly sample: (key: K, v: number) => A
  /** A record of `key` with one bad field, and that field's path in a DecodeFailure. */
  readonly broken: (key: K) => { readonly record: A; readonly field: string }
}

// A record with one field its codec refuses, as a caller's bug would hand it to `put`.
const withField = <A>(record: A, patch: Record<string, unknown>): A => ({ ...record, ...patch })

const cases = {
  networks: {
    name: 'networks',
    kind: 'network',
    pick: (s) => s.networks,
    keyOf: (n) => n.id,
    keys: ['net-1', 'a.b_c-d', '0123456789abcdef'.repeat(8)].map((k) => k as NetworkId),
    sample: sampleNetwork,
    broken: (k) => ({
      record: withField(sampleNetwork(k), { ipv4: [{ subnet: '10.1.0.0/24', gateway: 'nope' }] }),
      field: 'ipv4.0.gateway'
    })
  } satisfies CollectionCase<NetworkId, Network>,
  endpoints: {
    name: 'endpoints',
    pick: (s) => s.endpoints,
    keyOf: (e) => e.id,
    keys: [
      'ep-1',
      attachmentEndpointId('net-1', 'ctr1' as ContainerId, 'eth0' as IfName),
      `long${'x'.repeat(252)}`
    ].map((k) => k as EndpointId),
    sample: sampleEndpoint,
    kind: 'endpoint',
    broken: (k) => ({
      record: withField(sampleEndpoint(k), {
        portMappings: [{ protocol: 'tcp', containerPort: 80, hostPort: 8080, hostIp: 'nope' }]
      }),
      field: 'portMappings.0.hostIp'
    })
  } satisfies CollectionCase<EndpointId, Endpoint>,
  pools: {
    name: 'pools',
    pick: (s) => s.pools,
    keyOf: (p) => p.id,
    keys: ['isthmus-local/10.1.0.0/24', 'isthmus-local/fd00::/64', '%41', '.dot', 'ünïcødé/ß'].map((k) => k as PoolId),
    sample: samplePool,
    kind: 'pool',
    // NaN is a number to the codec, but JSON carries it as null: it would not decode back.
    broken: (k) => ({ record: withField(samplePool(k), { refs: Number.NaN }), field: 'refs' })
  } satisfies CollectionCase<PoolId, Pool>
}

// -------------------------------------------------------------------------------------
// the suite
// -------------------------------------------------------------------------------------

/**
 * Register the Store contract tests under `describe(name)`.
 *
 * @category testing
 */
export const storeContract = (
  name: string,
  make: () => Promise<StoreFixture>,
  options: StoreContractOptions = {}
): void => {
  const using = async (f: (store: Store) => Promise<void>): Promise<void> => {
    const fx = await make()
    try {
      await f(fx.store)
    } finally {
      await fx.store.close()
      await fx.cleanup()
    }
  }

  const collectionTests = <K extends string, A>(c: CollectionCase<K, A>): void => {
    describe(c.name, () => {
      it('round-trips every record through put, get and list', () =>
        using(async (store) => {
          const coll = c.pick(store)
          const records = c.keys.map((k) => c.sample(k, 1))
          for (const r of records) await expectRight(coll.put(r))
          for (const r of records) assert.deepEqual(await expectRight(coll.get(c.keyOf(r))), O.some(r))
          const listed = [...(await expectRight(coll.list()))].sort(byKey(c.keyOf))
          assert.deepEqual(listed, [...records].sort(byKey(c.keyOf)))
        }))

      it('put replaces the whole record: optional fields left out are gone', () =>
        using(async (store) => {
          const coll = c.pick(store)
          const key = c.keys[0] as K
          await expectRight(coll.put(c.sample(key, 1)))
          await expectRight(coll.put(c.sample(key, 2)))
          assert.deepEqual(await expectRight(coll.get(key)), O.some(c.sample(key, 2)))
          assert.equal((await expectRight(coll.list())).length, 1)
        }))

      it('get of an absent key is none; delete removes; delete of an absent key succeeds', () =>
        using(async (store) => {
          const coll = c.pick(store)
          const [k1, k2] = c.keys as [K, K]
          assert.deepEqual(await expectRight(coll.get(k1)), O.none)
          await expectRight(coll.delete(k1))
          await expectRight(coll.put(c.sample(k1, 1)))
          await expectRight(coll.put(c.sample(k2, 1)))
          await expectRight(coll.delete(k1))
          assert.deepEqual(await expectRight(coll.get(k1)), O.none)
          assert.deepEqual(await expectRight(coll.list()), [c.sample(k2, 1)])
          await expectRight(coll.delete(k1))
        }))

      it('refuses a record that would not decode back, naming the object and the field, and writes nothing', () =>
        using(async (store) => {
          const coll = c.pick(store)
          const [k1, k2] = c.keys as [K, K]
          const good = c.sample(k1, 1)
          await expectRight(coll.put(good))
          for (const key of [k1, k2]) {
            const { record, field } = c.broken(key)
            const e = await left(coll.put(record))
            assert.equal(e._tag, 'DecodeFailure', describeError(e))
            assert.ok(e._tag === 'DecodeFailure' && e.what === `${c.kind} ${key}`, describeError(e))
            assert.ok(e._tag === 'DecodeFailure' && e.errors.some((x) => x.startsWith(`${field}: `)), describeError(e))
            assert.ok(e._tag === 'DecodeFailure' && e.errors.every((x) => !x.startsWith('data.')), describeError(e))
          }
          // the good record is untouched, and the bad one was never written
          assert.deepEqual(await expectRight(coll.get(k1)), O.some(good))
          assert.deepEqual(await expectRight(coll.get(k2)), O.none)
          assert.deepEqual(await expectRight(coll.list()), [good])
        }))

      it('hands out copies: changing a returned record does not change the store', () =>
        using(async (store) => {
          const coll = c.pick(store)
          const key = c.keys[0] as K
          const original = c.sample(key, 1)
          await expectRight(coll.put(original))
          const got = O.toUndefined(await expectRight(coll.get(key))) as Record<string, unknown>
          got['createdAt'] = 'changed'
          got['refs'] = -1
          got['interfaces'] = []
          assert.deepEqual(await expectRight(coll.get(key)), O.some(original))
        }))
    })
  }

  describe(`Store contract: ${name}`, () => {
    collectionTests(cases.networks)
    collectionTests(cases.endpoints)
    collectionTests(cases.pools)

    describe('leases', () => {
      const a4 = '10.1.0.5' as IpAddress
      const a6 = 'fd00:1::5' as IpAddress

      it('reserve is create-if-absent, per address space', () =>
        using(async (store) => {
          const L = store.leases
          assert.equal(await expectRight(L.reserve(sampleLease(SPACE, a4, ep('e1')))), true)
          assert.equal(await expectRight(L.reserve(sampleLease(SPACE, a4, ep('e2')))), false)
          assert.equal(await expectRight(L.reserve(sampleLease(SPACE, a4, ep('e1')))), false)
          assert.deepEqual(await expectRight(L.get(SPACE, a4)), O.some(sampleLease(SPACE, a4, ep('e1'))))
          // The same address in another space is another address.
          assert.equal(await expectRight(L.reserve(sampleLease(OTHER_SPACE, a4, ep('e2')))), true)
          assert.equal(await expectRight(L.reserve(sampleLease(SPACE, a6, GATEWAY))), true)
          assert.deepEqual(await expectRight(L.get(SPACE, a6)), O.some(sampleLease(SPACE, a6, GATEWAY)))
          assert.deepEqual(await expectRight(L.get(SPACE, '10.1.0.6' as IpAddress)), O.none)
        }))

      it('one of many concurrent reserves of one address wins, and the lease is the winner', () =>
        using(async (store) => {
          const L = store.leases
          const results = await Promise.all(
            Array.from({ length: 16 }, (_, i) => expectRight(L.reserve(sampleLease(SPACE, a4, runtime(`r${i}`)))))
          )
          assert.equal(results.filter((x) => x).length, 1)
          const winner = results.indexOf(true)
          assert.deepEqual(await expectRight(L.get(SPACE, a4)), O.some(sampleLease(SPACE, a4, runtime(`r${winner}`))))
        }))

      it('list gives the leases of a space, or of one pool of it', () =>
        using(async (store) => {
          const L = store.leases
          const leases = [
            sampleLease(SPACE, '10.1.0.5', ep('e1'), 'pool-a'),
            sampleLease(SPACE, '10.1.0.6', ep('e2'), 'pool-a'),
            sampleLease(SPACE, 'fd00:1::5', ep('e3'), 'pool-6'),
            sampleLease(OTHER_SPACE, '10.1.0.5', ep('e4'), 'pool-a')
          ]
          for (const l of leases) assert.equal(await expectRight(L.reserve(l)), true)
          const key = (l: Lease) => `${l.addressSpace} ${l.address}`
          const sorted = (ls: ReadonlyArray<Lease>) => [...ls].sort(byKey(key))
          assert.deepEqual(sorted(await expectRight(L.list(SPACE))), sorted(leases.slice(0, 3)))
          assert.deepEqual(sorted(await expectRight(L.list(SPACE, 'pool-a' as PoolId))), sorted(leases.slice(0, 2)))
          assert.deepEqual(await expectRight(L.list(OTHER_SPACE)), [leases[3]])
          assert.deepEqual(await expectRight(L.list('no-such-space' as AddressSpace)), [])
        }))

      it('release with a wrong owner keeps the lease; with the owner, or none, removes it; absent succeeds', () =>
        using(async (store) => {
          const L = store.leases
          await expectRight(L.reserve(sampleLease(SPACE, a4, ep('e1'))))
          await expectRight(L.reserve(sampleLease(SPACE, a6, runtime('x'))))
          await expectRight(L.release(SPACE, a4, ep('e2')))
          await expectRight(L.release(SPACE, a4, GATEWAY))
          await expectRight(L.release(SPACE, a4, runtime('e1')))
          assert.deepEqual(await expectRight(L.get(SPACE, a4)), O.some(sampleLease(SPACE, a4, ep('e1'))))
          await expectRight(L.release(OTHER_SPACE, a4))
          assert.ok(O.isSome(await expectRight(L.get(SPACE, a4))))
          await expectRight(L.release(SPACE, a4, ep('e1')))
          assert.deepEqual(await expectRight(L.get(SPACE, a4)), O.none)
          await expectRight(L.release(SPACE, a6))
          assert.deepEqual(await expectRight(L.get(SPACE, a6)), O.none)
          await expectRight(L.release(SPACE, a6))
          await expectRight(L.release(SPACE, a4, ep('e1')))
          assert.deepEqual(await expectRight(L.list(SPACE)), [])
          // A released address can be reserved again.
          assert.equal(await expectRight(L.reserve(sampleLease(SPACE, a4, ep('e9')))), true)
        }))

      it('transfer hands a lease from its owner to another, keeping the rest of it', () =>
        using(async (store) => {
          const L = store.leases
          const held = { ...sampleLease(SPACE, a6, runtime('req-1'), 'pool-6'), mac: '02:42:0a:01:00:05' } as Lease
          await expectRight(L.reserve(held))
          assert.equal(await expectRight(L.transfer(SPACE, a6, runtime('req-2'), ep('e1'))), false)
          assert.deepEqual(await expectRight(L.get(SPACE, a6)), O.some(held))
          assert.equal(await expectRight(L.transfer(SPACE, a6, runtime('req-1'), ep('e1'))), true)
          assert.deepEqual(await expectRight(L.get(SPACE, a6)), O.some({ ...held, owner: ep('e1') }))
          // The old owner no longer holds it.
          assert.equal(await expectRight(L.transfer(SPACE, a6, runtime('req-1'), ep('e2'))), false)
          await expectRight(L.release(SPACE, a6, runtime('req-1')))
          assert.deepEqual(await expectRight(L.get(SPACE, a6)), O.some({ ...held, owner: ep('e1') }))
          assert.equal(await expectRight(L.transfer(SPACE, a6, ep('e1'), ep('e1'))), true)
          assert.equal(await expectRight(L.transfer(SPACE, a4, ep('e1'), ep('e2'))), false)
          assert.deepEqual(await expectRight(L.get(SPACE, a4)), O.none)
          await expectRight(L.release(SPACE, a6, ep('e1')))
          assert.deepEqual(await expectRight(L.list(SPACE)), [])
        }))

      it('a transfer racing a release of the same lease: one wins whole, never a mix', () =>
        using(async (store) => {
          const L = store.leases
          for (let i = 0; i < 20; i++) {
            const address = `10.1.1.${i + 1}` as IpAddress
            await expectRight(L.reserve(sampleLease(SPACE, address, runtime('req'))))
            const [moved] = await Promise.all([
              expectRight(L.transfer(SPACE, address, runtime('req'), ep('e1'))),
              expectRight(L.release(SPACE, address, runtime('req')))
            ])
            const after = await expectRight(L.get(SPACE, address))
            if (moved) assert.deepEqual(after, O.some(sampleLease(SPACE, address, ep('e1'))))
            else assert.deepEqual(after, O.none)
          }
        }))

      it('refuses a lease that would not decode back, from reserve and transfer, naming the lease and the field', () =>
        using(async (store) => {
          const L = store.leases
          const bad = { ...sampleLease(SPACE, a4, runtime('r1')), mac: 'nope' } as Lease
          const e = await left(L.reserve(bad))
          assert.ok(e._tag === 'DecodeFailure' && e.what === `lease of ${a4} in ${SPACE}`, describeError(e))
          assert.ok(e._tag === 'DecodeFailure' && e.errors.some((x) => x.startsWith('mac: ')), describeError(e))
          assert.deepEqual(await expectRight(L.get(SPACE, a4)), O.none)
          assert.deepEqual(await expectRight(L.list(SPACE)), [])
          const good = sampleLease(SPACE, a4, runtime('r1'))
          assert.equal(await expectRight(L.reserve(good)), true)
          const to = { kind: 'endpoint', id: 'not an id' } as unknown as LeaseOwner
          const t = await left(L.transfer(SPACE, a4, runtime('r1'), to))
          assert.ok(t._tag === 'DecodeFailure' && t.what === `lease of ${a4} in ${SPACE}`, describeError(t))
          assert.ok(t._tag === 'DecodeFailure' && t.errors.some((x) => x.startsWith('owner')), describeError(t))
          assert.deepEqual(await expectRight(L.get(SPACE, a4)), O.some(good))
        }))

      it('keeps one round-robin cursor per pool', () =>
        using(async (store) => {
          const L = store.leases
          const p1 = 'isthmus-local/10.1.0.0/24' as PoolId
          const p2 = 'isthmus-local/fd00:1::/64' as PoolId
          assert.deepEqual(await expectRight(L.getCursor(p1)), O.none)
          await expectRight(L.setCursor(p1, '10.1.0.7' as IpAddress))
          await expectRight(L.setCursor(p2, 'fd00:1::9' as IpAddress))
          assert.deepEqual(await expectRight(L.getCursor(p1)), O.some('10.1.0.7'))
          await expectRight(L.setCursor(p1, '10.1.0.8' as IpAddress))
          assert.deepEqual(await expectRight(L.getCursor(p1)), O.some('10.1.0.8'))
          assert.deepEqual(await expectRight(L.getCursor(p2)), O.some('fd00:1::9'))
          assert.deepEqual(await expectRight(L.getCursor('other' as PoolId)), O.none)
          await expectRight(L.deleteCursor(p1))
          await expectRight(L.deleteCursor(p1))
          assert.deepEqual(await expectRight(L.getCursor(p1)), O.none)
          assert.deepEqual(await expectRight(L.getCursor(p2)), O.some('fd00:1::9'))
        }))

      it('behaves like a map from (space, address) to lease under any sequence of calls', async () => {
        await fc.assert(
          fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 25 }), (cmds) =>
            using(async (store) => {
              const model = new Map<string, Lease>()
              const key = (s: string, a: string) => `${s} ${a}`
              for (const c of cmds) {
                const k = key(c.space, c.address)
                const held = model.get(k)
                switch (c.op) {
                  case 'reserve': {
                    const lease = sampleLease(c.space, c.address, c.owner)
                    assert.equal(await expectRight(store.leases.reserve(lease)), held === undefined, 'reserve')
                    if (held === undefined) model.set(k, lease)
                    break
                  }
                  case 'release':
                    await expectRight(store.leases.release(c.space, c.address, c.owner))
                    if (held !== undefined && (c.owner === undefined || sameOwner(held.owner, c.owner))) model.delete(k)
                    break
                  case 'transfer': {
                    const ok = held !== undefined && sameOwner(held.owner, c.owner)
                    assert.equal(
                      await expectRight(store.leases.transfer(c.space, c.address, c.owner, c.to)),
                      ok,
                      'transfer'
                    )
                    if (ok && held !== undefined) model.set(k, { ...held, owner: c.to })
                    break
                  }
                }
                assert.deepEqual(await expectRight(store.leases.get(c.space, c.address)), O.fromNullable(model.get(k)))
              }
              for (const space of SPACES) {
                const listed = [...(await expectRight(store.leases.list(space)))].map((l) =>
                  key(l.addressSpace, l.address)
                )
                const expected = [...model.values()]
                  .filter((l) => l.addressSpace === space)
                  .map((l) => key(l.addressSpace, l.address))
                assert.deepEqual(listed.sort(), expected.sort())
              }
            })
          ),
          { numRuns: options.modelRuns ?? 30 }
        )
      })
    })

    describe('withLock', () => {
      it('runs tasks of one lock name one at a time', () =>
        using(async (store) => {
          const probe = exclusionProbe(3)
          const seen = await Promise.all(
            Array.from({ length: 8 }, () => expectRight(store.withLock('space:isthmus-local', probe.task)))
          )
          assertExcluded(probe, seen, 8)
        }))

      it('does not make one lock name wait for another', () =>
        using(async (store) => {
          let signal: () => void = () => undefined
          const signalled = new Promise<void>((resolve) => {
            signal = resolve
          })
          let timer: ReturnType<typeof setTimeout> | undefined
          const waiter = TE.fromTask(() =>
            Promise.race([
              signalled.then(() => 'signalled'),
              new Promise<string>((resolve) => {
                timer = setTimeout(() => resolve('timed out'), 3000)
              })
            ]).finally(() => clearTimeout(timer))
          )
          const signaller = TE.fromIO(() => {
            signal()
            return 'sent'
          })
          const [a, b] = await Promise.all([
            expectRight(store.withLock('a/b:c', waiter)),
            expectRight(store.withLock('other', signaller))
          ])
          assert.deepEqual([a, b], ['signalled', 'sent'])
        }))

      it("returns the task's failure and releases the lock whatever the task returns", () =>
        using(async (store) => {
          const failure: CoreError = { _tag: 'PoolExhausted', pool: 'p' }
          assert.deepEqual(await store.withLock('x', TE.left(failure))(), E.left(failure))
          assert.deepEqual(await store.withLock('x', TE.right(42))(), E.right(42))
          assert.deepEqual(await store.withLock('x', TE.left(failure))(), E.left(failure))
          assert.deepEqual(await store.withLock('x', TE.right('again'))(), E.right('again'))
        }))
    })

    it('does nothing until a task runs, and repeats it each time it runs', () =>
      using(async (store) => {
        const net = sampleNetwork('net-1')
        const get = store.networks.get(net.id)
        const put = store.networks.put(net)
        const del = store.networks.delete(net.id)
        const lease = sampleLease(SPACE, '10.1.0.5', runtime('r1'))
        const reserve = store.leases.reserve(lease)
        const release = store.leases.release(SPACE, lease.address)
        assert.deepEqual(await expectRight(store.networks.list()), [])
        await Promise.all([expectRight(put), expectRight(put)])
        assert.deepEqual(await expectRight(get), O.some(net))
        await expectRight(del)
        assert.deepEqual(await expectRight(get), O.none)
        await expectRight(put)
        assert.deepEqual(await expectRight(get), O.some(net))
        const twice = await Promise.all([expectRight(reserve), expectRight(reserve)])
        assert.deepEqual([...twice].sort(), [false, true])
        await expectRight(release)
        assert.equal(await expectRight(reserve), true)
        await expectRight(release)
        assert.deepEqual(await expectRight(store.leases.list(SPACE)), [])
      }))

    it('has an empty quarantine when nothing bad was ever stored; dropping an unknown entry answers false', () =>
      using(async (store) => {
        await expectRight(store.networks.put(sampleNetwork('net-1')))
        assert.deepEqual(await expectRight(store.networks.list()), [sampleNetwork('net-1')])
        assert.deepEqual(await expectRight(store.quarantine.list()), [])
        assert.equal(await expectRight(store.quarantine.drop('no-such-entry')), false)
      }))

    it('answers ping when usable', () =>
      using(async (store) => {
        assert.deepEqual(await store.ping()(), E.right(undefined))
      }))
  })
}

// -------------------------------------------------------------------------------------
// model-based commands
// -------------------------------------------------------------------------------------

const SPACES = [SPACE, OTHER_SPACE] as const
const ADDRESSES = ['10.1.0.5', '10.1.0.6', '10.1.0.7', 'fd00:1::5', 'fd00:1::6'].map((k) => k as IpAddress)
const OWNERS: ReadonlyArray<LeaseOwner> = [ep('e1'), ep('e2'), GATEWAY, runtime('r1'), { kind: 'aux', name: 'dns' }]

type Command =
  | { readonly op: 'reserve'; readonly space: AddressSpace; readonly address: IpAddress; readonly owner: LeaseOwner }
  | { readonly op: 'release'; readonly space: AddressSpace; readonly address: IpAddress; readonly owner?: LeaseOwner }
  | {
      readonly op: 'transfer'
      readonly space: AddressSpace
      readonly address: IpAddress
      readonly owner: LeaseOwner
      readonly to: LeaseOwner
    }

const place = fc.record({ space: fc.constantFrom(...SPACES), address: fc.constantFrom(...ADDRESSES) })
const owner = fc.constantFrom(...OWNERS)

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ op: fc.constant('reserve' as const), owner }).chain((c) => place.map((p) => ({ ...c, ...p }))),
  fc
    .record({ op: fc.constant('release' as const), owner: fc.option(owner, { nil: undefined }) })
    .chain((c) =>
      place.map((p): Command =>
        c.owner === undefined ? { op: 'release', ...p } : { op: 'release', owner: c.owner, ...p }
      )
    ),
  fc.record({ op: fc.constant('transfer' as const), owner, to: owner }).chain((c) => place.map((p) => ({ ...c, ...p })))
)
