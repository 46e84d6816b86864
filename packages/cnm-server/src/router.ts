/**
 * The plugin's HTTP surface: one route table, one generic `route` that decodes the body with the
 * method's codec (400 on failure), runs the handler, and answers JSON or the mapped error; a
 * catch-all 404 so dockerd can tell an unimplemented method (libnetwork remote.md). Every
 * failure, a body out of bounds or a handler that throws included, is answered in the protocol's
 * own form (`{"Err"}`, plus `Error` for IpamDriver), never with a stack trace.
 */
import express, { type NextFunction, type Request, type Response } from 'express'
import * as E from 'fp-ts/lib/Either.js'
import { identity, pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import type * as t from 'io-ts'
import { decodeFailure, decodeWith, describe, report, type CoreError, type Logger } from '@isthmus/core'
import { BODY_LIMITS, bodyErrorText, boundedJson, type BodyLimits } from './body.js'
import { refusedField } from './protocol/common.js'
import { bugReply, bugText, errorReply, failureReply, type Api } from './reply.js'

/** One RPC: its path, request codec and handler. */
export interface Route {
  readonly api: Api
  readonly method: string
  readonly handle: (body: unknown) => TE.TaskEither<CoreError, object>
  /** Also answer GET, with the query parameters as the request (inspection, for curl). */
  readonly allowGet?: boolean
}

/** What the router tells an observer of each answered request (metrics). */
export interface RequestRecord {
  /** `<Api>.<Method>` of a route; undefined for a path no route serves (it could be anything). */
  readonly op: string | undefined
  readonly outcome: 'ok' | 'error' | 'not-implemented'
  readonly durationMs: number
}

/** @category model */
export interface AppOptions {
  /** Called once per request, at the point it is logged. */
  readonly onRequest?: (r: RequestRecord) => void
  /** How big and how deep a body may be; default BODY_LIMITS. */
  readonly bodyLimits?: BodyLimits
}

/**
 * Decode a request, once. A malformed request is `invalid <Api>.<Method> request: …` with every
 * bad field; a well-formed one with a typed field its codec refused is `invalid <field>: …` for
 * one such field, the first by rank (protocol/common.ts, IdField).
 */
export const decodeRequest =
  <A>(codec: t.Type<A, unknown>, what: string) =>
  (body: unknown): E.Either<CoreError, A> =>
    pipe(
      codec.decode(body),
      E.mapLeft((errors): CoreError => {
        const malformed = errors.filter((e) => refusedField(e) === undefined)
        const refused = errors.flatMap((e) => {
          const field = refusedField(e)
          return field === undefined ? [] : [{ field, value: e.value }]
        })
        const first = refused.reduce<(typeof refused)[number] | undefined>(
          (a, r) => (a === undefined || r.field.rank < a.field.rank ? r : a),
          undefined
        )
        if (malformed.length > 0 || first === undefined) return decodeFailure(what, report(malformed))
        return pipe(
          decodeWith(first.field.codec, first.field.what)(first.value),
          E.fold(identity, () => decodeFailure(what, report(errors)))
        )
      })
    )

/** Build a Route from a codec and a handler of the decoded request. */
export const route = <A>(
  api: Api,
  method: string,
  codec: t.Type<A, unknown>,
  handler: (req: A) => TE.TaskEither<CoreError, object>
): Route => ({
  api,
  method,
  handle: (body) => pipe(TE.fromEither(decodeRequest(codec, `${api}.${method} request`)(body)), TE.chain(handler))
})

// The ids worth a log line; never whole options (they may hold anything the user typed).
const idsOf = (body: unknown): Record<string, unknown> => {
  if (typeof body !== 'object' || body === null) return {}
  const b = body as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (const [wire, field] of [
    ['NetworkID', 'networkId'],
    ['EndpointID', 'endpointId'],
    ['PoolID', 'poolId'],
    ['Pool', 'pool'],
    ['Address', 'address'],
    ['SandboxKey', 'sandboxKey']
  ] as const) {
    // cut: a field of the wrong length is still worth naming, not worth 200 KB of log line
    if (typeof b[wire] === 'string' && b[wire] !== '') out[field] = b[wire].slice(0, 256)
  }
  return out
}

/** The media type of every reply: Docker plugin API 1.2. */
export const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json'

/**
 * Write a JSON reply. Straight onto the response rather than `res.json`: that one also hashes the
 * body for an ETag and parses and rebuilds the Content-Type, on each of the ten calls dockerd
 * waits for per container start.
 */
const sendJson = (res: Response, status: number, body: object): void => {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'Content-Type': CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) })
  res.end(text)
}

const apiOf = (path: string): Api =>
  path.startsWith('/IpamDriver.') ? 'IpamDriver' : path.startsWith('/NetworkDriver.') ? 'NetworkDriver' : 'Plugin'

/** An express app answering `routes` at `/<Api>.<Method>`. */
export const buildApp = (routes: ReadonlyArray<Route>, log: Logger, options: AppOptions = {}): express.Express => {
  const limits = options.bodyLimits ?? BODY_LIMITS
  const app = express()
  app.disable('x-powered-by')
  app.disable('etag')
  const observe = (r: RequestRecord): void => {
    try {
      options.onRequest?.(r)
    } catch {
      // an observer's failure must not fail the call it observes
    }
  }
  const since = (started: bigint) => Math.round((Number(process.hrtime.bigint() - started) / 1e6) * 100) / 100
  // A reply once: a client gone or a reply already sent leaves nothing to do.
  const reply = (res: Response, status: number, body: object): void => {
    if (!res.headersSent && !res.destroyed) sendJson(res, status, body)
  }
  // Stamped before the body is read, so a refused body's reply has a duration too.
  app.use((_req: Request, res: Response, next: NextFunction) => {
    res.locals['started'] = process.hrtime.bigint()
    next()
  })
  // One lookup per request rather than a router layer per method, each matched in turn.
  const table = new Map(routes.map((r) => [`/${r.api}.${r.method}`, r]))
  // Only a method's body is read: a path no method serves is a 404 whatever its body. Size and
  // depth are checked on the raw bytes before the JSON is parsed (body.ts).
  const readBody = boundedJson(limits)
  app.use((req: Request, res: Response, next: NextFunction) =>
    table.has(req.path) ? readBody(req, res, next) : next()
  )

  // A handler that throws or rejects is a bug: its stack goes to the log, the caller gets one
  // sentence in the protocol's own form, and the daemon goes on serving.
  const failed = (r: Route, op: string, body: unknown, res: Response, e: unknown): void => {
    // after the reply, only its log line failed: the call itself was answered and counted
    const answered = res.headersSent
    const answer = bugReply(r.api, op)
    reply(res, answer.status, answer.body)
    if (!answered) observe({ op, outcome: 'error', durationMs: since(res.locals['started'] as bigint) })
    log.error('bug: a handler failed', { op, ...idsOf(body), stack: bugText(e) })
  }

  // The reply goes out first; the log line and the observer run after it, off dockerd's wait.
  const answer = async (r: Route, op: string, body: unknown, res: Response): Promise<void> => {
    const started = res.locals['started'] as bigint
    let result: E.Either<CoreError, object>
    try {
      result = await r.handle(body)()
    } catch (e) {
      return failed(r, op, body, res, e)
    }
    const durationMs = since(started)
    if (E.isRight(result)) {
      reply(res, 200, result.right)
      observe({ op, outcome: 'ok', durationMs })
      log.info('request', { op, ...idsOf(body), durationMs, outcome: 'ok' })
      log.debug('payload', { op, request: body, response: result.right })
    } else {
      const failure = errorReply(r.api, result.left)
      reply(res, failure.status, failure.body)
      observe({ op, outcome: 'error', durationMs })
      log.info('request', {
        op,
        ...idsOf(body),
        durationMs,
        outcome: 'error',
        error: result.left._tag,
        detail: describe(result.left)
      })
      log.debug('payload', { op, request: body, response: failure.body })
    }
  }
  const serve = (r: Route, op: string, body: unknown, res: Response): void => {
    answer(r, op, body, res).catch((e: unknown) => failed(r, op, body, res, e))
  }

  app.use((req: Request, res: Response, next: NextFunction) => {
    const r = table.get(req.path)
    if (r === undefined) return next()
    const op = req.path.slice(1)
    if (req.method === 'POST') return serve(r, op, req.body === undefined ? {} : req.body, res)
    if (req.method === 'GET' && r.allowGet === true) return serve(r, op, { ...req.query }, res)
    // a method that exists, asked the wrong way: not a 404, which dockerd reads as "not implemented"
    const answer = failureReply(
      r.api,
      405,
      `${op} answers POST${r.allowGet === true ? ' and GET' : ''}, not ${req.method}`
    )
    reply(res, answer.status, answer.body)
    observe({ op, outcome: 'error', durationMs: since(res.locals['started'] as bigint) })
  })

  app.use((req: Request, res: Response) => {
    const durationMs = since(res.locals['started'] as bigint)
    reply(res, 404, { Err: `${req.method} ${req.path} is not implemented` })
    observe({ op: undefined, outcome: 'not-implemented', durationMs })
    log.info('request', { op: req.path.slice(1), durationMs, outcome: 'not-implemented' })
  })

  // A body refused before it was parsed (too big, too deep, not JSON): 400 with one sentence.
  // Anything else thrown before a handler is a bug, answered as one.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const api = apiOf(req.path)
    const op = req.path.slice(1)
    const durationMs = since(res.locals['started'] as bigint)
    const observed = table.has(req.path) ? op : undefined
    const why = bodyErrorText(err, limits)
    if (why === undefined) {
      const answer = bugReply(api, op)
      reply(res, answer.status, answer.body)
      observe({ op: observed, outcome: 'error', durationMs })
      log.error('bug: a request failed before its handler', { op, stack: bugText(err) })
      return
    }
    const answer = errorReply(api, decodeFailure(`${op} request`, [why]))
    reply(res, answer.status, answer.body)
    observe({ op: observed, outcome: 'error', durationMs })
    log.info('request', { op, durationMs, outcome: 'error', error: 'DecodeFailure', detail: why })
  })
  return app
}
