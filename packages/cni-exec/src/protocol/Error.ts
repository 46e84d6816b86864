/**
 * The CNI error document (CNI SPEC §Error): what goes on stdout, with exit code 1, whenever a
 * command fails. The reserved codes are named here; `translate.ts` owns the one mapping from
 * core errors onto them.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as t from 'io-ts'
import { decodeWith, describe } from '@isthmus/core'

/** CNI SPEC §Error codes (0-99 reserved; 100+ are this plugin's own). @category constants */
export const Code = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnv: 4,
  Io: 5,
  Decode: 6,
  InvalidConfig: 7,
  InvalidNetns: 8,
  TryAgainLater: 11,
  Unavailable: 50,
  UnavailableLimited: 51,
  // plugin-specific (100+)
  PoolExhausted: 100,
  Dataplane: 101,
  Controller: 102,
  AddressInUse: 103,
  // CHECK found the attachment differs from prevResult or from what ADD made
  CheckFailed: 104,
  // the Docker Engine API refused a call or answered outside its documented shape (Docker modes)
  DockerRefused: 105,
  // what libcni reports for errors of unknown origin; also a delegate's non-JSON failure
  Internal: 999
} as const

/**
 * The error document. `code` is a number (the to_docker shim's string code was a spec bug that a
 * codec catches); `cniVersion` is the request's, or the newest when the request had none.
 *
 * @category codecs
 */
export const CniError = t.intersection(
  [t.type({ code: t.number, msg: t.string }), t.partial({ cniVersion: t.string, details: t.string })],
  'CniError'
)
/** @category model */
export type CniError = t.TypeOf<typeof CniError>

/** @category constructors */
export const cniError = (code: number, msg: string, details?: string): CniError =>
  details === undefined || details === '' ? { code, msg } : { code, msg, details }

/** Whether a value is already an error document (a delegate's error passes through unchanged). @category utils */
export const isCniError = (u: unknown): u is CniError => CniError.is(u)

/**
 * The error document as the plugin prints it: 4-space indent like the reference, `cniVersion`
 * the request's (the error's own when it names one), `details` only when there are some.
 *
 * @category utils
 */
export const errorDocument = (e: CniError, version: string): string =>
  JSON.stringify(
    {
      cniVersion: e.cniVersion ?? version,
      code: e.code,
      msg: e.msg,
      ...(e.details === undefined ? {} : { details: e.details })
    },
    null,
    4
  )

/**
 * A bug (something thrown where nothing should be): code 999 with one short sentence for the
 * runtime, and the stack apart, for the log only. The error document never carries a stack.
 *
 * @category constructors
 */
export const internalError = (thrown: unknown): { readonly error: CniError; readonly stack: string } => {
  const text =
    // eslint-disable-next-line no-restricted-syntax -- the error's name with its message, and no JSON for other values
    thrown instanceof Error
      ? `${thrown.name}: ${thrown.message}`
      : typeof thrown === 'string'
        ? thrown
        : Object.prototype.toString.call(thrown)
  const line = text.split('\n')[0] ?? ''
  return {
    error: cniError(
      Code.Internal,
      'internal error in the isthmus plugin (see its log)',
      line.length > 200 ? `${line.slice(0, 200)}…` : line
    ),
    // eslint-disable-next-line no-restricted-syntax -- the stack, not causeText's message
    stack: thrown instanceof Error ? (thrown.stack ?? text) : text
  }
}

/**
 * Decode `u` with `codec` (core's `decodeWith`); a refusal is the CNI error `code`/`msg` with
 * each bad field in `details`.
 *
 * @category utils
 */
export const decodeAs =
  <A, O>(codec: t.Type<A, O>, code: number, msg: string) =>
  (u: unknown): E.Either<CniError, A> =>
    pipe(
      decodeWith(codec)(u),
      E.mapLeft((e) => cniError(code, msg, e._tag === 'DecodeFailure' ? e.errors.join('; ') : describe(e)))
    )
