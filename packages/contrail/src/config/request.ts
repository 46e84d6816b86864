/**
 * One config API request: a keystone token on every attempt, one fresh token after a 401, bounded
 * retries of what is transient, and every status other than success as `Controller(op, status,
 * body)` with the status a number, so callers decide on 404 and 409 by number, never by message
 * text (the Go driver's mistake).
 */
import * as E from 'fp-ts/lib/Either.js'
import * as T from 'fp-ts/lib/Task.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { retrying } from 'retry-ts/lib/Task.js'
import { controller, transient, type CoreError, type Logger } from '@isthmus/core'
import {
  failureText,
  retryPolicy,
  sendLogged,
  type HttpFailure,
  type HttpPolicy,
  type HttpRequest,
  type HttpResponse
} from '../http.js'
import type { Redactor } from '../secrets.js'
import { AUTH_TOKEN } from './Keystone.js'
import type { TokenSource } from './tokens.js'

const TRANSIENT_STATUS = new Set([500, 502, 503, 504])

/** Whether a Controller error is worth trying again later. @category utils */
export const isTransientStatus = (status: number): boolean => TRANSIENT_STATUS.has(status)

/** What a request needs from its client. */
export interface RequestContext {
  /** The API's base URL, without a trailing slash. */
  readonly base: string
  readonly policy: HttpPolicy
  readonly tokens: TokenSource
  readonly secrets: Redactor
  readonly log: Logger
}

/** An HTTP answer, or why there was none: what the retry loop looks at. */
type Outcome = E.Either<HttpFailure, HttpResponse>

interface Sent {
  readonly token: string | undefined
  readonly out: Outcome
}

// One attempt with the current token; no answer is an Outcome, not a failure, so it can be retried.
const once = (
  ctx: RequestContext,
  method: HttpRequest['method'],
  path: string,
  body: unknown
): TE.TaskEither<CoreError, Sent> =>
  pipe(
    ctx.tokens.token(),
    TE.chain((token) =>
      pipe(
        sendLogged(
          {
            method,
            url: `${ctx.base}${path}`,
            path,
            ...(token === undefined ? {} : { headers: { [AUTH_TOKEN]: token } }),
            ...(body === undefined ? {} : { body })
          },
          ctx.policy.timeoutMs,
          ctx.log,
          'contrail config api'
        ),
        T.map((out): E.Either<CoreError, Sent> => E.right({ token, out }))
      )
    )
  )

// On 401, one more attempt with a fresh token.
const attempt = (
  ctx: RequestContext,
  method: HttpRequest['method'],
  path: string,
  body: unknown
): TE.TaskEither<CoreError, Outcome> =>
  pipe(
    once(ctx, method, path, body),
    TE.chain(({ token, out }) =>
      token !== undefined && E.isRight(out) && out.right.status === 401
        ? pipe(
            TE.fromIO(() => ctx.tokens.invalidate(token)),
            TE.chain(() => once(ctx, method, path, body)),
            TE.map((second) => second.out)
          )
        : TE.right(out)
    )
  )

/**
 * `method path` for the operation `op` (the words of its error sentence). Transient failures (no
 * answer, timeout, 500/502/503/504) are retried with back-off; what is left is `Transient` (no
 * answer) or `Controller` (a status).
 *
 * @category utils
 */
export const request = (
  ctx: RequestContext,
  op: string,
  method: HttpRequest['method'],
  path: string,
  body?: unknown
): TE.TaskEither<CoreError, HttpResponse> =>
  pipe(
    retrying(
      retryPolicy(ctx.policy),
      () => attempt(ctx, method, path, body),
      (r) => E.isRight(r) && (E.isLeft(r.right) || isTransientStatus(r.right.right.status))
    ),
    TE.chain(
      E.match(
        (f) => TE.left(transient(`Contrail config API at ${ctx.base} ${failureText(f)} during ${op}`)),
        (res) =>
          res.status >= 200 && res.status < 300
            ? TE.right(res)
            : TE.left(controller(op, res.status, ctx.secrets.body(res.text)))
      )
    )
  )
