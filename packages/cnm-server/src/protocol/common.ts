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
