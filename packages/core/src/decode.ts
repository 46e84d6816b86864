/**
 * Decoding at the boundaries: one helper that turns an io-ts failure into a `DecodeFailure`
 * naming each bad field as "path: expected X, got Y" (io-ts's PathReporter repeats whole types).
 */
import * as E from 'fp-ts/lib/Either.js'
import type * as t from 'io-ts'
import { decodeFailure, type CoreError } from './errors.js'

// Bad input can be anything: a bigint, a cycle. Showing it must not throw.
const stringify = (v: unknown): string | undefined => {
  try {
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x))
  } catch {
    return undefined
  }
}

const shown = (v: unknown): string => {
  if (v === undefined) return 'nothing'
  const s = stringify(v) ?? Object.prototype.toString.call(v)
  return s.length > 60 ? `${s.slice(0, 57)}...` : s
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
    const expected = err.message ?? expectedOf(err.context, err.value)
    const where = fields.length > 0 ? fields.join('.') : '(root)'
    return `${where}: expected ${expected}, got ${shown(err.value)}`
  })
  return [...new Set(lines)]
}

const OBJECT_TYPES = new Set(['InterfaceType', 'PartialType', 'IntersectionType', 'ExactType', 'StrictType'])
const tagOf = (c: t.ContextEntry | undefined): string | undefined =>
  (c?.type as unknown as { _tag?: string } | undefined)?._tag
// Generated names like "{ id: NetworkId, ... }" or "Partial<...>" are too long for a message.
const readable = (name: string): boolean => !name.startsWith('{') && !name.startsWith('Partial<') && name.length <= 40

const expectedOf = (ctx: t.Context, value: unknown): string => {
  const last = ctx[ctx.length - 1]
  if (OBJECT_TYPES.has(tagOf(last) ?? '') && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    const named = [...ctx].reverse().find((c) => readable(c.type.name))
    return named === undefined ? 'an object' : `an object (${named.type.name})`
  }
  return last?.type.name ?? 'a valid value'
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
