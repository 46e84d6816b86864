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

/** The failure reply for an error: a non-200 status and `{"Err": sentence}` (plus `Error` for IPAM). */
export const errorReply = (api: Api, e: CoreError): Reply => {
  const Err = describe(e)
  return { status: statusOf(e), body: api === 'IpamDriver' ? { Err, Error: Err } : { Err } }
}
