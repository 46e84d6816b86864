/**
 * The envelope around every JSON file on disk: `{"schema":1,"kind":"network","data":{...}}`.
 * `schema` lets a later isthmus read (or refuse, clearly) what an older or newer one wrote;
 * `kind` catches a file put in the wrong directory. Decoding never throws: bad JSON, an unknown
 * schema and a bad record all become a `DecodeFailure` that names the object (never the file).
 *
 * Writing goes through the same decoder (`storableEnvelope`): a record is written only if its
 * bytes decode back. Decoded texts are remembered, so that check costs one decode per new text,
 * and the first read of what was just written costs none.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as t from 'io-ts'
import { IpAddress, PoolId, causeText, decodeFailure, decodeWith, parseJson, type CoreError } from '@isthmus/core'

/** The schema version this code writes and reads. @category constants */
export const SCHEMA_VERSION = 1

/** What a file holds. @category model */
export type RecordKind = 'network' | 'endpoint' | 'pool' | 'lease' | 'cursor' | 'quarantine'

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
export const Envelope = <A, Out>(kind: RecordKind, data: t.Type<A, Out>) =>
  t.type({ schema: t.literal(SCHEMA_VERSION), kind: t.literal(kind), data }, `Envelope<${kind}>`)

/** Texts decoded before and their records: a file read again unchanged is not decoded again. */
type Decoded = Map<string, unknown>

// Texts remembered per kind and data codec: the daemon's networks, pools and live endpoints.
const DECODED_MAX = 256

const built = new WeakMap<t.Mixed, Map<RecordKind, Decoded>>()
const decodedOf = (kind: RecordKind, data: t.Mixed): Decoded => {
  let byKind = built.get(data)
  if (byKind === undefined) built.set(data, (byKind = new Map<RecordKind, Decoded>()))
  let d = byKind.get(kind)
  if (d === undefined) byKind.set(kind, (d = new Map<string, unknown>()))
  return d
}

const remember = (d: Decoded, text: string, value: unknown): void => {
  // the oldest text goes first (a Map keeps insertion order)
  if (d.size >= DECODED_MAX) d.delete(d.keys().next().value as string)
  d.set(text, value)
}

// The bytes of an envelope, whatever the value holds: a bigint or a cycle is a failure, not a throw.
const encodeText = <A, Out>(
  kind: RecordKind,
  data: t.Type<A, Out>,
  value: A,
  what: string
): E.Either<CoreError, string> =>
  E.tryCatch(
    () => encodeEnvelope(kind, data, value),
    (e) => decodeFailure(what, [`not representable as JSON (${causeText(e)})`])
  )

// Parse and check an envelope; the record in it is not kept (the callers keep what they need).
const decodeText = <A, Out>(
  kind: RecordKind,
  data: t.Type<A, Out>,
  what: string,
  text: string
): E.Either<CoreError, A> =>
  pipe(
    parseJson(what)(text),
    E.chainFirst((json) =>
      pipe(
        decodeWith(EnvelopeHeader, what)(json),
        E.chain((h) =>
          h.schema === SCHEMA_VERSION
            ? E.right(h)
            : E.left(
                decodeFailure(what, [
                  `schema: version ${h.schema} is not one this isthmus reads (it reads ${SCHEMA_VERSION}); ` +
                    'was the file written by another release?'
                ])
              )
        ),
        E.chain((h) =>
          h.kind === kind ? E.right(h) : E.left(decodeFailure(what, [`kind: expected "${kind}", got "${h.kind}"`]))
        )
      )
    ),
    // the record alone, so that a bad field reads `portMappings.0.hostIp`, not `data.portMappings...`
    E.chain((json) => decodeWith(data, what)((json as { data?: unknown }).data))
  )

/**
 * The bytes of a record file, without the check of `storableEnvelope` (for values this package
 * made itself and tests).
 *
 * @category utils
 */
export const encodeEnvelope = <A, Out>(kind: RecordKind, data: t.Type<A, Out>, value: A): string =>
  `${JSON.stringify({ schema: SCHEMA_VERSION, kind, data: data.encode(value) })}\n`

/**
 * The bytes of a record file once they are known to decode back: decode before store. A record
 * that would not (a bad field, NaN, a bigint) is a `DecodeFailure` for `what`, the object.
 *
 * @category utils
 */
export const storableEnvelope =
  <A, Out>(kind: RecordKind, data: t.Type<A, Out>) =>
  (what: string, value: A): E.Either<CoreError, string> => {
    const d = decodedOf(kind, data)
    return pipe(
      encodeText(kind, data, value, what),
      E.chainFirst((text) =>
        d.has(text)
          ? E.right(undefined)
          : pipe(
              decodeText(kind, data, what, text),
              // a fresh decode nobody else holds: kept as it is, copied on each read
              E.map((decoded) => remember(d, text, decoded))
            )
      )
    )
  }

/**
 * Decode the bytes of a file as an envelope of `kind` holding a `data`; failures name `what`.
 *
 * @category utils
 */
export const decodeEnvelope = <A, Out>(kind: RecordKind, data: t.Type<A, Out>) => {
  const d = decodedOf(kind, data)
  return (what: string, text: string): E.Either<CoreError, A> => {
    // Decoding is a pure function of the text. A copy goes out, as from a fresh decode: the Store
    // port hands out records its callers may change.
    if (d.has(text)) return E.right(structuredClone(d.get(text)) as A)
    const decoded = decodeText(kind, data, what, text)
    if (E.isRight(decoded)) remember(d, text, structuredClone(decoded.right))
    return decoded
  }
}
