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
 * - An unreadable lease file never frees its address. Under the address lock its bytes get a
 *   second name in the quarantine, then a hold lease (owner `quarantineHolder(<entry>)`, in the
 *   pool the bytes name, or the space's pool around the address) is renamed over it, so a
 *   concurrent `reserve` sees the address taken throughout. The hold is an ordinary lease from then
 *   on; `quarantine.drop` of the entry releases it. `reserve` itself needs none of this: a file
 *   there, readable or not, is a taken address.
 */
import { dirname } from 'node:path'
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
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
import { Cursor, decodeEnvelope, storableEnvelope } from './envelope.js'
import {
  cleanupOnError,
  createFile,
  linkUnlessExists,
  occupied,
  mkdirp,
  readText,
  removeFile,
  renameIfExists,
  replaceFile,
  syncDir,
  tombPath
} from './fsio.js'
import { RECORD_SUFFIX, type Layout } from './layout.js'
import type { Locks } from './locks.js'
import { decodeName } from './names.js'
import type { FileQuarantine, Suspect } from './quarantine.js'
import { loadRecord, readAll } from './records.js'

/** @category model */
export interface LeaseSpec {
  readonly layout: Layout
  readonly locks: Locks
  readonly tempMaxAgeMs: number
  readonly quarantine: FileQuarantine
  /** The pool of `space` whose subnet holds `address`, for the hold of a lease that names none. */
  readonly poolOf: (space: AddressSpace, address: IpAddress) => TE.TaskEither<CoreError, O.Option<PoolId>>
}

/** A lease with the exact text it was read from (release compares texts). */
interface Read {
  readonly value: Lease
  readonly text: string
}

const load = loadRecord('lease', Lease)
// How long a set cursor waits before it is written (see fileLeases).
const CURSOR_WRITE_DELAY_MS = 100
const storable = storableEnvelope('lease', Lease)
const storableCursor = storableEnvelope('cursor', Cursor)
const decodeCursor = decodeEnvelope('cursor', Cursor)

// The pool an unreadable lease's bytes still name, if any.
const poolNamed = (text: string): PoolId | undefined =>
  pipe(
    parseJson('lease')(text),
    E.map((json) => (json as { data?: { poolId?: unknown } } | null)?.data?.poolId),
    E.fold(
      () => undefined,
      (id) => (PoolId.is(id) ? id : undefined)
    )
  )

/** @category constructors */
export const fileLeases = ({
  layout: L,
  locks,
  tempMaxAgeMs,
  quarantine,
  poolOf
}: LeaseSpec): LeaseStore & { readonly flush: () => Promise<void> } => {
  // Cursors set and not written yet: written CURSOR_WRITE_DELAY_MS after the first one set, the
  // latest per pool, so an allocation does not wait for a hint's write and a burst of allocations
  // (a hundred parallel ADDs) writes each pool's cursor once, not once per address.
  const cursors = new Map<PoolId, IpAddress>()
  let flushing: NodeJS.Timeout | undefined
  const writeCursors = async (): Promise<void> => {
    flushing = undefined
    const due = [...cursors]
    cursors.clear()
    for (const [pool, address] of due) {
      const what = `the cursor of pool ${pool}`
      // A hint: a write that fails only moves the round-robin back.
      await pipe(
        TE.fromEither(storableCursor(what, { pool, address })),
        TE.chain((text) => replaceFile(what, L.cursor(pool), L.cursors, text, false))
      )()
    }
  }
  // Space directories made by this instance; mkdir once each rather than once per reserve.
  const made = new Set<string>()
  const ensureDir = (space: AddressSpace, dir: string): TE.TaskEither<CoreError, void> =>
    made.has(dir)
      ? TE.right(undefined)
      : pipe(
          mkdirp(`the leases of ${space}`, dir),
          TE.map(() => {
            made.add(dir)
          })
        )

  // A lease file must hold the lease of the address it is named for.
  const misplaced = (space: AddressSpace, address: IpAddress) => (lease: Lease) =>
    lease.addressSpace === space && lease.address === address
      ? undefined
      : `holds the ${leaseObject(lease.addressSpace, lease.address)}, not the lease of this file`

  const underLock = <A>(space: AddressSpace, address: IpAddress, task: TE.TaskEither<CoreError, A>) =>
    locks.withLock(L.addressLock(space, address), `address ${address} in ${space}`, task)

  // Under the address lock: the lease of `address`, with an unreadable one replaced by its hold.
  const readHeld = (space: AddressSpace, address: IpAddress): TE.TaskEither<CoreError, O.Option<Read>> => {
    const path = L.lease(space, address)
    const what = leaseObject(space, address)
    return pipe(
      load(what, path, misplaced(space, address)),
      TE.chain((r): TE.TaskEither<CoreError, O.Option<Read>> =>
        r._tag === 'absent'
          ? TE.right(O.none)
          : r._tag === 'ok'
            ? TE.right(O.some({ value: r.value, text: r.text }))
            : pipe(
                hold(space, address, {
                  kind: 'lease',
                  key: address,
                  object: what,
                  path,
                  dir: dirname(path),
                  text: r.text,
                  reason: r.reason
                }),
                TE.map(O.some)
              )
      )
    )
  }

  // Keep the bad bytes in the quarantine, then rename a hold over them: the address stays taken.
  const hold = (space: AddressSpace, address: IpAddress, s: Suspect): TE.TaskEither<CoreError, Read> => {
    const id = quarantine.newId('lease')
    const holds = { addressSpace: space, address }
    return pipe(
      TE.Do,
      TE.bind('pool', () => {
        const named = poolNamed(s.text)
        return named !== undefined ? TE.right(O.some(named)) : poolOf(space, address)
      }),
      TE.let('lease', ({ pool }): Lease => ({
        address,
        addressSpace: space,
        // a pool that cannot be told: the hold still keeps the address, as any lease file does
        poolId: O.getOrElse(() => `${space}/unknown` as PoolId)(pool),
        owner: quarantineHolder(id),
        since: new Date().toISOString()
      })),
      TE.bind('text', ({ lease }) => TE.fromEither(storable(s.object, lease))),
      TE.chainFirst(() => quarantine.keep(id, s, holds)),
      TE.chainFirst(({ text }) =>
        pipe(
          replaceFile(s.object, s.path, s.dir, text),
          cleanupOnError(() => quarantine.forget(id))
        )
      ),
      TE.map(({ lease, text }) => {
        quarantine.logged(id, s, holds)
        return { value: lease, text }
      })
    )
  }

  // Remove the lease file whose text was `seen`; see the module comment for the tombstone check.
  const remove = (what: string, path: string, seen: string): TE.TaskEither<CoreError, void> => {
    const dir = dirname(path)
    const tomb = tombPath(dir)
    return pipe(
      renameIfExists(what, path, tomb),
      TE.chain((moved) =>
        !moved
          ? TE.right(undefined)
          : pipe(
              readText(what, tomb),
              TE.chain((now) =>
                O.isSome(now) && now.value === seen
                  ? pipe(
                      removeFile(what, tomb),
                      TE.chain(() => syncDir(what, dir))
                    )
                  : pipe(
                      linkUnlessExists(what, tomb, path),
                      TE.chain(() => removeFile(what, tomb)),
                      TE.chain(() => TE.left(transient(`${what} changed while being released; try again`)))
                    )
              )
            )
      )
    )
  }

  // The lease of `address`, read without the lock; an unreadable one is replaced by its hold under
  // the lock. `tolerant`: a hold that cannot be made now reads as absent (tried again next time).
  const current = (
    space: AddressSpace,
    address: IpAddress,
    tolerant: boolean
  ): TE.TaskEither<CoreError, O.Option<Lease>> => {
    const path = L.lease(space, address)
    const what = leaseObject(space, address)
    return pipe(
      load(what, path, misplaced(space, address)),
      TE.chain((r): TE.TaskEither<CoreError, O.Option<Lease>> =>
        r._tag === 'absent'
          ? TE.right(O.none)
          : r._tag === 'ok'
            ? TE.right(O.some(r.value))
            : pipe(
                underLock(space, address, readHeld(space, address)),
                TE.map(O.map((h) => h.value)),
                TE.orElse((e): TE.TaskEither<CoreError, O.Option<Lease>> => {
                  if (!tolerant) return TE.left(e)
                  quarantine.failed(
                    {
                      kind: 'lease',
                      key: address,
                      object: what,
                      path,
                      dir: dirname(path),
                      text: r.text,
                      reason: r.reason
                    },
                    e
                  )
                  return TE.right(O.none)
                })
              )
      )
    )
  }

  // One file of a space's directory while listing: a lease, a hold in place of an unreadable one,
  // or nothing (a stray file, moved aside; a hold that could not be made now).
  const listed = (space: AddressSpace, name: string, path: string): TE.TaskEither<CoreError, O.Option<Lease>> => {
    const key = decodeName(name.slice(0, -RECORD_SUFFIX.length))
    if (key !== undefined && IpAddress.is(key) && L.lease(space, key) === path) return current(space, key, true)
    // Not the name of an address: no reserve ever looks at it, so it holds nothing.
    const what = `lease in file ${name} of ${space}`
    return pipe(
      load(what, path, () => 'not named for the address of a lease'),
      TE.chain((r) => {
        if (r._tag !== 'bad') return TE.right(O.none)
        const s: Suspect = { kind: 'lease', object: what, path, dir: dirname(path), text: r.text, reason: r.reason }
        return pipe(
          quarantine.setAside(s),
          TE.map(() => O.none)
        )
      })
    )
  }

  // The cursor file of `pool`, if it is one of that pool's.
  const readCursor = (pool: PoolId): TE.TaskEither<CoreError, O.Option<IpAddress>> =>
    pipe(
      readText(`the cursor of pool ${pool}`, L.cursor(pool)),
      TE.map(
        O.chain((text) =>
          pipe(
            O.fromEither(decodeCursor(`the cursor of pool ${pool}`, text)),
            O.filter((c) => c.pool === pool),
            O.map((c) => c.address)
          )
        )
      )
    )

  return {
    reserve: (lease, options) => {
      const path = L.lease(lease.addressSpace, lease.address)
      const dir = L.leaseDir(lease.addressSpace)
      const what = leaseObject(lease.addressSpace, lease.address)
      return pipe(
        TE.fromEither(storable(what, lease)),
        TE.chainFirst(() => ensureDir(lease.addressSpace, dir)),
        TE.chain((text) =>
          pipe(
            // A cheap answer for the common busy case; the link below stays the only arbiter.
            occupied(what, path),
            TE.chain((taken) => (taken ? TE.right(false) : createFile(what, path, dir, text, options?.durable ?? true)))
          )
        )
      )
    },
    release: (space, address, owner?: LeaseOwner) =>
      underLock(
        space,
        address,
        pipe(
          readHeld(space, address),
          TE.chain(
            O.match(
              () => TE.right(undefined),
              (held) =>
                owner !== undefined && !sameOwner(held.value.owner, owner)
                  ? TE.right(undefined)
                  : remove(leaseObject(space, address), L.lease(space, address), held.text)
            )
          )
        )
      ),
    transfer: (space, address, from, to, options) =>
      underLock(
        space,
        address,
        pipe(
          readHeld(space, address),
          TE.chain(
            O.match(
              () => TE.right(false),
              (held) => {
                if (!sameOwner(held.value.owner, from)) return TE.right(false)
                const what = leaseObject(space, address)
                return pipe(
                  TE.fromEither(storable(what, { ...held.value, owner: to })),
                  TE.chain((text) =>
                    replaceFile(what, L.lease(space, address), L.leaseDir(space), text, options?.durable ?? true)
                  ),
                  TE.map(() => true)
                )
              }
            )
          )
        )
      ),
    get: (space, address) => current(space, address, false),
    list: (space, pool) =>
      pipe(
        readAll(`the leases of ${space}`, L.leaseDir(space), tempMaxAgeMs)((name, path) => listed(space, name, path)),
        TE.map((all) => (pool === undefined ? all : all.filter((l) => l.poolId === pool)))
      ),
    // The cursor is a hint: a missing, unreadable or foreign one means "no cursor", and the
    // allocator simply starts from the beginning of the pool. One set here and not written yet
    // is this process's latest.
    getCursor: (pool) =>
      pipe(
        TE.fromIO(() => cursors.get(pool)),
        TE.chain((pending) => (pending !== undefined ? TE.right(O.some(pending)) : readCursor(pool)))
      ),
    // Written atomically but without fsync, and after the call that set it: losing the latest
    // cursor to a crash only moves the round-robin back, and saves a file per allocation's wait.
    setCursor: (pool, address) =>
      TE.fromIO(() => {
        cursors.set(pool, address)
        // unref: a pending hint never keeps a process alive; close() writes it (flush).
        flushing ??= setTimeout(() => void writeCursors(), CURSOR_WRITE_DELAY_MS).unref()
      }),
    deleteCursor: (pool) =>
      pipe(
        TE.fromIO(() => cursors.delete(pool)),
        TE.chain(() => removeFile(`the cursor of pool ${pool}`, L.cursor(pool)))
      ),
    flush: async () => {
      if (flushing !== undefined) clearTimeout(flushing)
      await writeCursors()
    }
  }
}
