/**
 * The quarantine: record files found undecodable (not JSON, cut short, another kind or key, a bad
 * field, an unknown schema) are moved out of the way, so that one bad file never stops work on
 * any other object, and kept for the operator with what they were, when and why.
 *
 *   quarantine/<entry>.record   the bytes, exactly as found
 *   quarantine/<entry>.json     an envelope of kind "quarantine": kind, object, reason, time,
 *                               where the file was, and for a lease the address its hold keeps
 *
 * `<entry>` is `<kind>-<UTC time>-<random>`. A record file is renamed here (`moveAside`), then its
 * bytes are compared with what was judged bad: a good record that a concurrent `put` renamed into
 * place meanwhile is linked back, so a put is never lost to a quarantine. A lease file is not
 * moved but linked here, and leases.ts puts a hold in its place, so the address never looks free.
 * Each quarantine is logged once, by the process that made it; a quarantine that fails (a
 * read-only disk) is logged once per file content, and the record still reads as absent.
 */
import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
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
import { decodeEnvelope, storableEnvelope, type RecordKind } from './envelope.js'
import {
  cleanupOnError,
  linkUnlessExists,
  readNames,
  readText,
  removeFile,
  renameIfExists,
  replaceFile,
  syncDir
} from './fsio.js'

/** The description kept beside a quarantined record's bytes. @category codecs */
export const QuarantineEntry = t.intersection(
  [
    t.type({
      id: t.string,
      kind: t.string,
      object: t.string,
      at: t.string,
      reason: t.string,
      formerLocation: t.string
    }),
    t.partial({ key: t.string, holds: t.type({ addressSpace: AddressSpace, address: IpAddress }) })
  ],
  'QuarantineEntry'
)
/** @category model */
export type QuarantineEntry = t.TypeOf<typeof QuarantineEntry>

/** A record file judged unreadable: what it was meant to be, where, and why. @category model */
export interface Suspect {
  readonly kind: RecordKind
  readonly key?: string | undefined
  readonly object: string
  readonly path: string
  readonly dir: string
  readonly text: string
  readonly reason: string
}

/** @category model */
export interface FileQuarantine {
  /** A new entry id for a record of `kind`. */
  readonly newId: (kind: RecordKind) => string
  /**
   * Move `s` aside; `false` when its file was gone or had changed (nothing quarantined: read it
   * again). Logs the quarantine.
   */
  readonly moveAside: (s: Suspect) => TE.TaskEither<CoreError, boolean>
  /**
   * `moveAside`, where a failure to move (a read-only disk) is logged once (`failed`) and the
   * record still counts as gone: `true` unless it changed meanwhile (read it again).
   */
  readonly setAside: (s: Suspect) => TE.TaskEither<CoreError, boolean>
  /**
   * Keep the bytes of lease file `s` as entry `id` (a second name, the file stays) and describe
   * it; the caller then puts the hold in place, and calls `logged` or, if that fails, `forget`.
   */
  readonly keep: (
    id: string,
    s: Suspect,
    holds: NonNullable<QuarantineEntry['holds']>
  ) => TE.TaskEither<CoreError, void>
  readonly logged: (id: string, s: Suspect, holds?: QuarantineEntry['holds']) => void
  readonly forget: (id: string) => TE.TaskEither<CoreError, void>
  /** Log, once per file content, that `s` could not be quarantined. */
  readonly failed: (s: Suspect, e: CoreError) => void
  /** The port; `releaseHold` frees the address a lease entry's hold keeps. */
  readonly port: (
    releaseHold: (id: string, holds: NonNullable<QuarantineEntry['holds']>) => TE.TaskEither<CoreError, void>
  ) => Quarantine
}

const WHAT = 'the quarantine'
const RECORD = '.record'
const ENTRY = '.json'
// An entry id as `newId` makes it: never a path, never a temp file's name.
const ENTRY_ID = /^[a-z]+-\d{8}T\d{6}Z-[0-9a-f]{12}$/

// Failures already logged, by file and content, so that a disk that refuses every write does not
// log one line per read; bounded, as the set of bad files is.
const REPORTED_MAX = 1024

const compactTime = (d: Date): string =>
  d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')
// `20260101T101112Z` of an entry id back to ISO, for an entry whose description was lost
const timeOfId = (id: string): string => {
  const m = /-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-/.exec(id)
  return m === null ? '' : `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.000Z`
}

const storable = storableEnvelope('quarantine', QuarantineEntry)
const decodeEntry = decodeEnvelope('quarantine', QuarantineEntry)

/** @category constructors */
export const fileQuarantine = (dir: string, log: Logger): FileQuarantine => {
  const recordPath = (id: string) => join(dir, `${id}${RECORD}`)
  const entryPath = (id: string) => join(dir, `${id}${ENTRY}`)
  const reported = new Set<string>()

  const describeAs = (id: string, s: Suspect, holds?: QuarantineEntry['holds']): QuarantineEntry => ({
    id,
    kind: s.kind,
    object: s.object,
    at: new Date().toISOString(),
    reason: s.reason,
    formerLocation: s.path,
    ...(s.key === undefined ? {} : { key: s.key }),
    ...(holds === undefined ? {} : { holds })
  })

  const writeEntry = (entry: QuarantineEntry): TE.TaskEither<CoreError, void> =>
    pipe(
      TE.fromEither(storable(`quarantine entry ${entry.id}`, entry)),
      TE.chain((text) => replaceFile(WHAT, entryPath(entry.id), dir, text))
    )

  const logged: FileQuarantine['logged'] = (id, s, holds) =>
    log.warn('quarantined an unreadable record', {
      kind: s.kind,
      object: s.object,
      reason: s.reason,
      file: s.path,
      movedTo: recordPath(id),
      entry: id,
      ...(holds === undefined
        ? {}
        : { holds: `${holds.address} in ${holds.addressSpace}`, until: `isthmus quarantine drop ${id}` })
    })

  const forget = (id: string): TE.TaskEither<CoreError, void> =>
    pipe(
      removeFile(WHAT, recordPath(id)),
      TE.chain(() => removeFile(WHAT, entryPath(id))),
      TE.chain(() => syncDir(WHAT, dir))
    )

  const moveAside: FileQuarantine['moveAside'] = (s) => {
    const id = newId(s.kind)
    const moved = recordPath(id)
    return pipe(
      renameIfExists(s.object, s.path, moved),
      TE.chain((there) =>
        !there
          ? TE.right(false)
          : pipe(
              readText(s.object, moved),
              TE.chain((now) =>
                O.isSome(now) && now.value === s.text
                  ? pipe(
                      syncDir(s.object, s.dir),
                      // the bytes are out of the way: a description that cannot be written only
                      // leaves an entry that `list` shows as undescribed
                      TE.chain(() =>
                        pipe(
                          writeEntry(describeAs(id, s)),
                          TE.orElse(() => syncDir(WHAT, dir))
                        )
                      ),
                      TE.map(() => {
                        logged(id, s)
                        return true
                      })
                    )
                  : // a concurrent put renamed a new record into place between our read and our
                    // rename: put it back (unless an even newer one is there) and read again
                    pipe(
                      linkUnlessExists(s.object, moved, s.path),
                      TE.chain(() => removeFile(WHAT, moved)),
                      TE.map(() => false)
                    )
              )
            )
      )
    )
  }

  const keep: FileQuarantine['keep'] = (id, s, holds) =>
    pipe(
      linkUnlessExists(s.object, s.path, recordPath(id)),
      TE.chain(() => writeEntry(describeAs(id, s, holds))),
      cleanupOnError(() => forget(id))
    )

  const failed: FileQuarantine['failed'] = (s, e) => {
    const key = `${s.path}\0${createHash('sha256').update(s.text).digest('hex')}`
    if (reported.has(key)) return
    if (reported.size >= REPORTED_MAX) reported.clear()
    reported.add(key)
    log.error('an unreadable record could not be quarantined; it reads as absent', {
      kind: s.kind,
      object: s.object,
      reason: s.reason,
      file: s.path,
      detail: describe(e)
    })
  }

  // One entry as listed: its description, or what its id and files still tell.
  const entryOf = (id: string, hasRecord: boolean): TE.TaskEither<CoreError, QuarantinedRecord> =>
    pipe(
      readText(WHAT, entryPath(id)),
      TE.map((text) => {
        const described = O.isNone(text) ? undefined : decodeEntry(`quarantine entry ${id}`, text.value)
        const location = hasRecord ? recordPath(id) : `${recordPath(id)} (missing)`
        if (described !== undefined && E.isRight(described)) {
          const d = described.right
          return {
            id,
            kind: d.kind,
            object: d.object,
            at: d.at,
            reason: d.reason,
            location,
            formerLocation: d.formerLocation,
            ...(d.key === undefined ? {} : { key: d.key }),
            ...(d.holds === undefined ? {} : { holds: d.holds })
          }
        }
        const kind = id.split('-')[0] ?? 'unknown'
        return {
          id,
          kind,
          object: `a ${kind} record`,
          at: timeOfId(id),
          reason:
            described === undefined
              ? 'not described: the move was interrupted, or its description could not be written'
              : `its description is unreadable: ${describe(described.left)}`,
          location
        }
      })
    )

  const list = (): TE.TaskEither<CoreError, ReadonlyArray<QuarantinedRecord>> =>
    pipe(
      readNames(WHAT, dir),
      TE.chain((names) => {
        const ids = new Set<string>()
        for (const n of names) {
          const id = n.endsWith(RECORD)
            ? n.slice(0, -RECORD.length)
            : n.endsWith(ENTRY)
              ? n.slice(0, -ENTRY.length)
              : ''
          if (ENTRY_ID.test(id)) ids.add(id)
        }
        const present = new Set(names)
        return TE.traverseSeqArray((id: string) => entryOf(id, present.has(`${id}${RECORD}`)))([...ids])
      }),
      TE.map((entries) => [...entries].sort((a, b) => (a.at === b.at ? (a.id < b.id ? -1 : 1) : a.at < b.at ? -1 : 1)))
    )

  const newId = (kind: RecordKind): string => `${kind}-${compactTime(new Date())}-${randomBytes(6).toString('hex')}`

  const setAside: FileQuarantine['setAside'] = (s) =>
    pipe(
      moveAside(s),
      TE.orElse((e) => {
        failed(s, e)
        return TE.right(true)
      })
    )

  return {
    newId,
    moveAside,
    setAside,
    keep,
    logged,
    forget,
    failed,
    port: (releaseHold) => ({
      list,
      drop: (id) =>
        !ENTRY_ID.test(id)
          ? TE.right(false)
          : pipe(
              list(),
              TE.map((all) => all.find((e) => e.id === id)),
              TE.chain((entry) =>
                entry === undefined
                  ? TE.right(false)
                  : pipe(
                      entry.holds === undefined ? TE.right(undefined) : releaseHold(id, entry.holds),
                      TE.chain(() => forget(id)),
                      TE.map(() => true)
                    )
              )
            )
    })
  }
}
