/**
 * Decoding at the boundaries: one helper that turns an io-ts failure into a `DecodeFailure`
 * naming each bad field as "path: expected X, got Y" (io-ts's PathReporter repeats whole types).
 */
import * as E from 'fp-ts/lib/Either.js'
import type * as t from 'io-ts'
import { decodeFailure, type CoreError } from './errors.js'

const shown = (v: unknown): string => {
  if (v === undefined) return 'nothing'
  const s = JSON.stringify(v)
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s
}

/**
 * "path: expected X, got Y" for each failing leaf; the path is dotted keys and indices.
 *
 * @category utils
 */
export const report = (errors: t.Errors): ReadonlyArray<string> => {
  const lines = errors.map((err) => {
    const fields = err.context
      .filter((c, i) => i > 0 && c.key !== '' && !isMemberIndex(err.context, i))
      .map((c) => c.key)
    const last = err.context[err.context.length - 1]
    const expected = err.message ?? last?.type.name ?? 'a valid value'
    const where = fields.length > 0 ? fields.join('.') : '(root)'
    return `${where}: expected ${expected}, got ${shown(err.value)}`
  })
  return [...new Set(lines)]
}

// A context entry whose parent is a union or intersection carries the member index, not a field name.
const isMemberIndex = (ctx: t.Context, i: number): boolean => {
  const parent = ctx[i - 1]
  if (parent === undefined) return false
  const tag = (parent.type as unknown as { _tag?: string })._tag
  return tag === 'UnionType' || tag === 'IntersectionType' || tag === 'RefinementType' || tag === 'ExactType'
}

/**
 * Decode `input` with `codec`; failures become a `DecodeFailure` for `what`.
 *
 * @category utils
 */
export const decodeWith =
  <A, O>(codec: t.Type<A, O, unknown>, what: string = codec.name) =>
  (input: unknown): E.Either<CoreError, A> => {
    const r = codec.decode(input)
    return E.isRight(r) ? r : E.left(decodeFailure(what, report(r.left)))
  }
