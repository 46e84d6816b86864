/**
 * HTTP for the adapters: Node's global fetch with a timeout per attempt (AbortSignal.timeout),
 * JSON in and out, and bounded retries of transient failures through retry-ts. Nothing here
 * knows Contrail or the agent; they decide what a status means.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as T from 'fp-ts/lib/Task.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { causeText, parseJson, type Logger } from '@isthmus/core'
import { capDelay, exponentialBackoff, limitRetries, Monoid, type RetryPolicy } from 'retry-ts'
import { retrying } from 'retry-ts/lib/Task.js'
import { userinfoOf } from './secrets.js'

/** How requests are timed and retried. @category model */
export interface HttpPolicy {
  /** Per attempt, headers and body included. */
  readonly timeoutMs: number
  /** Retries after the first attempt, for transient failures only. */
  readonly retries: number
  /** First back-off delay; doubles each retry, capped at `maxDelayMs`. */
  readonly baseDelayMs: number
  readonly maxDelayMs: number
}

/** @category constants */
export const DEFAULT_HTTP_POLICY: HttpPolicy = { timeoutMs: 10_000, retries: 3, baseDelayMs: 200, maxDelayMs: 2_000 }

/** @category model */
export interface HttpRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  readonly url: string
  readonly headers?: Readonly<Record<string, string>>
  /** Sent as JSON when given. */
  readonly body?: unknown
}

/** @category model */
export interface HttpResponse {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly json: unknown
}

/** The request never got an HTTP answer. @category model */
export type HttpFailure =
  { readonly _tag: 'Unreachable'; readonly detail: string } | { readonly _tag: 'Timeout'; readonly ms: number }

/** @category utils */
export const failureText = (f: HttpFailure): string =>
  f._tag === 'Timeout' ? `no answer within ${f.ms} ms` : `unreachable (${f.detail})`

// A body that is not JSON (an error page, plain text) is still a body: its text is kept.
const jsonOf = (text: string): unknown =>
  text === '' ? undefined : E.getOrElseW(() => undefined)(parseJson('HTTP response body')(text))

// undici wraps the socket error in `cause`; its code (ECONNREFUSED, ECONNRESET) is what says why.
const detailOf = (e: unknown): string => {
  const cause = (e as { cause?: { code?: string; message?: string } } | undefined)?.cause
  return cause?.code ?? cause?.message ?? causeText(e)
}

// The promise edge: one fetch and its whole body.
const exchange = async (req: HttpRequest, signal: AbortSignal): Promise<HttpResponse> => {
  const userinfo = userinfoOf(req.url)
  const res = await fetch(userinfo?.url ?? req.url, {
    method: req.method,
    headers: {
      Accept: 'application/json',
      ...(req.body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...(userinfo === undefined ? {} : { Authorization: `Basic ${userinfo.basic}` }),
      ...req.headers
    },
    ...(req.body === undefined ? {} : { body: JSON.stringify(req.body) }),
    signal
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, text, json: jsonOf(text) }
}

/**
 * One attempt. The timeout covers reading the body too: a server that sends headers and then
 * stalls is as stuck as one that never answers. Userinfo in the URL (`http://user:pass@host`,
 * which fetch refuses) is sent as HTTP Basic authorization, as curl does; callers add it to their
 * `Redactor` (`urlSecrets`).
 *
 * @category utils
 */
export const send = (req: HttpRequest, timeoutMs: number): TE.TaskEither<HttpFailure, HttpResponse> =>
  pipe(
    TE.fromIO(() => AbortSignal.timeout(timeoutMs)),
    TE.chain((signal) =>
      TE.tryCatch(
        () => exchange(req, signal),
        (e): HttpFailure =>
          signal.aborted ? { _tag: 'Timeout', ms: timeoutMs } : { _tag: 'Unreachable', detail: detailOf(e) }
      )
    )
  )

/**
 * `send`, with one debug line per attempt: `msg` with the method, the path (never the URL, which
 * may carry userinfo), the status or why there was none, and the duration. Never headers or bodies.
 *
 * @category utils
 */
export const sendLogged = (
  req: HttpRequest & { readonly path: string },
  timeoutMs: number,
  log: Logger | undefined,
  msg: string
): TE.TaskEither<HttpFailure, HttpResponse> =>
  pipe(
    T.fromIO(() => Date.now()),
    T.chain((started) =>
      pipe(
        send(req, timeoutMs),
        T.tapIO(
          (r) => () =>
            log?.debug(msg, {
              method: req.method,
              path: req.path,
              status: E.isRight(r) ? r.right.status : r.left._tag,
              durationMs: Date.now() - started
            })
        )
      )
    )
  )

/** Exponential back-off from `baseDelayMs`, capped, at most `retries` times. @category utils */
export const retryPolicy = (p: HttpPolicy): RetryPolicy =>
  Monoid.concat(capDelay(p.maxDelayMs, exponentialBackoff(p.baseDelayMs)), limitRetries(p.retries))

/**
 * Run `task` again while it fails with an error `isTransient` accepts, as the policy allows; the
 * last attempt's result is returned.
 *
 * @category utils
 */
export const withRetries = <L, A>(
  p: HttpPolicy,
  isTransient: (e: L) => boolean,
  task: TE.TaskEither<L, A>
): TE.TaskEither<L, A> =>
  retrying(
    retryPolicy(p),
    () => task,
    (r) => E.isLeft(r) && isTransient(r.left)
  )
