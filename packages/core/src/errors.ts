/**
 * The one error type of isthmus. Core and adapters return it in `Either`/`TaskEither` and never
 * throw; each frontend owns one exhaustive mapping of it onto its protocol (CNI code + msg,
 * Docker `{"Err"}`), so adding a variant breaks the build there on purpose.
 */

/** @category model */
export type ObjectKind = 'network' | 'endpoint' | 'sandbox' | 'container' | 'pool' | 'address' | 'lease'

/** @category model */
export type CoreError =
  | { readonly _tag: 'DecodeFailure'; readonly what: string; readonly errors: ReadonlyArray<string> }
  | { readonly _tag: 'InvalidConfig'; readonly detail: string }
  | { readonly _tag: 'UnsupportedField'; readonly field: string; readonly value: unknown }
  | { readonly _tag: 'IncompatibleVersion'; readonly requested: string; readonly supported: ReadonlyArray<string> }
  | { readonly _tag: 'NotFound'; readonly kind: ObjectKind; readonly id: string }
  | { readonly _tag: 'AlreadyExists'; readonly kind: ObjectKind; readonly id: string; readonly detail: string }
  | { readonly _tag: 'AddressInUse'; readonly address: string; readonly space: string; readonly owner: string }
  | { readonly _tag: 'PoolOverlap'; readonly requested: string; readonly existing: string; readonly space: string }
  | { readonly _tag: 'PoolExhausted'; readonly pool: string }
  | { readonly _tag: 'InvalidNetns'; readonly path: string; readonly detail: string }
  | { readonly _tag: 'Io'; readonly op: string; readonly cause: string }
  | { readonly _tag: 'Transient'; readonly cause: string }
  | {
      readonly _tag: 'Dataplane'
      readonly argv: ReadonlyArray<string>
      readonly exitCode: number
      readonly stderr: string
    }
  | { readonly _tag: 'Controller'; readonly op: string; readonly status: number; readonly body: string }
  | { readonly _tag: 'Agent'; readonly op: string; readonly status: number; readonly body: string }
  | { readonly _tag: 'Unavailable'; readonly limitedConnectivity: boolean; readonly detail: string }

/** @category model */
export type CoreErrorTag = CoreError['_tag']

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

/** @category constructors */
export const decodeFailure = (what: string, errors: ReadonlyArray<string>): CoreError => ({
  _tag: 'DecodeFailure',
  what,
  errors
})
/** @category constructors */
export const invalidConfig = (detail: string): CoreError => ({ _tag: 'InvalidConfig', detail })
/** @category constructors */
export const unsupportedField = (field: string, value: unknown): CoreError => ({
  _tag: 'UnsupportedField',
  field,
  value
})
/** @category constructors */
export const incompatibleVersion = (requested: string, supported: ReadonlyArray<string>): CoreError => ({
  _tag: 'IncompatibleVersion',
  requested,
  supported
})
/** @category constructors */
export const notFound = (kind: ObjectKind, id: string): CoreError => ({ _tag: 'NotFound', kind, id })
/** @category constructors */
export const alreadyExists = (kind: ObjectKind, id: string, detail: string): CoreError => ({
  _tag: 'AlreadyExists',
  kind,
  id,
  detail
})
/** @category constructors */
export const addressInUse = (address: string, space: string, owner: string): CoreError => ({
  _tag: 'AddressInUse',
  address,
  space,
  owner
})
/** @category constructors */
export const poolOverlap = (requested: string, existing: string, space: string): CoreError => ({
  _tag: 'PoolOverlap',
  requested,
  existing,
  space
})
/** @category constructors */
export const poolExhausted = (pool: string): CoreError => ({ _tag: 'PoolExhausted', pool })
/** @category constructors */
export const invalidNetns = (path: string, detail: string): CoreError => ({ _tag: 'InvalidNetns', path, detail })
/** @category constructors */
export const io = (op: string, cause: unknown): CoreError => ({ _tag: 'Io', op, cause: causeText(cause) })
/** @category constructors */
export const transient = (cause: string): CoreError => ({ _tag: 'Transient', cause })
/** @category constructors */
export const dataplane = (argv: ReadonlyArray<string>, exitCode: number, stderr: string): CoreError => ({
  _tag: 'Dataplane',
  argv,
  exitCode,
  stderr
})
/** @category constructors */
export const controller = (op: string, status: number, body: string): CoreError => ({
  _tag: 'Controller',
  op,
  status,
  body
})
/** @category constructors */
export const agent = (op: string, status: number, body: string): CoreError => ({ _tag: 'Agent', op, status, body })
/** @category constructors */
export const unavailable = (detail: string, limitedConnectivity = false): CoreError => ({
  _tag: 'Unavailable',
  limitedConnectivity,
  detail
})

// -------------------------------------------------------------------------------------
// utils
// -------------------------------------------------------------------------------------

/** The message of an unknown thrown value, for adapters that wrap promise APIs. @category utils */
export const causeText = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === 'string' ? cause : JSON.stringify(cause)

/**
 * `scheme://user:password@host` in free text: the scheme (bounded, so a long run of letters costs
 * linear time), then everything up to the authority's last `@` (a password may hold a raw `@`,
 * and URL parsers split at the last one). Quotes, whitespace and `/?#` end an authority.
 */
const URL_USERINFO = /([a-z][a-z0-9+.-]{0,31}:\/\/)((?:[^\s/?#@"'<>\\]*@)+)/gi

/**
 * `text` with the credentials of every URL in it blanked: `http://user:[redacted]@host` (the user
 * stays, it helps to tell accounts apart), or `http://[redacted]@host` when the userinfo has no
 * password (it may be a token). Idempotent; used by `describe` and by the log adapter, the two
 * places every sentence for a person passes.
 *
 * @category utils
 */
export const redactUrlCredentials = (text: string): string =>
  text.replace(URL_USERINFO, (_, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':')
    return `${scheme}${colon < 0 ? '' : userinfo.slice(0, colon + 1)}[redacted]@`
  })

/** True when the error means "the thing is already gone": deletes treat it as success. @category utils */
export const isNotFound = (e: CoreError): boolean => e._tag === 'NotFound'

/**
 * One sentence for a person (the Docker CLI user, a runtime's log). Specifics, never secrets:
 * every frontend's error reply is made here, so this is where credentials in URLs are blanked,
 * whichever adapter put a URL (or a server's echo of one) into the error.
 *
 * @category utils
 */
export const describe = (e: CoreError): string => redactUrlCredentials(sentence(e))

const sentence = (e: CoreError): string => {
  switch (e._tag) {
    case 'DecodeFailure':
      return `invalid ${e.what}: ${e.errors.join('; ')}`
    case 'InvalidConfig':
      return `invalid configuration: ${e.detail}`
    case 'UnsupportedField':
      return `unsupported field ${e.field}=${JSON.stringify(e.value)}`
    case 'IncompatibleVersion':
      return `version ${e.requested} is not supported (supported: ${e.supported.join(', ')})`
    case 'NotFound':
      return `${e.kind} ${e.id} not found`
    case 'AlreadyExists':
      return `${e.kind} ${e.id} already exists: ${e.detail}`
    case 'AddressInUse':
      return `address ${e.address} is already in use by ${e.owner} in address space ${e.space}`
    case 'PoolOverlap':
      return `pool ${e.requested} overlaps pool ${e.existing} in address space ${e.space}`
    case 'PoolExhausted':
      return `no free address left in pool ${e.pool}`
    case 'InvalidNetns':
      return `invalid network namespace ${e.path}: ${e.detail}`
    case 'Io':
      return `I/O failure during ${e.op}: ${e.cause}`
    case 'Transient':
      return `temporary failure, try again: ${e.cause}`
    case 'Dataplane':
      return `host networking command failed (${e.argv.join(' ')}, exit ${e.exitCode}): ${e.stderr.trim()}`
    case 'Controller':
      return `network controller refused ${e.op} (HTTP ${e.status}): ${e.body}`
    case 'Agent':
      return `vRouter agent refused ${e.op} (HTTP ${e.status}): ${e.body}`
    case 'Unavailable':
      return `isthmus is not ready: ${e.detail}`
  }
}
