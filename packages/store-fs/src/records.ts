/**
 * Reading record files: one file decoded through its envelope, told apart as absent, good or bad
 * (bad ones go to the quarantine, quarantine.ts), and every record of a directory (temp files
 * skipped and lazily swept, files removed between readdir and read skipped).
 */
import { join } from 'node:path'
import * as E from 'fp-ts/lib/Either.js'
import * as RA from 'fp-ts/lib/ReadonlyArray.js'
import type * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type * as t from 'io-ts'
import type { CoreError } from '@isthmus/core'
import { decodeEnvelope, type RecordKind } from './envelope.js'
import { readFileNames, readText } from './fsio.js'
import { isRecordName } from './layout.js'
import { sweepTemps } from './sweep.js'
import { traverseLimited } from './traverse.js'

// Files read at once by `readAll`: enough to keep the thread pool busy, far below any fd limit.
const READ_CONCURRENCY = 32

/**
 * What one record file holds: nothing (no file, or an empty one: a cut write, fsio.ts), a record
 * with the exact text it was read from (release compares texts), or bytes that are not a record
 * of this place, and why.
 *
 * @category model
 */
export type Loaded<A> =
  | { readonly _tag: 'absent' }
  | { readonly _tag: 'ok'; readonly value: A; readonly text: string }
  | { readonly _tag: 'bad'; readonly text: string; readonly reason: string }

const ABSENT = { _tag: 'absent' } as const

/**
 * Read and decode one record file of `what`; `misplaced` says why a decoded record does not
 * belong in this file (another key), if it does not.
 *
 * @category utils
 */
export const loadRecord =
  <A, Out>(kind: RecordKind, codec: t.Type<A, Out>) =>
  (what: string, path: string, misplaced: (a: A) => string | undefined): TE.TaskEither<CoreError, Loaded<A>> =>
    pipe(
      readText(what, path),
      TE.map((text): Loaded<A> => {
        if (text._tag === 'None') return ABSENT
        const decoded = decodeEnvelope(kind, codec)(what, text.value)
        if (E.isLeft(decoded)) {
          const e = decoded.left
          return { _tag: 'bad', text: text.value, reason: e._tag === 'DecodeFailure' ? e.errors.join('; ') : e._tag }
        }
        const wrong = misplaced(decoded.right)
        return wrong === undefined
          ? { _tag: 'ok', value: decoded.right, text: text.value }
          : { _tag: 'bad', text: text.value, reason: wrong }
      })
    )

/**
 * `each` of every record file of `dir` (`what` names the directory in errors), in name order;
 * what `each` answers none for is left out. A directory is never a record, whatever its name.
 *
 * @category utils
 */
export const readAll =
  (what: string, dir: string, tempMaxAgeMs: number) =>
  <A>(
    each: (name: string, path: string) => TE.TaskEither<CoreError, O.Option<A>>
  ): TE.TaskEither<CoreError, ReadonlyArray<A>> =>
    pipe(
      readFileNames(what, dir),
      TE.chainFirst((names) => sweepTemps(dir, names, tempMaxAgeMs)),
      TE.map((names) => names.filter(isRecordName).sort()),
      TE.chain(traverseLimited(READ_CONCURRENCY, (name) => each(name, join(dir, name)))),
      TE.map((found) => RA.compact(found))
    )
