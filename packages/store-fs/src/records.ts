/**
 * Reading record files: one file decoded through its envelope, and every record of a directory
 * (temp files skipped and lazily swept, files removed between readdir and read skipped).
 */
import { join } from 'node:path'
import * as RA from 'fp-ts/lib/ReadonlyArray.js'
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type * as t from 'io-ts'
import type { CoreError } from '@isthmus/core'
import { decodeEnvelope, type RecordKind } from './envelope.js'
import { readNames, readText } from './fsio.js'
import { isRecordName } from './layout.js'
import { sweepTemps } from './sweep.js'
import { traverseLimited } from './traverse.js'

// Files read at once by `readAll`: enough to keep the thread pool busy, far below any fd limit.
const READ_CONCURRENCY = 32

/** A decoded record with the exact text it was read from (release compares texts). @category model */
export interface Read<A> {
  readonly value: A
  readonly text: string
}

/**
 * Read and decode one record file; none when it does not exist.
 *
 * @category utils
 */
export const readRecord =
  <A, Out>(kind: RecordKind, codec: t.Type<A, Out, unknown>) =>
  (path: string): TE.TaskEither<CoreError, O.Option<Read<A>>> =>
    pipe(
      readText(path),
      TE.chain(
        O.match(
          () => TE.right(O.none),
          (text) =>
            pipe(
              TE.fromEither(decodeEnvelope(kind, codec)(path, text)),
              TE.map((value) => O.some({ value, text }))
            )
        )
      )
    )

/**
 * Every record of `dir`, each checked by `check` (which names the file on failure).
 *
 * @category utils
 */
export const readAll =
  <A, Out>(kind: RecordKind, codec: t.Type<A, Out, unknown>, tempMaxAgeMs: number) =>
  (
    dir: string,
    check: (path: string, value: A) => TE.TaskEither<CoreError, A>
  ): TE.TaskEither<CoreError, ReadonlyArray<A>> =>
    pipe(
      readNames(dir),
      TE.chainFirst((names) => sweepTemps(dir, names, tempMaxAgeMs)),
      TE.map((names) => names.filter(isRecordName).sort()),
      TE.chain(
        traverseLimited(READ_CONCURRENCY, (name) => {
          const path = join(dir, name)
          return pipe(
            readRecord(kind, codec)(path),
            TE.chain(
              O.match(
                () => TE.right(O.none),
                (r) => TE.map((v: A) => O.some(v))(check(path, r.value))
              )
            )
          )
        })
      ),
      TE.map((found) => RA.compact(found))
    )
