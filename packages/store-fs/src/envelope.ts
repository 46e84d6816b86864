/**
 * The envelope around every JSON file on disk: `{"schema":1,"kind":"network","data":{...}}`.
 * `schema` lets a later isthmus read (or refuse, clearly) what an older or newer one wrote;
 * `kind` catches a file put in the wrong directory. Decoding never throws: bad JSON, an unknown
 * schema and a bad record all become a `DecodeFailure` that names the file.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as t from 'io-ts'
import { IpAddress, PoolId, causeText, decodeFailure, decodeWith, type CoreError } from '@isthmus/core'

/** The schema version this code writes and reads. @category constants */
export const SCHEMA_VERSION = 1

/** What a file holds. @category model */
export type RecordKind = 'network' | 'endpoint' | 'sandbox' | 'pool' | 'lease' | 'cursor'

/** A pool's round-robin cursor, as stored (a hint for the allocator). @category codecs */
export const Cursor = t.type({ pool: PoolId, address: IpAddress }, 'Cursor')
/** @category model */
export type Cursor = t.TypeOf<typeof Cursor>

/** The part of every envelope read before anything else, to tell a schema mismatch apart. @category codecs */
export const EnvelopeHeader = t.type({ schema: t.number, kind: t.string }, 'EnvelopeHeader')

/**
 * The envelope codec of one kind of record.
 *
 * @category codecs
 */
export const Envelope = <A, Out>(kind: RecordKind, data: t.Type<A, Out, unknown>) =>
  t.type({ schema: t.literal(SCHEMA_VERSION), kind: t.literal(kind), data }, `Envelope<${kind}>`)

type EnvelopeCodec<A, Out> = ReturnType<typeof Envelope<A, Out>>

interface Built {
  readonly codec: t.Mixed
  /** Texts decoded before and their records: a file read again unchanged is not decoded again. */
  readonly decoded: Map<string, unknown>
}

// Texts remembered per kind and data codec: the daemon's networks, pools and live endpoints.
const DECODED_MAX = 256

// Every record read and write goes through one envelope codec: built once per kind and data codec.
const built = new WeakMap<t.Mixed, Map<RecordKind, Built>>()
const builtOf = <A, Out>(kind: RecordKind, data: t.Type<A, Out, unknown>): Built => {
  let byKind = built.get(data)
  if (byKind === undefined) built.set(data, (byKind = new Map()))
  let b = byKind.get(kind)
  if (b === undefined) byKind.set(kind, (b = { codec: Envelope(kind, data), decoded: new Map() }))
  return b
}
const envelopeOf = <A, Out>(kind: RecordKind, data: t.Type<A, Out, unknown>): EnvelopeCodec<A, Out> =>
  builtOf(kind, data).codec as EnvelopeCodec<A, Out>

/** The bytes of a record file. @category utils */
export const encodeEnvelope = <A, Out>(kind: RecordKind, data: t.Type<A, Out, unknown>, value: A): string =>
  `${JSON.stringify(envelopeOf(kind, data).encode({ schema: SCHEMA_VERSION, kind, data: value }))}\n`

/**
 * Decode the bytes of `file` as an envelope of `kind` holding a `data`.
 *
 * @category utils
 */
export const decodeEnvelope = <A, Out>(kind: RecordKind, data: t.Type<A, Out, unknown>) => {
  const b = builtOf(kind, data)
  const codec = b.codec as EnvelopeCodec<A, Out>
  return (file: string, text: string): E.Either<CoreError, A> => {
    // Decoding is a pure function of the text. A copy goes out, as from a fresh decode: the Store
    // port hands out records its callers may change.
    if (b.decoded.has(text)) return E.right(structuredClone(b.decoded.get(text)) as A)
    const decoded = pipe(
      E.tryCatch(
        () => JSON.parse(text) as unknown,
        (e) => decodeFailure(file, [`not JSON (${causeText(e)})`])
      ),
      E.chainFirst((json) =>
        pipe(
          decodeWith(EnvelopeHeader, file)(json),
          E.chain((h) =>
            h.schema === SCHEMA_VERSION
              ? E.right(h)
              : E.left(
                  decodeFailure(file, [
                    `schema: version ${h.schema} is not one this isthmus reads (it reads ${SCHEMA_VERSION}); ` +
                      'was the file written by another release?'
                  ])
                )
          ),
          E.chain((h) =>
            h.kind === kind ? E.right(h) : E.left(decodeFailure(file, [`kind: expected "${kind}", got "${h.kind}"`]))
          )
        )
      ),
      E.chain(decodeWith(codec, file)),
      E.map((env) => env.data)
    )
    if (E.isRight(decoded)) {
      // the oldest text goes first (a Map keeps insertion order)
      if (b.decoded.size >= DECODED_MAX) b.decoded.delete(b.decoded.keys().next().value as string)
      b.decoded.set(text, structuredClone(decoded.right))
    }
    return decoded
  }
}
