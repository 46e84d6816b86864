/**
 * The plugin's HTTP surface: one route table, one generic `route` that decodes the body with the
 * method's codec (400 on failure), runs the handler, and answers JSON or the mapped error; a
 * catch-all 404 so dockerd can tell an unimplemented method (libnetwork remote.md).
 */
import express, { type NextFunction, type Request, type Response } from 'express'
import * as E from 'fp-ts/lib/Either.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import type * as t from 'io-ts'
import { decodeFailure, decodeWith, describe, type CoreError, type Logger } from '@isthmus/core'
import { errorReply, type Api } from './reply.js'

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
}

/** Build a Route from a codec and a handler of the decoded request. */
export const route = <A>(
  api: Api,
  method: string,
  codec: t.Type<A, unknown, unknown>,
  handler: (req: A) => TE.TaskEither<CoreError, object>
): Route => ({
  api,
  method,
  handle: (body) => {
    const decoded = decodeWith(codec, `${api}.${method} request`)(body)
    return E.isLeft(decoded) ? () => Promise.resolve(decoded) : handler(decoded.right)
  }
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
    if (typeof b[wire] === 'string' && b[wire] !== '') out[field] = b[wire]
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

/** An express app answering `routes` at `/<Api>.<Method>`. */
export const buildApp = (routes: ReadonlyArray<Route>, log: Logger, options: AppOptions = {}): express.Express => {
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
  // Stamped before the body is parsed, so a malformed body's reply has a duration too.
  app.use((_req: Request, res: Response, next: NextFunction) => {
    res.locals['started'] = process.hrtime.bigint()
    next()
  })
  // dockerd sends no Content-Type, so parse every body as JSON; argument-less calls send none.
  app.use(express.json({ type: () => true, limit: '1mb', strict: false }))

  // The reply goes out first; the log line and the observer run after it, off dockerd's wait.
  const answer = (r: Route, op: string, body: unknown, res: Response) => {
    const started = res.locals['started'] as bigint
    void r
      .handle(body)()
      .then((result) => {
        const durationMs = since(started)
        if (E.isRight(result)) {
          sendJson(res, 200, result.right)
          observe({ op, outcome: 'ok', durationMs })
          log.info('request', { op, ...idsOf(body), durationMs, outcome: 'ok' })
          log.debug('payload', { op, request: body, response: result.right })
        } else {
          const reply = errorReply(r.api, result.left)
          sendJson(res, reply.status, reply.body)
          observe({ op, outcome: 'error', durationMs })
          log.info('request', { op, ...idsOf(body), durationMs, outcome: 'error', error: result.left._tag, detail: describe(result.left) })
          log.debug('payload', { op, request: body, response: reply.body })
        }
      })
  }

  // One lookup per request rather than a router layer per method, each matched in turn.
  const table = new Map(routes.map((r) => [`/${r.api}.${r.method}`, r]))
  app.use((req: Request, res: Response, next: NextFunction) => {
    const r = table.get(req.path)
    if (r !== undefined && req.method === 'POST') return answer(r, req.path.slice(1), req.body === undefined ? {} : req.body, res)
    if (r !== undefined && req.method === 'GET' && r.allowGet === true) return answer(r, req.path.slice(1), { ...req.query }, res)
    next()
  })

  app.use((req: Request, res: Response) => {
    const durationMs = since(res.locals['started'] as bigint)
    sendJson(res, 404, { Err: `${req.method} ${req.path} is not implemented` })
    observe({ op: undefined, outcome: 'not-implemented', durationMs })
    log.info('request', { op: req.path.slice(1), durationMs, outcome: 'not-implemented' })
  })

  // Malformed JSON (body-parser) and anything else thrown before a handler: one {"Err"} reply.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const message = err instanceof Error ? err.message : String(err)
    const api = (req.path.slice(1).split('.')[0] ?? 'Plugin') as Api
    const reply = errorReply(api, decodeFailure(`${req.path.slice(1)} request`, [`body: ${message}`]))
    const durationMs = since(res.locals['started'] as bigint)
    sendJson(res, reply.status, reply.body)
    observe({ op: table.has(req.path) ? req.path.slice(1) : undefined, outcome: 'error', durationMs })
    log.info('request', { op: req.path.slice(1), durationMs, outcome: 'error', error: 'DecodeFailure', detail: message })
  })
  return app
}
