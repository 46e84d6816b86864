/**
 * CoreError → Docker plugin reply: the one exhaustive mapping of this frontend. Teardown calls
 * (Leave, DeleteEndpoint, DeleteNetwork, Release*) treat NotFound as success before they get here.
 */
import { absurd } from 'fp-ts/lib/function.js'
import { describe, type CoreError } from '@isthmus/core'

export interface Reply {
  readonly status: number
  readonly body: Record<string, unknown>
}

/** Which API answers: IPAM error bodies carry `Error` too (dockerd reads it on a 200). */
export type Api = 'Plugin' | 'NetworkDriver' | 'IpamDriver'

const statusOf = (e: CoreError): number => {
  switch (e._tag) {
    case 'DecodeFailure':
      return 400
    // Never 404 for NotFound: dockerd reads a 404 as "method not implemented".
    case 'NotFound':
    case 'InvalidConfig':
    case 'UnsupportedField':
    case 'IncompatibleVersion':
    case 'AlreadyExists':
    case 'AddressInUse':
    case 'PoolOverlap':
    case 'PoolExhausted':
    case 'InvalidNetns':
    case 'Io':
    case 'Transient':
    case 'Dataplane':
    case 'Controller':
    case 'Agent':
    case 'Unavailable':
      return 500
    default:
      return absurd(e)
  }
}

/** A failure reply: a non-2xx status and `{"Err": sentence}` (plus `Error` for IPAM). */
export const failureReply = (api: Api, status: number, sentence: string): Reply => ({
  status,
  body: api === 'IpamDriver' ? { Err: sentence, Error: sentence } : { Err: sentence }
})

/** The failure reply for an error. */
export const errorReply = (api: Api, e: CoreError): Reply => failureReply(api, statusOf(e), describe(e))

/**
 * The reply for a failure that is a bug (a handler threw): one sentence without the error's own
 * text, which may hold anything (a stack, a path of the state directory); the log has it.
 */
export const bugReply = (api: Api, op: string): Reply =>
  failureReply(api, 500, `${op} failed on an internal error of isthmus (a bug; the daemon's log has the details)`)

/** What the log keeps of a bug: the stack when there is one (never sent to a caller). */
// eslint-disable-next-line no-restricted-syntax -- the stack, not causeText's message; only the type of a non-Error
export const bugText = (e: unknown): string => (e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : typeof e)
