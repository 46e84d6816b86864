/**
 * The Contrail VNC config API client (contrail-hns-agent.md §2): generic object operations over
 * HTTP with keystone tokens. Every response is decoded with the codecs of `Objects.ts`; every
 * status other than success becomes `Controller(op, status, body)` with the status as a number,
 * so callers decide on 404 and 409 by number, never by message text (the Go driver's mistake).
 *
 * Transient failures (no answer, timeout, 500/502/503/504) are retried with back-off. A create
 * retried after the server committed it answers 409: the callers treat 409 on create as "look it
 * up by name", which makes every create safe to retry.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type * as t from 'io-ts'
import { retrying } from 'retry-ts/lib/Task.js'
import { controller, decodeWith, transient, type CoreError, type Logger } from '@isthmus/core'
import { DEFAULT_HTTP_POLICY, failureText, retryPolicy, send, type HttpFailure, type HttpPolicy, type HttpRequest, type HttpResponse } from '../http.js'
import { redactor, urlSecrets, type Redactor } from '../secrets.js'
import { tokenSource, type Auth, type TokenSource } from './tokens.js'
import { AUTH_TOKEN } from './Keystone.js'
import * as O from './Objects.js'

/** @category model */
export interface ConfigApiOptions {
  /** The API's base URL, `http://<host>:8082`. */
  readonly url: string
  readonly auth: Auth
  readonly policy?: HttpPolicy
  /** Request lines at debug (method, path, status, duration); never headers or bodies. */
  readonly log?: Logger
  /** For token lifetimes; Date.now by default. */
  readonly now?: () => number
}

/** Query parameters of a read or list. @category model */
export interface ReadQuery {
  readonly fields?: ReadonlyArray<string>
  readonly excludeBackRefs?: boolean
  readonly excludeChildren?: boolean
  readonly parentId?: string
  readonly detail?: boolean
}

/** @category ports */
export interface ConfigApi {
  /** POST /fqname-to-id; an unknown name fails with Controller status 404. */
  readonly fqNameToId: (type: O.ObjectType, fqName: ReadonlyArray<string>) => TE.TaskEither<CoreError, string>
  /** GET /<type>/<uuid>, decoded with `codec`. */
  readonly read: <A>(
    type: O.ObjectType,
    uuid: string,
    codec: t.Type<A, unknown, unknown>,
    query?: ReadQuery
  ) => TE.TaskEither<CoreError, A>
  /** POST /<type>s; answers the short envelope only. */
  readonly create: (type: O.ObjectType, body: unknown) => TE.TaskEither<CoreError, O.Created>
  /** DELETE /<type>/<uuid>; 404 counts as done. */
  readonly remove: (type: O.ObjectType, uuid: string) => TE.TaskEither<CoreError, void>
  /** POST /ref-update. */
  readonly refUpdate: (req: O.RefUpdateRequest) => TE.TaskEither<CoreError, void>
  /** GET /<type>s?detail=true[&parent_id=…]: every object, decoded with `codec`. */
  readonly list: <A>(
    type: O.ObjectType,
    codec: t.Type<A, unknown, unknown>,
    query?: ReadQuery
  ) => TE.TaskEither<CoreError, ReadonlyArray<A>>
  /** Blank every secret this client knows out of `text` (for callers' own messages). */
  readonly redact: (text: string) => string
}

const TRANSIENT_STATUS = new Set([500, 502, 503, 504])

/** Whether a Controller error is worth trying again later. @category utils */
export const isTransientStatus = (status: number): boolean => TRANSIENT_STATUS.has(status)

/** Whether an error is the controller saying "no such object". @category utils */
export const isControllerNotFound = (e: CoreError): boolean => e._tag === 'Controller' && e.status === 404
/** Whether an error is the controller saying "conflict" (name taken, address in use, still referred). @category utils */
export const isConflict = (e: CoreError): boolean => e._tag === 'Controller' && e.status === 409

const queryString = (q: ReadQuery | undefined): string => {
  if (q === undefined) return ''
  const p = new URLSearchParams()
  if (q.fields !== undefined && q.fields.length > 0) p.set('fields', q.fields.join(','))
  if (q.excludeBackRefs === true) p.set('exclude_back_refs', 'true')
  if (q.excludeChildren === true) p.set('exclude_children', 'true')
  if (q.parentId !== undefined) p.set('parent_id', q.parentId)
  if (q.detail === true) p.set('detail', 'true')
  const s = p.toString()
  return s === '' ? '' : `?${s}`
}

type Outcome = E.Either<HttpFailure, HttpResponse>

/**
 * A config API client.
 *
 * @category constructors
 */
export const configApi = (options: ConfigApiOptions): ConfigApi => {
  const policy = options.policy ?? DEFAULT_HTTP_POLICY
  const base = options.url.replace(/\/+$/, '')
  const secrets: Redactor = redactor(urlSecrets(options.url))
  const tokens: TokenSource = tokenSource(options.auth, policy, secrets, options.now)

  // One attempt with the current token; on 401, one more with a fresh token.
  const attempt = (method: HttpRequest['method'], path: string, body: unknown) => async (): Promise<E.Either<CoreError, Outcome>> => {
    const once = async (): Promise<E.Either<CoreError, { token: string | undefined; out: Outcome }>> => {
      const tok = await tokens.token()()
      if (E.isLeft(tok)) return tok
      const started = Date.now()
      const out = await send(
        {
          method,
          url: `${base}${path}`,
          ...(tok.right === undefined ? {} : { headers: { [AUTH_TOKEN]: tok.right } }),
          ...(body === undefined ? {} : { body })
        },
        policy.timeoutMs
      )()
      options.log?.debug('contrail config api', {
        method,
        path,
        status: E.isRight(out) ? out.right.status : out.left._tag,
        durationMs: Date.now() - started
      })
      return E.right({ token: tok.right, out })
    }
    const first = await once()
    if (E.isLeft(first)) return first
    const { token, out } = first.right
    if (token === undefined || E.isLeft(out) || out.right.status !== 401) return E.right(out)
    tokens.invalidate(token)
    const second = await once()
    return E.isLeft(second) ? second : E.right(second.right.out)
  }

  const request = (
    op: string,
    method: HttpRequest['method'],
    path: string,
    body?: unknown
  ): TE.TaskEither<CoreError, HttpResponse> =>
    pipe(
      retrying(
        retryPolicy(policy),
        () => attempt(method, path, body),
        (r) => E.isRight(r) && (E.isLeft(r.right) || isTransientStatus(r.right.right.status))
      ),
      TE.chain((out) => {
        if (E.isLeft(out)) return TE.left(transient(`Contrail config API at ${base} ${failureText(out.left)} during ${op}`))
        const res = out.right
        if (res.status >= 200 && res.status < 300) return TE.right(res)
        return TE.left(controller(op, res.status, secrets.body(res.text)))
      })
    )

  const decoded = <A>(codec: t.Type<A, unknown, unknown>, what: string) => (res: HttpResponse) =>
    TE.fromEither(decodeWith(codec, what)(res.json))

  const fqNameToId: ConfigApi['fqNameToId'] = (type, fqName) => {
    const body = O.FqNameToIdRequest.encode({ type, fq_name: [...fqName] })
    return pipe(
      request(`look up ${type} ${fqName.join(':')}`, 'POST', '/fqname-to-id', body),
      TE.chain(decoded(O.FqNameToIdResponse, 'fqname-to-id response')),
      TE.map((r) => r.uuid)
    )
  }

  const read: ConfigApi['read'] = (type, uuid, codec, query) =>
    pipe(
      request(`read ${type} ${uuid}`, 'GET', `/${type}/${encodeURIComponent(uuid)}${queryString(query)}`),
      TE.chain(decoded(O.envelope(type, codec), `${type} ${uuid}`)),
      TE.map((env) => env[type] as never)
    )

  const create: ConfigApi['create'] = (type, body) => {
    const fq = (body as { fq_name?: ReadonlyArray<string> }).fq_name ?? []
    return pipe(
      request(`create ${type} ${fq.join(':')}`, 'POST', `/${type}s`, { [type]: body }),
      TE.chain(decoded(O.envelope(type, O.Created), `created ${type}`)),
      TE.map((env) => env[type] as O.Created)
    )
  }

  const remove: ConfigApi['remove'] = (type, uuid) =>
    pipe(
      request(`delete ${type} ${uuid}`, 'DELETE', `/${type}/${encodeURIComponent(uuid)}`),
      TE.map(() => undefined),
      TE.orElse((e) => (isControllerNotFound(e) ? TE.right(undefined) : TE.left(e)))
    )

  const refUpdate: ConfigApi['refUpdate'] = (req) =>
    pipe(
      request(
        `${req.operation === 'ADD' ? 'add' : 'remove'} ${req['ref-type']} reference on ${req.type} ${req.uuid}`,
        'POST',
        '/ref-update',
        O.RefUpdateRequest.encode(req)
      ),
      TE.chain(decoded(O.RefUpdateResponse, 'ref-update response')),
      TE.map(() => undefined)
    )

  const list: ConfigApi['list'] = (type, codec, query) =>
    pipe(
      request(`list ${type}s`, 'GET', `/${type}s${queryString({ ...query, detail: true })}`),
      TE.chain(decoded(O.detailList(type, codec), `${type} list`)),
      TE.map((l) => ((l[`${type}s`] ?? []) as ReadonlyArray<Record<string, unknown>>).map((e) => e[type] as never))
    )

  return { fqNameToId, read, create, remove, refUpdate, list, redact: secrets.redact }
}
