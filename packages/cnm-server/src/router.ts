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

/** An express app answering `routes` at `/<Api>.<Method>`. */
export const buildApp = (routes: ReadonlyArray<Route>, log: Logger, options: AppOptions = {}): express.Express => {
  const app = express()
  app.disable('x-powered-by')
  const observe = (r: RequestRecord): void => {
    try {
      options.onRequest?.(r)
    } catch {
      // an observer's failure must not fail the call it observes
    }
  }
  const known = new Set(routes.map((r) => `/${r.api}.${r.method}`))
  const since = (started: bigint) => Math.round((Number(process.hrtime.bigint() - started) / 1e6) * 100) / 100
  // Stamped before the body is parsed, so a malformed body's reply has a duration too.
  app.use((_req: Request, res: Response, next: NextFunction) => {
    res.locals['started'] = process.hrtime.bigint()
    next()
  })
  // dockerd sends no Content-Type, so parse every body as JSON; argument-less calls send none.
  app.use(express.json({ type: () => true, limit: '1mb', strict: false }))

  for (const r of routes) {
    const path = `/${r.api}.${r.method}`
    const answer = (body: unknown, res: Response) => {
      const started = res.locals['started'] as bigint
      void r
        .handle(body)()
        .then((result) => {
          const fields = { op: path.slice(1), ...idsOf(body), durationMs: since(started) }
          observe({ op: fields.op, outcome: E.isRight(result) ? 'ok' : 'error', durationMs: fields.durationMs })
          if (E.isRight(result)) {
            log.info('request', { ...fields, outcome: 'ok' })
            log.debug('payload', { op: fields.op, request: body, response: result.right })
            res.status(200).type(CONTENT_TYPE).json(result.right)
          } else {
            const reply = errorReply(r.api, result.left)
            log.info('request', { ...fields, outcome: 'error', error: result.left._tag, detail: describe(result.left) })
            log.debug('payload', { op: fields.op, request: body, response: reply.body })
            res.status(reply.status).type(CONTENT_TYPE).json(reply.body)
          }
        })
    }
    app.post(path, (req: Request, res: Response) => answer(req.body === undefined ? {} : req.body, res))
    if (r.allowGet === true) app.get(path, (req: Request, res: Response) => answer({ ...req.query }, res))
  }

  app.use((req: Request, res: Response) => {
    observe({ op: undefined, outcome: 'not-implemented', durationMs: since(res.locals['started'] as bigint) })
    log.info('request', { op: req.path.slice(1), outcome: 'not-implemented' })
    res.status(404).type(CONTENT_TYPE).json({ Err: `${req.method} ${req.path} is not implemented` })
  })

  // Malformed JSON (body-parser) and anything else thrown before a handler: one {"Err"} reply.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const message = err instanceof Error ? err.message : String(err)
    const api = (req.path.slice(1).split('.')[0] ?? 'Plugin') as Api
    const reply = errorReply(api, decodeFailure(`${req.path.slice(1)} request`, [`body: ${message}`]))
    observe({ op: known.has(req.path) ? req.path.slice(1) : undefined, outcome: 'error', durationMs: since(res.locals['started'] as bigint) })
    log.info('request', { op: req.path.slice(1), outcome: 'error', error: 'DecodeFailure', detail: message })
    res.status(reply.status).type(CONTENT_TYPE).json(reply.body)
  })
  return app
}
