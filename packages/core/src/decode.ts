/**
 * Decoding at the boundaries: one helper that turns an io-ts failure into a `DecodeFailure`
 * naming each bad field as "path: expected X, got Y" (io-ts's PathReporter repeats whole types).
 */
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import type * as t from 'io-ts'
import { causeText, decodeFailure, type CoreError } from './errors.js'

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
  <A, O>(codec: t.Type<A, O>, what: string = codec.name) =>
  (input: unknown): E.Either<CoreError, A> => {
    const r = codec.decode(input)
    return E.isRight(r) ? r : E.left(decodeFailure(what, report(r.left)))
  }

/**
 * `decodeWith` inside a TaskEither pipe: the one way an adapter or a frontend decodes what it
 * received (an HTTP body, a command's output) on its way to a flow.
 *
 * @category utils
 */
export const decodeTask =
  <A, O>(codec: t.Type<A, O>, what: string = codec.name) =>
  (input: unknown): TE.TaskEither<CoreError, A> =>
    TE.fromEither(decodeWith(codec, what)(input))

/**
 * `JSON.parse` as an Either: text that is not JSON is a `DecodeFailure` for `what` (the text is
 * trusted to be small: a command's output, a file isthmus wrote; text from a client is read with
 * `parseJsonWithin`).
 *
 * @category utils
 */
export const parseJson =
  (what: string) =>
  (text: string): E.Either<CoreError, unknown> => {
    try {
      return E.right(JSON.parse(text) as unknown)
    } catch (e) {
      return E.left(decodeFailure(what, [`not JSON: ${causeText(e)}`]))
    }
  }

/**
 * `parseJson` then `decodeWith`: JSON text into a record, or the one `DecodeFailure`.
 *
 * @category utils
 */
export const decodeJson =
  <A, O>(codec: t.Type<A, O>, what: string = codec.name) =>
  (text: string): E.Either<CoreError, A> =>
    E.chain(decodeWith(codec, what))(parseJson(what)(text))

// -------------------------------------------------------------------------------------
// JSON from outside, bounded
// -------------------------------------------------------------------------------------

/**
 * How much JSON a boundary reads from outside before parsing it. `JSON.parse` copes with any
 * depth, but everything after it that walks a value recursively (`JSON.stringify` in a log line,
 * a codec's error report, `String()` of an array) overflows the stack on a few thousand levels,
 * and a bigger text only costs memory.
 *
 * @category model
 */
export interface JsonLimits {
  /** The largest text accepted, in UTF-8 bytes. */
  readonly maxBytes: number
  /** The deepest nesting of arrays and objects accepted (`{}` is 1, `{"a":[1]}` is 2). */
  readonly maxDepth: number
}

/**
 * Whether JSON `text` nests arrays and objects deeper than `max`; brackets inside strings do not
 * count. One pass, no recursion, no allocation; not a validator (JSON.parse still is).
 *
 * @category utils
 */
export const nestsDeeperThan = (text: string, max: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) {
        i++
      } // a backslash: the next character is escaped
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return false
}

// UTF-8 bytes of a string without encoding it: 1 to 3 per UTF-16 unit, 4 per surrogate pair.
const utf8Length = (s: string): number => {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4
      i++
    } else n += 3
  }
  return n
}

/** Why a JSON text was not parsed. @category model */
export type JsonRefusal =
  | { readonly _tag: 'TooLarge'; readonly maxBytes: number }
  | { readonly _tag: 'TooDeep'; readonly maxDepth: number }
  | { readonly _tag: 'NotJson'; readonly detail: string }

/**
 * One phrase for a sentence: `more than N bytes`, `nested deeper than N levels`, or the parser's words.
 *
 * @category utils
 */
export const jsonRefusalText = (r: JsonRefusal): string =>
  r._tag === 'TooLarge'
    ? `more than ${r.maxBytes} bytes`
    : r._tag === 'TooDeep'
      ? `nested deeper than ${r.maxDepth} levels`
      : r.detail

/**
 * `JSON.parse` of `text` within `limits` (V8's own messages quote only a few characters of the
 * input, so `NotJson` may be shown).
 *
 * @category utils
 */
export const parseJsonWithin = (text: string, limits: JsonLimits): E.Either<JsonRefusal, unknown> => {
  // A UTF-16 length over the limit is over it in bytes too; below it, count the bytes.
  if (text.length > limits.maxBytes || utf8Length(text) > limits.maxBytes) {
    return E.left({ _tag: 'TooLarge', maxBytes: limits.maxBytes })
  }
  if (nestsDeeperThan(text, limits.maxDepth)) return E.left({ _tag: 'TooDeep', maxDepth: limits.maxDepth })
  try {
    return E.right(JSON.parse(text) as unknown)
  } catch (e) {
    return E.left({ _tag: 'NotJson', detail: causeText(e) })
  }
}
