/** Codec pieces shared by the NetworkDriver and IpamDriver protocol modules. */
import * as t from 'io-ts'

/** Go marshals an absent map or slice as `null`: accept both and read null as empty. */
export const nullable = <C extends t.Mixed>(codec: C, name = `${codec.name} | null`) =>
  t.union([codec, t.null, t.undefined], name)

/** Docker's option maps: `-o` values are strings, labels from the engine are any JSON. */
export const Options = nullable(t.record(t.string, t.unknown), 'Options')
export type Options = t.TypeOf<typeof Options>

/** Every failure reply of both APIs. */
export const ErrorResponse = t.type({ Err: t.string }, 'ErrorResponse')
export type ErrorResponse = t.TypeOf<typeof ErrorResponse>

/** An empty success reply: dockerd fails on an empty 200 body (`EOF`), so always send `{}`. */
export const EmptyResponse = t.type({}, 'EmptyResponse')
export type EmptyResponse = t.TypeOf<typeof EmptyResponse>
