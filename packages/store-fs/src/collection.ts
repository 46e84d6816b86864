/**
 * A record collection as one directory of `<encoded key>.json` files. `put` checks that the
 * record decodes back, then replaces the file atomically (fsio.replaceFile); `delete` unlinks it
 * and fsyncs the directory. Last writer wins, as the Collection port promises, so no lock is taken.
 * A file that does not decode, or holds another key, is quarantined when read (quarantine.ts):
 * `get` answers none, `list` leaves it out.
 */
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type * as t from 'io-ts'
import { recordObject, type Collection, type CoreError } from '@isthmus/core'
import { storableEnvelope } from './envelope.js'
import { removeFile, replaceFile, syncDir } from './fsio.js'
import { loadRecord, readAll, type Loaded } from './records.js'
import type { FileQuarantine } from './quarantine.js'
import { decodeName } from './names.js'
import { RECORD_SUFFIX } from './layout.js'

/** @category model */
export interface CollectionSpec<K extends string, A, Out> {
  readonly kind: 'network' | 'endpoint' | 'pool'
  readonly codec: t.Type<A, Out>
  readonly keyOf: (a: A) => K
  readonly dir: string
  readonly pathOf: (key: K) => string
  readonly tempMaxAgeMs: number
  readonly quarantine: FileQuarantine
}

/** @category constructors */
export const fileCollection = <K extends string, A, Out>(spec: CollectionSpec<K, A, Out>): Collection<K, A> => {
  const { kind, codec, keyOf, dir, pathOf, quarantine } = spec
  const load = loadRecord(kind, codec)
  const storable = storableEnvelope(kind, codec)
  const records = `the ${kind} records`

  // A record must sit in its own key's file: a hashed or hand-copied file holding another key
  // would otherwise answer for the wrong id.
  const misplaced = (path: string) => (value: A) =>
    pathOf(keyOf(value)) === path ? undefined : `holds ${recordObject(kind, keyOf(value))}, not the record of this file`

  // What the file of `key` (or the unkeyed file `path`, while listing) holds; a bad file is moved
  // aside and the file read once more (a concurrent put may have replaced it meanwhile).
  const read = (key: string | undefined, what: string, path: string): TE.TaskEither<CoreError, O.Option<A>> => {
    const once = (quarantining: boolean): TE.TaskEither<CoreError, O.Option<A>> =>
      pipe(
        load(what, path, misplaced(path)),
        TE.chain((r: Loaded<A>) => {
          if (r._tag === 'absent') return TE.right(O.none)
          if (r._tag === 'ok') return TE.right(O.some(r.value))
          if (!quarantining) return TE.right(O.none)
          const suspect = { kind, key, object: what, path, dir, text: r.text, reason: r.reason }
          // Even if it cannot be moved (a read-only disk), it reads as absent, never as an error
          // that would stop work on other objects.
          return pipe(
            quarantine.setAside(suspect),
            TE.chain((gone) => (gone ? TE.right(O.none) : once(false)))
          )
        })
      )
    return once(true)
  }

  return {
    get: (id) => read(id, recordObject(kind, id), pathOf(id)),
    put: (record, options) => {
      const key = keyOf(record)
      const what = recordObject(kind, key)
      return pipe(
        TE.fromEither(storable(what, record)),
        TE.chain((text) => replaceFile(what, pathOf(key), dir, text, options?.durable ?? true))
      )
    },
    delete: (id) => {
      const what = recordObject(kind, id)
      return pipe(
        removeFile(what, pathOf(id)),
        TE.chain(() => syncDir(what, dir))
      )
    },
    list: () =>
      readAll(
        records,
        dir,
        spec.tempMaxAgeMs
      )((name, path) => {
        const key = decodeName(name.slice(0, -RECORD_SUFFIX.length))
        return read(key, key === undefined ? `${kind} in file ${name}` : recordObject(kind, key), path)
      })
  }
}
