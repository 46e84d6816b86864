/**
 * Keystone authentication for the config API: one token at a time, fetched on first use,
 * fetched again once half its lifetime has passed (as contrail-go-api's keep-alive client does)
 * or when the API answers 401. Concurrent callers share one token request.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { controller, decodeWith, transient, type CoreError } from '@isthmus/core'
import { failureText, send, withRetries, type HttpPolicy, type HttpResponse } from '../http.js'
import { urlSecrets, type Redactor } from '../secrets.js'
import * as K from './Keystone.js'

/** Keystone password credentials. @category model */
export interface KeystoneAuth {
  readonly kind: 'keystone'
  /** OS_AUTH_URL, version path included: `http://host:5000/v2.0` or `http://host:5000/v3`. */
  readonly url: string
  readonly version: 'v2' | 'v3'
  readonly username: string
  readonly password: string
  /** The project (v2: tenant) the token is scoped to. */
  readonly project: string
  /** v3 only; `Default` when absent. */
  readonly userDomain?: string
  readonly projectDomain?: string
}

/** No authentication (`AuthMethod=noauth`). @category model */
export interface NoAuth {
  readonly kind: 'none'
}

/** @category model */
export type Auth = KeystoneAuth | NoAuth

/** Where request tokens come from. @category ports */
export interface TokenSource {
  /** The token to send, or undefined without authentication. */
  readonly token: () => TE.TaskEither<CoreError, string | undefined>
  /** The API refused `token` (401): the next `token()` fetches a new one. */
  readonly invalidate: (token: string) => void
}

const OP = 'authenticate with keystone'

interface Issued {
  readonly token: string
  /** When to fetch a new one: half-way between issue and expiry. */
  readonly refreshAt: number
}

const refreshAt = (now: number, issued: string | undefined, expires: string | undefined): number => {
  const exp = expires === undefined ? NaN : Date.parse(expires)
  if (Number.isNaN(exp)) return Number.POSITIVE_INFINITY
  const iss = issued === undefined || Number.isNaN(Date.parse(issued)) ? now : Date.parse(issued)
  return iss + (exp - iss) / 2
}

const requestOf = (a: KeystoneAuth): { path: string; body: unknown } => {
  if (a.version === 'v2') {
    const body: K.V2PasswordAuth = {
      auth: { tenantName: a.project, passwordCredentials: { username: a.username, password: a.password } }
    }
    return { path: '/tokens', body: K.V2PasswordAuth.encode(body) }
  }
  const body: K.V3PasswordAuth = {
    auth: {
      identity: {
        methods: ['password'],
        password: { user: { name: a.username, domain: { name: a.userDomain ?? 'Default' }, password: a.password } }
      },
      scope: { project: { name: a.project, domain: { name: a.projectDomain ?? 'Default' } } }
    }
  }
  return { path: '/auth/tokens', body: K.V3PasswordAuth.encode(body) }
}

// v2.0: the token is in the body.
const issuedV2 = (res: HttpResponse, at: number, secrets: Redactor): E.Either<CoreError, Issued> =>
  pipe(
    decodeWith(K.V2TokenResponse, 'keystone v2 token response')(res.json),
    E.map(({ access: { token } }) => {
      secrets.add(token.id)
      return { token: token.id, refreshAt: refreshAt(at, token.issued_at, token.expires) }
    })
  )

// v3: the token is the X-Subject-Token header; the body has its lifetime.
const issuedV3 = (res: HttpResponse, at: number, secrets: Redactor): E.Either<CoreError, Issued> => {
  const header = res.headers.get(K.SUBJECT_TOKEN)
  if (header === null || header === '') {
    return E.left(controller(OP, res.status, 'the response carries no X-Subject-Token header'))
  }
  secrets.add(header)
  return pipe(
    decodeWith(K.V3TokenResponse, 'keystone v3 token response')(res.json),
    E.map(({ token }) => ({ token: header, refreshAt: refreshAt(at, token.issued_at, token.expires_at) }))
  )
}

/** One token request, retried while keystone does not answer. */
const requestToken = (
  auth: KeystoneAuth,
  policy: HttpPolicy,
  secrets: Redactor,
  now: () => number
): TE.TaskEither<CoreError, Issued> => {
  const { path, body } = requestOf(auth)
  const url = `${auth.url.replace(/\/+$/, '')}${path}`
  return pipe(
    withRetries(policy, () => true, send({ method: 'POST', url, body }, policy.timeoutMs)),
    TE.mapLeft((f) => transient(`keystone at ${auth.url} is ${failureText(f)}`)),
    TE.filterOrElse(
      (res) => res.status === 200 || res.status === 201,
      (res) => controller(OP, res.status, secrets.body(res.text))
    ),
    TE.chainEitherK((res) => (auth.version === 'v2' ? issuedV2 : issuedV3)(res, now(), secrets))
  )
}

/**
 * A TokenSource for `auth`. Every token it obtains is added to `secrets`, so that no later error
 * text or log line can carry it.
 *
 * @category constructors
 */
export const tokenSource = (
  auth: Auth,
  policy: HttpPolicy,
  secrets: Redactor,
  now: () => number = Date.now
): TokenSource => {
  if (auth.kind === 'none') return { token: () => TE.right(undefined), invalidate: () => undefined }
  secrets.add(auth.password)
  urlSecrets(auth.url).forEach(secrets.add)
  let current: Issued | undefined
  const fresh = pipe(
    requestToken(auth, policy, secrets, now),
    TE.map((issued) => {
      current = issued
      return issued.token
    })
  )
  // Concurrent callers share the request in flight.
  let pending: Promise<E.Either<CoreError, string>> | undefined
  const shared: TE.TaskEither<CoreError, string> = () => {
    pending ??= fresh().finally(() => {
      pending = undefined
    })
    return pending
  }
  return {
    // Checked when the task runs, not when it is made: a task may wait in a retry loop.
    token: () => () => (current !== undefined && now() < current.refreshAt ? TE.right(current.token)() : shared()),
    invalidate: (token) => {
      if (current?.token === token) current = undefined
    }
  }
}
