/**
 * An in-memory Store: the reference semantics of the Store port for one process. Records are
 * kept encoded and decoded on read, as a real store would, so a test cannot mutate stored state
 * through an object it still holds.
 */
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import type * as t from 'io-ts'
import type { CoreError } from '../errors.js'
import { decodeWith } from '../decode.js'
import type { AddressSpace, PoolId } from '../ids.js'
import type { IpAddress } from '../model/Address.js'
import { Endpoint } from '../model/Endpoint.js'
import { Pool, sameOwner, type Lease, type LeaseOwner } from '../model/Ipam.js'
import { Network } from '../model/Network.js'
import { Sandbox } from '../model/Sandbox.js'
import type { Collection, LeaseStore, Store } from '../ports/Store.js'

const collection = <K extends string, A, Out>(
  codec: t.Type<A, Out, unknown>,
  keyOf: (a: A) => K
): Collection<K, A> => {
  const rows = new Map<K, string>()
  const read = (s: string): TE.TaskEither<CoreError, A> => TE.fromEither(decodeWith(codec)(JSON.parse(s)))
  return {
    // Read when the task runs, not when it is built: a task may run later, or twice.
    get: (id) => () => {
      const s = rows.get(id)
      return s === undefined ? TE.right(O.none)() : TE.map((a: A) => O.some(a))(read(s))()
    },
    put: (a) =>
      TE.fromIO(() => {
        rows.set(keyOf(a), JSON.stringify(codec.encode(a)))
      }),
    delete: (id) =>
      TE.fromIO(() => {
        rows.delete(id)
      }),
    list: () => () => TE.traverseArray(read)([...rows.values()])()
  }
}

const leaseKey = (space: AddressSpace, address: IpAddress): string => `${space}\0${address}`

const leaseStore = (): LeaseStore => {
  const leases = new Map<string, Lease>()
  const cursors = new Map<PoolId, IpAddress>()
  const copy = (l: Lease): Lease => JSON.parse(JSON.stringify(l)) as Lease
  return {
    reserve: (lease) =>
      TE.fromIO(() => {
        const k = leaseKey(lease.addressSpace, lease.address)
        if (leases.has(k)) return false
        leases.set(k, copy(lease))
        return true
      }),
    release: (space, address, owner?: LeaseOwner) =>
      TE.fromIO(() => {
        const k = leaseKey(space, address)
        const held = leases.get(k)
        if (held !== undefined && (owner === undefined || sameOwner(held.owner, owner))) leases.delete(k)
      }),
    transfer: (space, address, from, to) =>
      TE.fromIO(() => {
        const k = leaseKey(space, address)
        const held = leases.get(k)
        if (held === undefined || !sameOwner(held.owner, from)) return false
        leases.set(k, copy({ ...held, owner: to }))
        return true
      }),
    get: (space, address) =>
      TE.fromIO(() => O.map(copy)(O.fromNullable(leases.get(leaseKey(space, address))))),
    list: (space, pool) =>
      TE.fromIO(() =>
        [...leases.values()].filter((l) => l.addressSpace === space && (pool === undefined || l.poolId === pool)).map(copy)
      ),
    getCursor: (pool) => TE.fromIO(() => O.fromNullable(cursors.get(pool))),
    setCursor: (pool, address) =>
      TE.fromIO(() => {
        cursors.set(pool, address)
      }),
    deleteCursor: (pool) =>
      TE.fromIO(() => {
        cursors.delete(pool)
      })
  }
}

/**
 * A Store in memory. `withLock` serialises tasks per lock name inside this process.
 *
 * @category testing
 */
export const memoryStore = (): Store => {
  const locks = new Map<string, Promise<unknown>>()
  return {
    networks: collection(Network, (n) => n.id),
    endpoints: collection(Endpoint, (e) => e.id),
    sandboxes: collection(Sandbox, (s) => s.key),
    pools: collection(Pool, (p) => p.id),
    leases: leaseStore(),
    withLock: (name, task) => () => {
      const before = locks.get(name) ?? Promise.resolve()
      const run = before.then(() => task())
      locks.set(
        name,
        run.then(
          () => undefined,
          () => undefined
        )
      )
      return run
    },
    ping: () => TE.right(undefined),
    close: () => Promise.resolve()
  }
}
