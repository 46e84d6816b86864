/**
 * Address reservations: one key per address, `leases/<space>/<address>`, so an address is unique
 * in its space by construction, and every change is one etcd transaction:
 * - `reserve` puts the lease if the key has never been created (create revision 0): the one
 *   atomic create-if-absent across processes and hosts.
 * - `release` and `transfer` read the lease, check its owner, and delete or rewrite it only if
 *   its mod revision is still the one read; when another change came first they read again. A
 *   release racing a transfer of one lease is therefore one after the other, never a mix, and a
 *   transfer rewrites the key in place: the address never looks free while it changes hands.
 * - An unreadable lease never frees its address: one transaction keeps its bytes in the
 *   quarantine and puts a hold lease (owner `quarantineHolder(<entry>)`) in its place, if the
 *   value is still the one judged bad. `reserve` needs none of this: a key there, readable or
 *   not, is a taken address.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as RA from 'fp-ts/lib/ReadonlyArray.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as t from 'io-ts'
import {
  IpAddress,
  Lease,
  PoolId,
  leaseObject,
  parseJson,
  quarantineHolder,
  sameOwner,
  transient,
  type AddressSpace,
  type CoreError,
  type LeaseOwner,
  type LeaseStore
} from '@isthmus/core'
import { decode, reasonOf, storable } from './envelope.js'
import { unsegment, type StoreKeys } from './keys.js'
import { absent, deleteOp, putOp, unchanged, type Kv, type KvOps } from './kv.js'
import type { EtcdQuarantine, Suspect } from './quarantine.js'

/** A pool's round-robin cursor, as stored (a hint for the allocator). @category codecs */
export const Cursor = t.type({ pool: PoolId, address: IpAddress }, 'Cursor')

/** @category model */
export interface LeaseSpec {
  readonly kv: KvOps
  readonly keys: StoreKeys
  readonly quarantine: EtcdQuarantine
  /** The pool of `space` whose subnet holds `address`, for the hold of a lease that names none. */
  readonly poolOf: (space: AddressSpace, address: IpAddress) => TE.TaskEither<CoreError, O.Option<PoolId>>
}

/** A lease with the key's revisions, for the transaction that changes it. */
interface Held {
  readonly lease: Lease
  readonly kv: Kv
}

// How often a change retries after another change of the same lease came first: enough for any
// burst of real callers, and a bound on a livelock.
const RETRIES = 16

const decodeLease = decode('lease', Lease)
const storableLease = storable('lease', Lease)
const decodeCursor = decode('cursor', Cursor)
const storableCursor = storable('cursor', Cursor)

// The pool an unreadable lease's bytes still name, if any.
const poolNamed = (bytes: Buffer): PoolId | undefined =>
  pipe(
    parseJson('lease')(bytes.toString('utf8')),
    E.map((json) => (json as { data?: { poolId?: unknown } } | null)?.data?.poolId),
    E.match(
      () => undefined,
      (id) => (PoolId.is(id) ? id : undefined)
    )
  )

/** @category constructors */
export const etcdLeases = ({ kv, keys, quarantine, poolOf }: LeaseSpec): LeaseStore => {
  const busy = (space: AddressSpace, address: IpAddress) =>
    transient(`the ${leaseObject(space, address)} kept changing while being changed; try again`)

  const judge = (space: AddressSpace, address: IpAddress, k: Kv): E.Either<string, Lease> =>
    pipe(
      decodeLease(leaseObject(space, address), k.value),
      E.mapLeft(reasonOf),
      E.chain((l) =>
        l.addressSpace === space && l.address === address
          ? E.right(l)
          : E.left(`holds the ${leaseObject(l.addressSpace, l.address)}, not the ${leaseObject(space, address)}`)
      )
    )

  // Put a hold in place of the unreadable lease `k`, keeping its bytes in the quarantine; `false`
  // when the value changed first (then there is nothing to hold: read again).
  const hold = (space: AddressSpace, address: IpAddress, k: Kv, reason: string): TE.TaskEither<CoreError, boolean> => {
    const id = quarantine.newId('lease')
    const object = leaseObject(space, address)
    const suspect: Suspect = { kind: 'lease', key: address, object, kv: k, reason }
    return pipe(
      TE.Do,
      TE.bind('pool', () => {
        const named = poolNamed(k.value)
        return named !== undefined ? TE.right(O.some(named)) : poolOf(space, address)
      }),
      TE.bind('bytes', ({ pool }) =>
        TE.fromEither(
          storableLease(object, {
            address,
            addressSpace: space,
            // a pool that cannot be told: the hold still keeps the address, as any value there does
            poolId: O.getOrElse(() => `${space}/unknown` as PoolId)(pool),
            owner: quarantineHolder(id),
            since: new Date().toISOString()
          })
        )
      ),
      TE.chain(({ bytes }) => quarantine.replaceWithHold(id, suspect, bytes, { addressSpace: space, address }))
    )
  }

  // The lease of `address` with its revisions; an unreadable one is replaced by its hold first.
  const current = (space: AddressSpace, address: IpAddress, attempt = 1): TE.TaskEither<CoreError, O.Option<Held>> =>
    pipe(
      kv.get(`reading the ${leaseObject(space, address)}`, keys.lease(space, address)),
      TE.chain(
        O.match(
          () => TE.right(O.none),
          (k) =>
            pipe(
              judge(space, address, k),
              E.match(
                (reason) =>
                  attempt >= RETRIES
                    ? TE.left(busy(space, address))
                    : pipe(
                        hold(space, address, k, reason),
                        TE.chain(() => current(space, address, attempt + 1))
                      ),
                (lease) => TE.right(O.some({ lease, kv: k }))
              )
            )
        )
      )
    )

  // Run `change` on the lease as read; when another change came first, read again and decide anew.
  const change = <A>(
    space: AddressSpace,
    address: IpAddress,
    decide: (held: O.Option<Held>) => TE.TaskEither<CoreError, O.Option<A>>,
    attempt = 1
  ): TE.TaskEither<CoreError, A> =>
    pipe(
      current(space, address),
      TE.chain(decide),
      TE.chain(
        O.match(
          () => (attempt >= RETRIES ? TE.left(busy(space, address)) : change(space, address, decide, attempt + 1)),
          (a) => TE.right(a)
        )
      )
    )

  // One value of a space's listing: a lease, a hold in place of an unreadable one, or nothing
  // (not the key of an address: no reserve ever looks at it, so it holds nothing).
  const listed =
    (space: AddressSpace) =>
    (k: Kv): TE.TaskEither<CoreError, O.Option<Lease>> => {
      const rest = k.key.slice(keys.leaseSpace(space).length)
      const address = unsegment(rest)
      if (address !== undefined && IpAddress.is(address) && keys.lease(space, address) === k.key) {
        return pipe(
          judge(space, address, k),
          E.match(
            () => pipe(current(space, address), TE.map(O.map((h) => h.lease))),
            (lease) => TE.right(O.some(lease))
          )
        )
      }
      return pipe(
        quarantine.moveAside({
          kind: 'lease',
          object: `lease under key ${rest} of ${space}`,
          kv: k,
          reason: 'not under the key of an address'
        }),
        TE.map(() => O.none)
      )
    }

  return {
    reserve: (lease) => {
      const key = keys.lease(lease.addressSpace, lease.address)
      const object = leaseObject(lease.addressSpace, lease.address)
      return pipe(
        TE.fromEither(storableLease(object, lease)),
        TE.chain((bytes) =>
          kv.txn(`reserving ${lease.address} in ${lease.addressSpace}`, [absent(key)], [putOp(key, bytes)])
        ),
        TE.map((res) => res.succeeded)
      )
    },
    release: (space, address, owner?: LeaseOwner) =>
      change(space, address, (held) =>
        O.isNone(held) || (owner !== undefined && !sameOwner(held.value.lease.owner, owner))
          ? TE.right(O.some(undefined))
          : pipe(
              kv.txn(`releasing ${address} in ${space}`, [unchanged(held.value.kv)], [deleteOp(held.value.kv.key)]),
              TE.map((res) => (res.succeeded ? O.some(undefined) : O.none))
            )
      ),
    transfer: (space, address, from, to) =>
      change(space, address, (held) => {
        if (O.isNone(held) || !sameOwner(held.value.lease.owner, from)) return TE.right(O.some(false))
        const k = held.value.kv
        return pipe(
          TE.fromEither(storableLease(leaseObject(space, address), { ...held.value.lease, owner: to })),
          TE.chain((bytes) => kv.txn(`handing over ${address} in ${space}`, [unchanged(k)], [putOp(k.key, bytes)])),
          TE.map((res) => (res.succeeded ? O.some(true) : O.none))
        )
      }),
    get: (space, address) => pipe(current(space, address), TE.map(O.map((h) => h.lease))),
    list: (space, pool) =>
      pipe(
        kv.list(`reading the leases of ${space}`, keys.leaseSpace(space)),
        TE.chain((snap) => TE.traverseSeqArray(listed(space))(snap.kvs)),
        TE.map(RA.compact),
        TE.map((all) => (pool === undefined ? all : all.filter((l) => l.poolId === pool)))
      ),
    // The cursor is a hint: a missing, unreadable or foreign value means "no cursor", and the
    // allocator starts from the beginning of the pool.
    getCursor: (pool) =>
      pipe(
        kv.get(`reading the cursor of pool ${pool}`, keys.cursor(pool)),
        TE.map(
          O.chain((k) =>
            pipe(
              O.fromEither(decodeCursor(`the cursor of pool ${pool}`, k.value)),
              O.filter((c) => c.pool === pool),
              O.map((c) => c.address)
            )
          )
        )
      ),
    setCursor: (pool, address) =>
      pipe(
        TE.fromEither(storableCursor(`the cursor of pool ${pool}`, { pool, address })),
        TE.chain((bytes) => kv.put(`writing the cursor of pool ${pool}`, keys.cursor(pool), bytes))
      ),
    deleteCursor: (pool) => kv.remove(`removing the cursor of pool ${pool}`, keys.cursor(pool))
  }
}
