/**
 * A keyed collection of records: one key per record under `<prefix><dir>/`, its value the record's
 * envelope. A value that does not decode, or decodes to a record of another key, is quarantined
 * when read (quarantine.ts) and reads as absent.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as RA from 'fp-ts/lib/ReadonlyArray.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type * as t from 'io-ts'
import { recordObject, transient, type Collection, type CoreError } from '@isthmus/core'
import { decode, reasonOf, storable } from './envelope.js'
import { unsegment, type RecordDir, type StoreKeys } from './keys.js'
import type { Kv, KvOps } from './kv.js'
import type { EtcdQuarantine } from './quarantine.js'

/** @category model */
export interface CollectionSpec<K extends string, A, Out> {
  readonly kind: 'network' | 'endpoint' | 'pool'
  readonly dir: RecordDir
  readonly codec: t.Type<A, Out>
  readonly keyOf: (a: A) => K
  readonly kv: KvOps
  readonly keys: StoreKeys
  readonly quarantine: EtcdQuarantine
}

/** How often a read retries a value that changed while it was being quarantined. @category constants */
export const REREADS = 5

/** What one value holds: a record of its key, or bytes that are not one, and why. @category model */
export type Judged<A> = { readonly _tag: 'ok'; readonly value: A } | { readonly _tag: 'bad'; readonly reason: string }

/** @category constructors */
export const etcdCollection = <K extends string, A, Out>(spec: CollectionSpec<K, A, Out>): Collection<K, A> => {
  const { kind, dir, codec, keyOf, kv, keys, quarantine } = spec
  const decodeValue = decode(kind, codec)
  const storableValue = storable(kind, codec)
  const object = (id: string) => recordObject(kind, id)

  const judge = (id: string, k: Kv): Judged<A> =>
    pipe(
      decodeValue(object(id), k.value),
      E.match(
        (e): Judged<A> => ({ _tag: 'bad', reason: reasonOf(e) }),
        (a): Judged<A> =>
          keyOf(a) === id
            ? { _tag: 'ok', value: a }
            : { _tag: 'bad', reason: `holds the ${object(keyOf(a))}, not the ${object(id)}` }
      )
    )

  // The record of `id`, with a bad value moved aside (absent then); read again if it changed meanwhile.
  const get = (id: K, attempt = 1): TE.TaskEither<CoreError, O.Option<A>> =>
    pipe(
      kv.get(`reading ${object(id)}`, keys.record(dir, id)),
      TE.chain(
        O.match(
          () => TE.right(O.none),
          (k) => {
            const j = judge(id, k)
            if (j._tag === 'ok') return TE.right(O.some(j.value))
            return pipe(
              quarantine.moveAside({ kind, key: id, object: object(id), kv: k, reason: j.reason }),
              TE.chain((moved) =>
                moved
                  ? TE.right(O.none)
                  : attempt < REREADS
                    ? get(id, attempt + 1)
                    : TE.left(transient(`${object(id)} kept changing while being read; try again`))
              )
            )
          }
        )
      )
    )

  // One value of a listing: its record, or nothing (moved aside; not the key of a record).
  const listed = (k: Kv): TE.TaskEither<CoreError, O.Option<A>> => {
    const rest = k.key.slice(keys.collection(dir).length)
    const id = unsegment(rest)
    if (id === undefined) {
      const reason = 'not under the key of a record'
      return pipe(
        quarantine.moveAside({ kind, object: object(rest), kv: k, reason }),
        TE.map(() => O.none)
      )
    }
    const j = judge(id, k)
    if (j._tag === 'ok') return TE.right(O.some(j.value))
    return pipe(
      quarantine.moveAside({ kind, key: id, object: object(id), kv: k, reason: j.reason }),
      TE.chain((moved) => (moved ? TE.right(O.none) : get(id as K)))
    )
  }

  return {
    get: (id) => get(id),
    put: (record) => {
      const id = keyOf(record)
      return pipe(
        TE.fromEither(storableValue(object(id), record)),
        TE.chain((bytes) => kv.put(`writing ${object(id)}`, keys.record(dir, id), bytes))
      )
    },
    delete: (id) => kv.remove(`removing ${object(id)}`, keys.record(dir, id)),
    list: () =>
      pipe(
        kv.list(`reading the ${dir}`, keys.collection(dir)),
        TE.chain((snap) => TE.traverseSeqArray(listed)(snap.kvs)),
        TE.map(RA.compact)
      )
  }
}
