/**
 * The quarantine: a value found undecodable (not JSON, another kind or key, a bad field, an
 * unknown schema) is moved to `quarantine/<entry>` in one transaction that also checks the value
 * is still the one judged bad, so one bad value never stops work on any other object and a
 * concurrent `put` is never lost to a quarantine. The entry keeps the bytes, what they were meant
 * to be, when, why and where from. A lease is not moved but replaced, in the same transaction, by
 * a hold lease (leases.ts): its address never looks free.
 */
import { randomBytes } from 'node:crypto'
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as t from 'io-ts'
import {
  AddressSpace,
  IpAddress,
  describe,
  type CoreError,
  type Logger,
  type Quarantine,
  type QuarantinedRecord
} from '@isthmus/core'
import { decode, encode } from './envelope.js'
import type { StoreKeys } from './keys.js'
import { deleteOp, putOp, unchanged, type Kv, type KvOps } from './kv.js'

/** What an entry keeps. @category codecs */
export const QuarantineEntry = t.intersection(
  [
    t.type({
      id: t.string,
      kind: t.string,
      object: t.string,
      at: t.string,
      reason: t.string,
      formerKey: t.string,
      /** The bytes as found: UTF-8 text when they are, else base64. */
      bytes: t.type({ encoding: t.keyof({ utf8: null, base64: null }), data: t.string })
    }),
    t.partial({ key: t.string, holds: t.type({ addressSpace: AddressSpace, address: IpAddress }) })
  ],
  'QuarantineEntry'
)
/** @category model */
export type QuarantineEntry = t.TypeOf<typeof QuarantineEntry>

/** The address a lease entry's hold keeps taken. @category model */
export type Holds = NonNullable<QuarantineEntry['holds']>

/** A value judged unreadable: what it was meant to be, as read, and why. @category model */
export interface Suspect {
  /** `network`, `endpoint`, `pool`, `lease`. */
  readonly kind: string
  readonly key?: string
  readonly object: string
  readonly kv: Kv
  readonly reason: string
}

/** @category model */
export interface EtcdQuarantine {
  readonly newId: (kind: string) => string
  /** Move `s` aside; `false` when its value changed or vanished meanwhile (read it again). */
  readonly moveAside: (s: Suspect) => TE.TaskEither<CoreError, boolean>
  /**
   * Keep `s` as entry `id` and put `hold` (a lease's bytes) in its place, at once; `false` when its
   * value changed meanwhile.
   */
  readonly replaceWithHold: (id: string, s: Suspect, hold: Buffer, holds: Holds) => TE.TaskEither<CoreError, boolean>
  /** The port; `releaseHold` frees the address a lease entry's hold keeps. */
  readonly port: (releaseHold: (id: string, holds: Holds) => TE.TaskEither<CoreError, void>) => Quarantine
}

const WHAT = 'the quarantine'
// An entry id as `newId` makes it: `lease-20260101T101112Z-0123456789ab`.
const ENTRY_ID = /^[a-z]+-\d{8}T\d{6}Z-[0-9a-f]{12}$/

const compactTime = (d: Date): string =>
  d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')

const bytesOf = (value: Buffer): QuarantineEntry['bytes'] => {
  const text = value.toString('utf8')
  return Buffer.from(text, 'utf8').equals(value)
    ? { encoding: 'utf8', data: text }
    : { encoding: 'base64', data: value.toString('base64') }
}

const decodeEntry = decode('quarantine', QuarantineEntry)

/** @category constructors */
export const etcdQuarantine = (kv: KvOps, keys: StoreKeys, log: Logger): EtcdQuarantine => {
  const entryOf = (id: string, s: Suspect, holds?: Holds): QuarantineEntry => ({
    id,
    kind: s.kind,
    object: s.object,
    at: new Date().toISOString(),
    reason: s.reason,
    formerKey: s.kv.key,
    bytes: bytesOf(s.kv.value),
    ...(s.key === undefined ? {} : { key: s.key }),
    ...(holds === undefined ? {} : { holds })
  })

  const logged = (entry: QuarantineEntry): void =>
    log.warn('quarantined an unreadable record', {
      kind: entry.kind,
      object: entry.object,
      reason: entry.reason,
      key: entry.formerKey,
      movedTo: keys.quarantineEntry(entry.id),
      entry: entry.id,
      ...(entry.holds === undefined
        ? {}
        : {
            holds: `${entry.holds.address} in ${entry.holds.addressSpace}`,
            until: `isthmus quarantine drop ${entry.id}`
          })
    })

  const newId = (kind: string): string => `${kind}-${compactTime(new Date())}-${randomBytes(6).toString('hex')}`

  const commit = (entry: QuarantineEntry, s: Suspect, replacement: ReturnType<typeof putOp>) =>
    pipe(
      kv.txn(
        `quarantining ${s.object}`,
        [unchanged(s.kv)],
        [replacement, putOp(keys.quarantineEntry(entry.id), encode('quarantine', QuarantineEntry, entry))]
      ),
      TE.map((res) => {
        if (res.succeeded) logged(entry)
        return res.succeeded
      })
    )

  const listed = (k: Kv): QuarantinedRecord => {
    const id = k.key.slice(keys.quarantine.length)
    const location = `etcd key ${k.key}`
    const d = decodeEntry(`quarantine entry ${id}`, k.value)
    if (E.isRight(d)) {
      const e = d.right
      return {
        id,
        kind: e.kind,
        object: e.object,
        at: e.at,
        reason: e.reason,
        location,
        formerLocation: `etcd key ${e.formerKey}`,
        ...(e.key === undefined ? {} : { key: e.key }),
        ...(e.holds === undefined ? {} : { holds: e.holds })
      }
    }
    const kind = id.split('-')[0] ?? 'unknown'
    return {
      id,
      kind,
      object: `a ${kind} record`,
      at: '',
      reason: `its description is unreadable: ${describe(d.left)}`,
      location
    }
  }

  const list = (): TE.TaskEither<CoreError, ReadonlyArray<QuarantinedRecord>> =>
    pipe(
      kv.list(`reading ${WHAT}`, keys.quarantine),
      TE.map((snap) =>
        snap.kvs.map(listed).sort((a, b) => (a.at === b.at ? (a.id < b.id ? -1 : 1) : a.at < b.at ? -1 : 1))
      )
    )

  return {
    newId,
    moveAside: (s) => commit(entryOf(newId(s.kind), s), s, deleteOp(s.kv.key)),
    replaceWithHold: (id, s, hold, holds) => commit(entryOf(id, s, holds), s, putOp(s.kv.key, hold)),
    port: (releaseHold) => ({
      list,
      drop: (id) =>
        !ENTRY_ID.test(id)
          ? TE.right(false)
          : pipe(
              kv.get(`reading ${WHAT}`, keys.quarantineEntry(id)),
              TE.chain(
                O.match(
                  () => TE.right(false),
                  (k) => {
                    const holds = listed(k).holds
                    return pipe(
                      holds === undefined ? TE.right(undefined) : releaseHold(id, holds),
                      TE.chain(() => kv.remove(`dropping quarantine entry ${id}`, k.key)),
                      TE.map(() => true)
                    )
                  }
                )
              )
            )
    })
  }
}
