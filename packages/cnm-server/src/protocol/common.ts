/** Codec pieces shared by the NetworkDriver and IpamDriver protocol modules. */
import * as t from 'io-ts'

/**
 * Go marshals an absent map or slice as `null`: accept both and read null as empty. Not a
 * `t.union`: a bad value is reported once, by the codec, not also as "expected null".
 */
export const nullable = <C extends t.Mixed>(codec: C, name = `${codec.name} | null`) =>
  new t.Type<t.TypeOf<C> | null | undefined, t.OutputOf<C> | null | undefined, unknown>(
    name,
    (u): u is t.TypeOf<C> | null | undefined => u === null || u === undefined || codec.is(u),
    // an unnamed context entry (left out of error paths) for the codec, as t.union would add
    (u, c) => (u === null || u === undefined ? t.success(u) : codec.validate(u, t.appendContext(c, '', codec, u))),
    (a) => (a === null || a === undefined ? a : (codec.encode(a) as t.OutputOf<C>))
  )

/** Docker's option maps: `-o` values are strings, labels from the engine are any JSON. */
export const Options = nullable(t.record(t.string, t.unknown, 'an object of options'), 'Options')
export type Options = t.TypeOf<typeof Options>

/** Every failure reply of both APIs. */
export const ErrorResponse = t.type({ Err: t.string }, 'ErrorResponse')
export type ErrorResponse = t.TypeOf<typeof ErrorResponse>

/** An empty success reply: dockerd fails on an empty 200 body (`EOF`), so always send `{}`. */
export const EmptyResponse = t.type({}, 'EmptyResponse')
export type EmptyResponse = t.TypeOf<typeof EmptyResponse>

// -------------------------------------------------------------------------------------
// typed string fields
// -------------------------------------------------------------------------------------

/**
 * A string field that always holds one kind of value (a network id, a subnet, a MAC), decoded
 * with the request so a handler gets it typed. Not a string: a failure of the request like any
 * other field's ("expected string"). A string `codec` refuses: an id failure, which the router
 * reports alone as `invalid <what>: …`, the sentence Docker has always been answered with.
 */
export class IdField<A, W> extends t.Type<W, string | undefined> {
  readonly _kind = 'IdField'
  constructor(
    /** The codec of a non-empty value. */
    readonly codec: t.Type<A, string>,
    /** What a refused value is called in the reply (`NetworkID`, `IPv4Data.Pool`, …). */
    readonly what: string,
    /** Whether `""` and absent mean none (Go's zero string), decoded as `undefined`. */
    readonly optional: boolean,
    /** Of several refused fields, the one of lowest rank is reported (then the first listed). */
    readonly rank: number
  ) {
    super(
      'string',
      (u): u is W => (optional && (u === undefined || u === '')) || codec.is(u),
      (u, c) => {
        if (optional && (u === undefined || u === '')) return t.success(undefined as W)
        if (typeof u !== 'string') return t.failure(u, c)
        const r = codec.validate(u, t.appendContext(c, '', this, u))
        return r._tag === 'Right'
          ? t.success(r.right as unknown as W)
          : t.failure(u, t.appendContext(c, '', this, u), r.left[0]?.message)
      },
      (a) => a as unknown as string | undefined
    )
  }
}

/** A field that always holds an `A`; `what` names it in an error. */
export const idField = <A extends string>(codec: t.Type<A, string>, what: string, rank = 0): IdField<A, A> =>
  new IdField<A, A>(codec, what, false, rank)

/** A field that holds an `A`, or nothing when absent or `""`. */
export const optionalIdField = <A extends string>(
  codec: t.Type<A, string>,
  what: string,
  rank = 0
): IdField<A, A | undefined> => new IdField<A, A | undefined>(codec, what, true, rank)

/** The field whose value its codec refused, when that is what `e` is about. */
export const refusedField = (e: t.ValidationError): IdField<unknown, unknown> | undefined => {
  const last = e.context[e.context.length - 1]?.type
  const parent = e.context[e.context.length - 2]?.type
  return last instanceof IdField && parent === last ? last : undefined
}

const isStringMap = (u: unknown): u is Record<string, string> =>
  typeof u === 'object' && u !== null && !Array.isArray(u) && Object.values(u).every((v) => typeof v === 'string')

/** A map of string options, and the one option `key` decoded by `field` (kept as sent when absent or `""`). */
export type OptionsWith<K extends string, A> = Readonly<Record<string, string>> & { readonly [k in K]?: A | '' }

/**
 * Docker's string options (`--ipam-opt`, an endpoint's options), JSON null read as absent, with
 * one key that always holds an `A`: checked with the request, as a field of its own.
 */
export const stringOptionsWith = <K extends string, A extends string>(key: K, field: IdField<A, A | undefined>) => {
  const map = t.record(t.string, t.string, 'an object of string options')
  return nullable(
    new t.Type<OptionsWith<K, A>, Record<string, string>, unknown>(
      'StringMap',
      (u): u is OptionsWith<K, A> => isStringMap(u) && field.is(u[key]),
      (u, c) => {
        const m = map.validate(u, t.appendContext(c, '', map, u))
        if (m._tag === 'Left') return m
        const v = m.right[key]
        if (v === undefined || v === '') return t.success(m.right as OptionsWith<K, A>)
        const d = field.validate(v, t.appendContext(c, key, field, v))
        return d._tag === 'Left' ? d : t.success({ ...m.right, [key]: d.right } as OptionsWith<K, A>)
      },
      (a) => a as Record<string, string>
    ),
    'StringMap'
  )
}

/** An option's value, `""` read as none. */
export const present = <A>(v: A | '' | undefined): A | undefined => (v === '' ? undefined : v)
