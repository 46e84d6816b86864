/**
 * A small Docker Engine API client: HTTP/1.1 over the daemon's unix socket with node:http, every
 * answer decoded with core's Docker Engine codecs (ports/DockerEngine.ts). Paths are unversioned,
 * so the daemon answers in its own API version: the fields read here are the same from 1.41
 * (20.10) on, and a daemon that speaks 1.44 or later honours a MAC on connect.
 */
import { request } from 'node:http'
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type * as t from 'io-ts'
import {
  causeText,
  ContainerInspect,
  ErrorBody,
  NetworkInspect,
  type DockerClient,
  type DockerClientOptions,
  type DockerError
} from '@isthmus/core'

/** The daemon's socket when the netconf names none. @category constants */
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock'
/** Per request: a connect through a remote network plugin takes a few seconds under load. @category constants */
export const DEFAULT_DOCKER_TIMEOUT_MS = 60_000

interface Reply {
  readonly status: number
  readonly text: string
}

const send =
  (
    socket: string,
    timeoutMs: number,
    method: 'GET' | 'POST',
    path: string,
    body?: unknown
  ): TE.TaskEither<DockerError, Reply> =>
  () =>
    new Promise((resolve) => {
      const payload = body === undefined ? undefined : JSON.stringify(body)
      const req = request(
        {
          socketPath: socket,
          path,
          method,
          // Docker requires a Host header; its value is not used on a unix socket.
          headers: {
            Host: 'docker',
            ...(payload === undefined
              ? {}
              : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) })
          },
          timeout: timeoutMs
        },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (c: string) => (text += c))
          res.on('end', () => resolve(E.right({ status: res.statusCode ?? 0, text })))
          res.on('error', (e) => resolve(E.left({ _tag: 'Unreachable', socket, cause: e.message })))
        }
      )
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
      req.on('error', (e: NodeJS.ErrnoException) =>
        resolve(E.left({ _tag: 'Unreachable', socket, cause: e.code ?? e.message }))
      )
      req.end(payload)
    })

const messageOf = (text: string): string => {
  try {
    const body: unknown = JSON.parse(text)
    return ErrorBody.is(body) ? body.message : text.trim()
  } catch {
    return text.trim()
  }
}

const refusedUnless2xx =
  (op: string) =>
  (r: Reply): E.Either<DockerError, Reply> =>
    r.status >= 200 && r.status < 300
      ? E.right(r)
      : E.left({ _tag: 'Refused', op, status: r.status, message: messageOf(r.text) })

const decodeAs =
  <A>(codec: t.Decoder<unknown, A>, op: string) =>
  (r: Reply): E.Either<DockerError, A> =>
    pipe(
      E.tryCatch(
        (): unknown => JSON.parse(r.text),
        (e): DockerError => ({ _tag: 'BadAnswer', op, detail: causeText(e) })
      ),
      E.chain((json) =>
        pipe(
          codec.decode(json),
          E.mapLeft((): DockerError => ({ _tag: 'BadAnswer', op, detail: `not a ${codec.name}` }))
        )
      )
    )

/**
 * The client for one socket.
 *
 * @example
 * const docker = dockerClient({ socket: '/var/run/docker.sock' })
 * const c = await docker.inspectContainer('web')()
 *
 * @category constructors
 */
export const dockerClient = (options: DockerClientOptions = {}): DockerClient => {
  const socket = options.socket ?? DEFAULT_DOCKER_SOCKET
  const timeoutMs = options.timeoutMs ?? DEFAULT_DOCKER_TIMEOUT_MS
  const call = (op: string, method: 'GET' | 'POST', path: string, body?: unknown) =>
    pipe(send(socket, timeoutMs, method, path, body), TE.chainEitherK(refusedUnless2xx(op)))
  const id = encodeURIComponent
  return {
    socket,
    ping: () =>
      pipe(
        call('ping', 'GET', '/_ping'),
        TE.map(() => undefined)
      ),
    inspectContainer: (c) =>
      pipe(
        call(`inspect container ${c}`, 'GET', `/containers/${id(c)}/json`),
        TE.chainEitherK(decodeAs(ContainerInspect, `inspect container ${c}`))
      ),
    inspectNetwork: (n) =>
      pipe(
        call(`inspect network ${n}`, 'GET', `/networks/${id(n)}`),
        TE.chainEitherK(decodeAs(NetworkInspect, `inspect network ${n}`))
      ),
    connect: (n, body) =>
      pipe(
        call(`connect ${body.Container} to ${n}`, 'POST', `/networks/${id(n)}/connect`, body),
        TE.map(() => undefined)
      ),
    disconnect: (n, c, force = false) =>
      pipe(
        call(`disconnect ${c} from ${n}`, 'POST', `/networks/${id(n)}/disconnect`, { Container: c, Force: force }),
        TE.map(() => undefined)
      )
  }
}
