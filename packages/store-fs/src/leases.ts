/**
 * Address reservations as files `leases/<space>/<encoded address>.json`, one per address, so an
 * address is unique in its space by construction.
 *
 * Guarantees, across processes:
 * - `reserve` takes no lock: fsio.createFile's link(2) is the one atomic create-if-absent. The file
 *   is complete from the moment it exists and is on disk (file and directory fsynced) before `true`,
 *   unless the write is not durable (Store PutOptions): then a power loss may leave it empty,
 *   which reads as free and is cleared by the next reserve (fsio.occupied).
 * - Every change to an existing lease (`release`, with or without owner, and `transfer`) runs under
 *   a per-address lock. Since `reserve` only ever creates, the content of a lease file cannot change
 *   under a lock holder, so read-compare-act is atomic against every other release and transfer:
 *   a release and a transfer racing for one lease are ordered one after the other, never mixed.
 * - `transfer` rewrites the file with fsio.replaceFile (rename over it), so the address never looks
 *   free while it changes hands: a concurrent `reserve` gets `false` before, during and after.
 * - `release` renames the file to a tombstone, then unlinks it. The tombstone is compared with what
 *   was read under the lock; if they differ (possible only if the lock was taken over as stale
 *   while this process stalled), the lease is linked back and the caller gets `Transient`.
 */
import { dirname } from 'node:path'
import { promises as fs } from 'node:fs'
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import {
  Lease,
  decodeFailure,
  sameOwner,
  transient,
  type AddressSpace,
  type CoreError,
  type IpAddress,
  type LeaseOwner,
  type LeaseStore
} from '@isthmus/core'
import { Cursor, decodeEnvelope, encodeEnvelope } from './envelope.js'
import {
  attempt,
  createFile,
  errnoOf,
  occupied,
  mkdirp,
  readText,
  removeFile,
  renameIfExists,
  replaceFile,
  syncDir,
  tombPath
} from './fsio.js'
import type { Layout } from './layout.js'
import type { Locks } from './locks.js'
import { readAll, readRecord, type Read } from './records.js'

/** @category model */
export interface LeaseSpec {
  readonly layout: Layout
  readonly locks: Locks
  readonly tempMaxAgeMs: number
}

/** @category constructors */
export const fileLeases = ({ layout: L, locks, tempMaxAgeMs }: LeaseSpec): LeaseStore => {
  // Space directories made by this instance; mkdir once each rather than once per reserve.
  const made = new Set<string>()
  const ensureDir = (dir: string): TE.TaskEither<CoreError, void> =>
    made.has(dir)
      ? TE.right(undefined)
      : pipe(
          mkdirp(dir),
          TE.map(() => {
            made.add(dir)
          })
        )

  const checkPlace =
    (space: AddressSpace, address: IpAddress) =>
    (path: string, lease: Lease): TE.TaskEither<CoreError, Lease> =>
      lease.addressSpace === space && lease.address === address
        ? TE.right(lease)
        : TE.left(decodeFailure(path, [`holds the lease of ${lease.address} in ${lease.addressSpace}`]))

  const read = (space: AddressSpace, address: IpAddress): TE.TaskEither<CoreError, O.Option<Read<Lease>>> => {
    const path = L.lease(space, address)
    return pipe(
      readRecord('lease', Lease)(path),
      TE.chain(
        O.match(
          () => TE.right(O.none),
          (r) => TE.map(() => O.some(r))(checkPlace(space, address)(path, r.value))
        )
      )
    )
  }

  const underLock = <A>(space: AddressSpace, address: IpAddress, task: TE.TaskEither<CoreError, A>) =>
    locks.withLock(L.addressLock(space, address), `address ${address} in ${space}`, task)

  // Remove the lease file whose text was `seen`; see the module comment for the tombstone check.
  const remove = (path: string, seen: string): TE.TaskEither<CoreError, void> => {
    const dir = dirname(path)
    const tomb = tombPath(dir)
    return pipe(
      renameIfExists(path, tomb),
      TE.chain((moved) =>
        !moved
          ? TE.right(undefined)
          : pipe(
              readText(tomb),
              TE.chain((now) =>
                O.isSome(now) && now.value === seen
                  ? pipe(
                      removeFile(tomb),
                      TE.chain(() => syncDir(dir))
                    )
                  : pipe(
                      attempt('link', path, () =>
                        fs.link(tomb, path).catch((e: unknown) => {
                          if (errnoOf(e) !== 'EEXIST') throw e
                        })
                      ),
                      TE.chain(() => removeFile(tomb)),
                      TE.chain(() => TE.left(transient(`lease ${path} changed while being released; try again`)))
                    )
              )
            )
      )
    )
  }

  return {
    reserve: (lease, options) => {
      const path = L.lease(lease.addressSpace, lease.address)
      const dir = L.leaseDir(lease.addressSpace)
      return pipe(
        ensureDir(dir),
        // A cheap answer for the common busy case; the link below stays the only arbiter.
        TE.chain(() => occupied(path)),
        TE.chain((taken) =>
          taken ? TE.right(false) : createFile(path, dir, encodeEnvelope('lease', Lease, lease), options?.durable ?? true)
        )
      )
    },
    release: (space, address, owner?: LeaseOwner) =>
      underLock(
        space,
        address,
        pipe(
          read(space, address),
          TE.chain(
            O.match(
              () => TE.right(undefined),
              (held) =>
                owner !== undefined && !sameOwner(held.value.owner, owner)
                  ? TE.right(undefined)
                  : remove(L.lease(space, address), held.text)
            )
          )
        )
      ),
    transfer: (space, address, from, to, options) =>
      underLock(
        space,
        address,
        pipe(
          read(space, address),
          TE.chain(
            O.match(
              () => TE.right(false),
              (held) =>
                !sameOwner(held.value.owner, from)
                  ? TE.right(false)
                  : pipe(
                      replaceFile(
                        L.lease(space, address),
                        L.leaseDir(space),
                        encodeEnvelope('lease', Lease, { ...held.value, owner: to }),
                        options?.durable ?? true
                      ),
                      TE.map(() => true)
                    )
            )
          )
        )
      ),
    get: (space, address) => pipe(read(space, address), TE.map(O.map((r) => r.value))),
    list: (space, pool) =>
      pipe(
        // Each file must be the one of the address inside it: checkPlace with the address the
        // file name stands for.
        readAll(
          'lease',
          Lease,
          tempMaxAgeMs
        )(L.leaseDir(space), (path, lease) =>
          L.lease(space, lease.address) === path
            ? checkPlace(space, lease.address)(path, lease)
            : TE.left(decodeFailure(path, [`holds the lease of ${lease.address} in ${lease.addressSpace}`]))
        ),
        TE.map((all) => (pool === undefined ? all : all.filter((l) => l.poolId === pool)))
      ),
    // The cursor is a hint: a missing, unreadable or foreign cursor file means "no cursor", and
    // the allocator simply starts from the beginning of the pool.
    getCursor: (pool) =>
      pipe(
        readText(L.cursor(pool)),
        TE.map(
          O.chain((text) =>
            pipe(
              O.fromEither(decodeEnvelope('cursor', Cursor)(L.cursor(pool), text)),
              O.filter((c) => c.pool === pool),
              O.map((c) => c.address)
            )
          )
        )
      ),
    // Written atomically but without fsync: losing the latest cursor to a power cut only moves the
    // round-robin back, and saves two fsyncs per allocation.
    setCursor: (pool, address) =>
      replaceFile(L.cursor(pool), L.cursors, encodeEnvelope('cursor', Cursor, { pool, address }), false),
    deleteCursor: (pool) => removeFile(L.cursor(pool))
  }
}
