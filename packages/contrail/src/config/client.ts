/**
 * The Contrail VNC config API client: generic object operations over HTTP with keystone tokens
 * (docs/contrail.md). Every response is decoded with the codecs of `Objects.ts`; statuses and
 * retries are `request.ts`'s.
 *
 * A create retried after the server committed it answers 409: the callers treat 409 on create as
 * "look it up by name", which makes every create safe to retry.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type * as t from 'io-ts'
import { decodeTask, silentLogger, type CoreError, type Logger } from '@isthmus/core'
import { DEFAULT_HTTP_POLICY, type HttpPolicy, type HttpResponse } from '../http.js'
import { redactor, urlSecrets } from '../secrets.js'
import { tokenSource, type Auth } from './tokens.js'
import * as O from './Objects.js'
import { request, type RequestContext } from './request.js'

export { isTransientStatus } from './request.js'

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
    codec: t.Type<A, unknown>,
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
    codec: t.Type<A, unknown>,
    query?: ReadQuery
  ) => TE.TaskEither<CoreError, ReadonlyArray<A>>
  /** Blank every secret this client knows out of `text` (for callers' own messages). */
  readonly redact: (text: string) => string
  /** The logger of the options (silent without one): what is built on this client logs there too. */
  readonly log: Logger
}

/** Whether an error is the controller saying "no such object". @category utils */
export const isControllerNotFound = (e: CoreError): boolean => e._tag === 'Controller' && e.status === 404
/**
 * Whether an error is the controller saying "conflict" (name taken, address in use, still referred).
 *
 * @category utils
 */
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

type Call = (
  op: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown
) => TE.TaskEither<CoreError, HttpResponse>

const decoded =
  <A>(codec: t.Type<A, unknown>, what: string) =>
  (res: HttpResponse): TE.TaskEither<CoreError, A> =>
    decodeTask(codec, what)(res.json)

// The operations, each over the one `call` of its client.

const fqNameToIdOver =
  (call: Call): ConfigApi['fqNameToId'] =>
  (type, fqName) =>
    pipe(
      call(
        `look up ${type} ${fqName.join(':')}`,
        'POST',
        '/fqname-to-id',
        O.FqNameToIdRequest.encode({ type, fq_name: [...fqName] })
      ),
      TE.chain(decoded(O.FqNameToIdResponse, 'fqname-to-id response')),
      TE.map((r) => r.uuid)
    )

const readOver =
  (call: Call): ConfigApi['read'] =>
  (type, uuid, codec, query) =>
    pipe(
      call(`read ${type} ${uuid}`, 'GET', `/${type}/${encodeURIComponent(uuid)}${queryString(query)}`),
      TE.chain(decoded(O.envelope(type, codec), `${type} ${uuid}`)),
      TE.map((env) => env[type] as never)
    )

const createOver =
  (call: Call): ConfigApi['create'] =>
  (type, body) => {
    const fq = (body as { fq_name?: ReadonlyArray<string> }).fq_name ?? []
    return pipe(
      call(`create ${type} ${fq.join(':')}`, 'POST', `/${type}s`, { [type]: body }),
      TE.chain(decoded(O.envelope(type, O.Created), `created ${type}`)),
      TE.map((env) => env[type] as O.Created)
    )
  }

const removeOver =
  (call: Call): ConfigApi['remove'] =>
  (type, uuid) =>
    pipe(
      call(`delete ${type} ${uuid}`, 'DELETE', `/${type}/${encodeURIComponent(uuid)}`),
      TE.map(() => undefined),
      TE.orElse((e) => (isControllerNotFound(e) ? TE.right(undefined) : TE.left(e)))
    )

const refUpdateOver =
  (call: Call): ConfigApi['refUpdate'] =>
  (req) =>
    pipe(
      call(refUpdateOp(req), 'POST', '/ref-update', O.RefUpdateRequest.encode(req)),
      TE.chain(decoded(O.RefUpdateResponse, 'ref-update response')),
      TE.map(() => undefined)
    )

const listOver =
  (call: Call): ConfigApi['list'] =>
  (type, codec, query) =>
    pipe(
      call(`list ${type}s`, 'GET', `/${type}s${queryString({ ...query, detail: true })}`),
      TE.chain(decoded(O.detailList(type, codec), `${type} list`)),
      TE.map((l) => ((l[`${type}s`] ?? []) as ReadonlyArray<Record<string, unknown>>).map((e) => e[type] as never))
    )

/**
 * A config API client.
 *
 * @category constructors
 */
export const configApi = (options: ConfigApiOptions): ConfigApi => {
  const policy = options.policy ?? DEFAULT_HTTP_POLICY
  const secrets = redactor(urlSecrets(options.url))
  const ctx: RequestContext = {
    base: options.url.replace(/\/+$/, ''),
    policy,
    secrets,
    tokens: tokenSource(options.auth, policy, secrets, options.now),
    log: options.log ?? silentLogger
  }
  const call: Call = (op, method, path, body) => request(ctx, op, method, path, body)
  return {
    fqNameToId: fqNameToIdOver(call),
    read: readOver(call),
    create: createOver(call),
    remove: removeOver(call),
    refUpdate: refUpdateOver(call),
    list: listOver(call),
    redact: secrets.redact,
    log: ctx.log
  }
}

const refUpdateOp = (req: O.RefUpdateRequest): string =>
  `${req.operation === 'ADD' ? 'add' : 'remove'} ${req['ref-type']} reference on ${req.type} ${req.uuid}`
