/**
 * The value of every key this package writes: `{"schema":1,"kind":"network","data":{...}}`, as
 * UTF-8 JSON. `schema` lets a later isthmus read (or refuse, clearly) what another release wrote;
 * `kind` catches a value under the wrong key. A value is written only if its bytes decode back
 * (decode before store), and reading never throws: bad bytes are a `DecodeFailure` naming the object.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as t from 'io-ts'
import { causeText, decodeFailure, decodeWith, parseJson, type CoreError } from '@isthmus/core'

/** The schema version this code writes and reads. @category constants */
export const SCHEMA_VERSION = 1

/** What a value holds. @category model */
export type ValueKind =
  'network' | 'endpoint' | 'pool' | 'lease' | 'cursor' | 'quarantine' | 'host' | 'cluster-network' | 'vni' | 'block'

const Header = t.type({ schema: t.number, kind: t.string }, 'EnvelopeHeader')

/** The bytes of `value` in its envelope, without the check of `storable` (values this package made). @category utils */
export const encode = <A, Out>(kind: ValueKind, codec: t.Type<A, Out>, value: A): Buffer =>
  Buffer.from(JSON.stringify({ schema: SCHEMA_VERSION, kind, data: codec.encode(value) }), 'utf8')

/**
 * Decode the bytes of a value of `kind`; failures name `what` and, for a bad record, its field
 * (`portMappings.0.hostIp: ...`, not `data.portMappings...`).
 *
 * @category utils
 */
export const decode =
  <A, Out>(kind: ValueKind, codec: t.Type<A, Out>) =>
  (what: string, bytes: Buffer): E.Either<CoreError, A> =>
    pipe(
      parseJson(what)(bytes.toString('utf8')),
      E.chainFirst((json) =>
        pipe(
          decodeWith(Header, what)(json),
          E.chain((h) =>
            h.schema !== SCHEMA_VERSION
              ? E.left(
                  decodeFailure(what, [
                    `schema: version ${h.schema} is not one this isthmus reads (it reads ${SCHEMA_VERSION}); ` +
                      'was it written by another release?'
                  ])
                )
              : h.kind !== kind
                ? E.left(decodeFailure(what, [`kind: expected "${kind}", got "${h.kind}"`]))
                : E.right(h)
          )
        )
      ),
      E.chain((json) => decodeWith(codec, what)((json as { data?: unknown }).data))
    )

/**
 * The bytes of `value` once they are known to decode back: a record that would not (a bad field,
 * NaN, a bigint) is a `DecodeFailure` for `what`, and nothing is written.
 *
 * @category utils
 */
export const storable =
  <A, Out>(kind: ValueKind, codec: t.Type<A, Out>) =>
  (what: string, value: A): E.Either<CoreError, Buffer> =>
    pipe(
      E.tryCatch(
        () => encode(kind, codec, value),
        (e) => decodeFailure(what, [`not representable as JSON (${causeText(e)})`])
      ),
      E.chainFirst((bytes) => decode(kind, codec)(what, bytes))
    )

/** Why bytes could not be read, in the decoder's words. @category utils */
export const reasonOf = (e: CoreError): string => (e._tag === 'DecodeFailure' ? e.errors.join('; ') : e._tag)
