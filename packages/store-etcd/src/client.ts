/**
 * One etcd client and the one way this package calls it: every call has a deadline, given to gRPC
 * and enforced again around the promise (the client may wait for an auth token or a connection
 * first), and every failure becomes a `CoreError` that names etcd's endpoints and never a password.
 *
 * The etcd3 client's own fault handling is switched off: its default retries a failed call up to
 * three times (a transaction whose answer was lost would run twice) and opens a circuit breaker
 * for 5 s after three failures (calls would keep failing after etcd is back). A caller of the
 * ports retries instead: a `Transient` is CNI code 11, "try again".
 */
import { readFile } from 'node:fs/promises'
import { noop } from 'cockatiel'
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import {
  Etcd3,
  EtcdAuthenticationFailedError,
  EtcdPermissionDeniedError,
  GRPCCancelledError,
  GRPCDeadlineExceededError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
  ClientClosedError,
  type IOptions
} from 'etcd3'
import { causeText, invalidConfig, io, transient, type CoreError } from '@isthmus/core'
import type { Resolved } from './settings.js'

/** @category model */
export interface Etcd {
  readonly client: Etcd3
  readonly settings: Resolved
  /**
   * Run one etcd call within the deadline; `op` says what it was for in an error that is not a
   * plain outage (`reading endpoint ep-1`).
   */
  readonly call: <A>(op: string, f: (options: CallOptions) => Promise<A>) => TE.TaskEither<CoreError, A>
  /** The sentence of an outage: `the cluster store (etcd at …) did not answer within 2 s: <cause>`. */
  readonly outage: (cause: string) => CoreError
  readonly close: () => void
}

/** Options of one etcd call (its deadline). @category model */
export type CallOptions = NonNullable<Parameters<Etcd3['kv']['range']>[1]>

class NoAnswer extends Error {}

// gRPC's messages carry a resolver note, a timestamp and OpenSSL's source file: none of it helps a person.
const tidy = (message: string): string =>
  message
    .replace(/\s*Resolution note:.*$/s, '')
    .replace(/\s*\(\d{4}-\d\d-\d\dT[\d:.]+Z\)\.?/g, '')
    .replace(/:\.\.\/deps\/openssl\/\S+/g, '')
    .replace(/Last error: Error: /g, 'Last error: ')
    .replace(/\s+/g, ' ')
    .trim()

const seconds = (ms: number): string => `${Number((ms / 1000).toFixed(3))} s`

// A TLS failure shows as UNAVAILABLE too, but trying again will not help: it is configuration.
const TLS_TROUBLE = /certificate|handshake|ssl|tls|alert|self.signed|unable to (?:get|verify)/i

const readTls = (label: string, path: string | undefined): TE.TaskEither<CoreError, Buffer | undefined> =>
  path === undefined
    ? TE.right(undefined)
    : TE.tryCatch(
        () => readFile(path),
        (e) => invalidConfig(`etcd ${label} ${path} cannot be read: ${causeText(e)}`)
      )

/**
 * A client for `settings` (its TLS files read now); no call is made until the first operation.
 *
 * @category constructors
 */
export const connect = (settings: Resolved): TE.TaskEither<CoreError, Etcd> =>
  pipe(
    TE.Do,
    TE.bind('ca', () => readTls('caFile', settings.tls?.caFile)),
    TE.bind('cert', () => readTls('certFile', settings.tls?.certFile)),
    TE.bind('key', () => readTls('keyFile', settings.tls?.keyFile)),
    TE.chain(({ ca, cert, key }) =>
      TE.fromEither(
        E.tryCatch(
          () => build(settings, ca, cert, key),
          (e) => invalidConfig(`etcd client: ${causeText(e)}`)
        )
      )
    )
  )

const build = (settings: Resolved, ca?: Buffer, cert?: Buffer, key?: Buffer): Etcd => {
  const where = settings.endpoints.join(',')
  const limit = seconds(settings.deadlineMs)
  const options: IOptions = {
    hosts: [...settings.endpoints],
    faultHandling: { host: () => noop, global: noop },
    // Every unary call gets the deadline, the auth token exchange included; streams (watch, lease
    // keep-alive) live as long as they are needed.
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + settings.deadlineMs }),
    grpcOptions: {
      // etcd back after an outage is found within a second, not after gRPC's default two minutes.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1_000,
      // A silent partition breaks an open watch or keep-alive stream within 15 s. (etcd refuses
      // pings more often than every 5 s, and any ping without an open stream.)
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000
    },
    ...(settings.tls === undefined || (ca === undefined && cert === undefined)
      ? {}
      : {
          credentials: {
            // Node's roots when only a client certificate is given: grpc takes null as "the defaults".
            rootCertificate: ca as Buffer,
            ...(key === undefined ? {} : { privateKey: key }),
            ...(cert === undefined ? {} : { certChain: cert })
          }
        }),
    ...(settings.auth === undefined ? {} : { auth: { ...settings.auth } })
  }
  const client = new Etcd3(options)

  const outage = (cause: string): CoreError =>
    transient(`the cluster store (etcd at ${where}) did not answer within ${limit}: ${cause}`)

  const failure =
    (op: string) =>
    (e: unknown): CoreError => {
      const cause = tidy(causeText(e))
      if (e instanceof NoAnswer) return outage(cause)
      if (e instanceof EtcdAuthenticationFailedError || e instanceof GRPCUnauthenticatedError) {
        return invalidConfig(`etcd at ${where} refused the user name or password: ${cause}`)
      }
      if (/user name is empty/.test(cause)) {
        return invalidConfig(`etcd at ${where} requires a user name and password (username, password): ${cause}`)
      }
      if (e instanceof EtcdPermissionDeniedError) {
        return invalidConfig(
          `etcd at ${where} denied ${op}: the user needs read and write access to the keys under ${settings.prefix} (${cause})`
        )
      }
      if (e instanceof GRPCUnavailableError && TLS_TROUBLE.test(cause)) {
        return invalidConfig(
          `etcd at ${where} refused the TLS connection (check caFile, certFile and keyFile): ${cause}`
        )
      }
      if (
        e instanceof GRPCUnavailableError ||
        e instanceof GRPCDeadlineExceededError ||
        e instanceof GRPCCancelledError ||
        e instanceof ClientClosedError
      ) {
        return outage(cause)
      }
      return io(`${op} on etcd at ${where}`, cause)
    }

  const call: Etcd['call'] = (op, f) =>
    TE.tryCatch(() => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new NoAnswer(`no answer to ${op}`)), settings.deadlineMs)
      })
      const started = Promise.resolve().then(() => f({ deadline: Date.now() + settings.deadlineMs }))
      // A call given up on may still settle later: its rejection must not go unhandled.
      started.catch(() => undefined)
      return Promise.race([started, late]).finally(() => clearTimeout(timer))
    }, failure(op))

  return { client, settings, call, outage, close: () => client.close() }
}
