/**
 * A record collection as one directory of `<encoded key>.json` files. `put` replaces the file
 * atomically (fsio.replaceFile); `delete` unlinks it and fsyncs the directory. Last writer wins,
 * as the Collection port promises, so no lock is taken.
 */
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type * as t from 'io-ts'
import { decodeFailure, type Collection, type CoreError } from '@isthmus/core'
import { encodeEnvelope, type RecordKind } from './envelope.js'
import { removeFile, replaceFile, syncDir } from './fsio.js'
import { readAll, readRecord } from './records.js'

/** @category model */
export interface CollectionSpec<K extends string, A, Out> {
  readonly kind: RecordKind
  readonly codec: t.Type<A, Out, unknown>
  readonly keyOf: (a: A) => K
  readonly dir: string
  readonly pathOf: (key: K) => string
  readonly tempMaxAgeMs: number
}

/** @category constructors */
export const fileCollection = <K extends string, A, Out>(spec: CollectionSpec<K, A, Out>): Collection<K, A> => {
  const { kind, codec, keyOf, dir, pathOf } = spec
  // A record must sit in its own key's file: a hashed or hand-copied file holding another key
  // would otherwise answer for the wrong id.
  const checkKey =
    (expected: K | undefined) =>
    (path: string, value: A): TE.TaskEither<CoreError, A> => {
      const key = keyOf(value)
      const ok = expected === undefined ? pathOf(key) === path : key === expected
      return ok ? TE.right(value) : TE.left(decodeFailure(path, [`${kind} ${key} is not the record this file is for`]))
    }
  return {
    get: (id) => {
      const path = pathOf(id)
      return pipe(
        readRecord(kind, codec)(path),
        TE.chain(
          O.match(
            () => TE.right<CoreError, O.Option<A>>(O.none),
            (r) => TE.map((v: A) => O.some(v))(checkKey(id)(path, r.value))
          )
        )
      )
    },
    put: (record, options) =>
      replaceFile(pathOf(keyOf(record)), dir, encodeEnvelope(kind, codec, record), options?.durable ?? true),
    delete: (id) =>
      pipe(
        removeFile(pathOf(id)),
        TE.chain(() => syncDir(dir))
      ),
    list: () => readAll(kind, codec, spec.tempMaxAgeMs)(dir, checkKey(undefined))
  }
}
