/**
 * An in-memory Store: the reference semantics of the Store port for one process. Records are
 * kept encoded and decoded on read, as a real store would, so a test cannot mutate stored state
 * through an object it still holds. As every Store, it refuses a write whose record would not
 * decode back; nothing it holds can go bad, so its quarantine stays empty.
 */
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import type * as t from 'io-ts'
import { causeText, decodeFailure, type CoreError } from '../errors.js'
import { decodeWith } from '../decode.js'
import type { AddressSpace, PoolId } from '../ids.js'
import type { IpAddress } from '../model/Address.js'
import { Endpoint } from '../model/Endpoint.js'
import { Lease, Pool, sameOwner, type LeaseOwner } from '../model/Ipam.js'
import { Network } from '../model/Network.js'
import { leaseObject, recordObject, type Collection, type LeaseStore, type Store } from '../ports/Store.js'

/**
 * The stored text of `value`, once it is known to decode back (the Store port's "decode before
 * store"); a `DecodeFailure` for `what` otherwise.
 */
const storable = <A, Out>(codec: t.Type<A, Out>, what: string, value: A): E.Either<CoreError, string> =>
  pipe(
    E.tryCatch(
      () => JSON.stringify(codec.encode(value)),
      (e) => decodeFailure(what, [`not representable as JSON (${causeText(e)})`])
    ),
    E.chainFirst((text) => decodeWith(codec, what)(JSON.parse(text)))
  )

const collection = <K extends string, A, Out>(
  kind: 'network' | 'endpoint' | 'pool',
  codec: t.Type<A, Out>,
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
    put: (a) => () => {
      const key = keyOf(a)
      const text = storable(codec, recordObject(kind, key), a)
      if (E.isRight(text)) rows.set(key, text.right)
      return Promise.resolve(E.map(() => undefined)(text))
    },
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
  // A lease as stored: checked to decode back, and a copy the caller cannot change.
  const stored = (l: Lease): E.Either<CoreError, Lease> =>
    E.map((text: string) => JSON.parse(text) as Lease)(storable(Lease, leaseObject(l.addressSpace, l.address), l))
  return {
    reserve: (lease) => () => {
      const k = leaseKey(lease.addressSpace, lease.address)
      const checked = stored(lease)
      if (E.isLeft(checked)) return Promise.resolve(checked)
      if (leases.has(k)) return Promise.resolve(E.right(false))
      leases.set(k, checked.right)
      return Promise.resolve(E.right(true))
    },
    release: (space, address, owner?: LeaseOwner) =>
      TE.fromIO(() => {
        const k = leaseKey(space, address)
        const held = leases.get(k)
        if (held !== undefined && (owner === undefined || sameOwner(held.owner, owner))) leases.delete(k)
      }),
    transfer: (space, address, from, to) => () => {
      const k = leaseKey(space, address)
      const held = leases.get(k)
      if (held === undefined || !sameOwner(held.owner, from)) return Promise.resolve(E.right(false))
      const checked = stored({ ...held, owner: to })
      if (E.isLeft(checked)) return Promise.resolve(checked)
      leases.set(k, checked.right)
      return Promise.resolve(E.right(true))
    },
    get: (space, address) => TE.fromIO(() => O.map(copy)(O.fromNullable(leases.get(leaseKey(space, address))))),
    list: (space, pool) =>
      TE.fromIO(() =>
        [...leases.values()]
          .filter((l) => l.addressSpace === space && (pool === undefined || l.poolId === pool))
          .map(copy)
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
    networks: collection('network', Network, (n) => n.id),
    endpoints: collection('endpoint', Endpoint, (e) => e.id),
    pools: collection('pool', Pool, (p) => p.id),
    leases: leaseStore(),
    quarantine: { list: () => TE.right([]), drop: () => TE.right(false) },
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
