/**
 * A small Docker Engine API client: HTTP/1.1 over the daemon's unix socket with node:http, every
 * answer decoded with the codecs of api.ts. Paths are unversioned, so the daemon answers in its
 * own API version: the fields read here are the same from 1.41 (20.10) on, and a daemon that
 * speaks 1.44 or later honours a MAC on connect. Independent of the core on purpose.
 */
import { request } from 'node:http'
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type * as t from 'io-ts'
import { ContainerInspect, ErrorBody, NetworkInspect, type ConnectRequest } from './api.js'

/** The daemon's socket when the netconf names none. @category constants */
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock'
/** Per request: a connect through a remote network plugin takes a few seconds under load. @category constants */
export const DEFAULT_DOCKER_TIMEOUT_MS = 60_000

/**
 * What can go wrong talking to dockerd: no answer (socket absent, refused, timed out), an error
 * status with Docker's message, or an answer that is not what the API documents.
 *
 * @category model
 */
export type DockerError =
  | { readonly _tag: 'Unreachable'; readonly socket: string; readonly cause: string }
  | { readonly _tag: 'Refused'; readonly op: string; readonly status: number; readonly message: string }
  | { readonly _tag: 'BadAnswer'; readonly op: string; readonly detail: string }

/** Whether Docker answered 404 (no such container or network). @category utils */
export const isNoSuch = (e: DockerError): boolean => e._tag === 'Refused' && e.status === 404

/** One sentence for a person. @category utils */
export const describeDockerError = (e: DockerError): string => {
  switch (e._tag) {
    case 'Unreachable':
      return `no answer from the docker engine on ${e.socket}: ${e.cause}`
    case 'Refused':
      return `docker engine refused ${e.op} (HTTP ${e.status}): ${e.message}`
    case 'BadAnswer':
      return `unexpected answer from the docker engine to ${e.op}: ${e.detail}`
  }
}

/** @category model */
export interface DockerClientOptions {
  readonly socket?: string
  readonly timeoutMs?: number
}

/** The calls the CNI frontend makes. @category model */
export interface DockerClient {
  readonly socket: string
  readonly ping: () => TE.TaskEither<DockerError, void>
  readonly inspectContainer: (idOrName: string) => TE.TaskEither<DockerError, ContainerInspect>
  readonly inspectNetwork: (idOrName: string) => TE.TaskEither<DockerError, NetworkInspect>
  readonly connect: (network: string, body: ConnectRequest) => TE.TaskEither<DockerError, void>
  readonly disconnect: (network: string, container: string, force?: boolean) => TE.TaskEither<DockerError, void>
}

interface Reply {
  readonly status: number
  readonly text: string
}

const send = (socket: string, timeoutMs: number, method: 'GET' | 'POST', path: string, body?: unknown): TE.TaskEither<DockerError, Reply> =>
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
            ...(payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) })
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
      req.on('error', (e: NodeJS.ErrnoException) => resolve(E.left({ _tag: 'Unreachable', socket, cause: e.code ?? e.message })))
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

const refusedUnless2xx = (op: string) => (r: Reply): E.Either<DockerError, Reply> =>
  r.status >= 200 && r.status < 300 ? E.right(r) : E.left({ _tag: 'Refused', op, status: r.status, message: messageOf(r.text) })

const decodeAs = <A>(codec: t.Decoder<unknown, A>, op: string) => (r: Reply): E.Either<DockerError, A> => {
  let json: unknown
  try {
    json = JSON.parse(r.text)
  } catch (e) {
    return E.left({ _tag: 'BadAnswer', op, detail: e instanceof Error ? e.message : String(e) })
  }
  const d = codec.decode(json)
  return E.isLeft(d) ? E.left({ _tag: 'BadAnswer', op, detail: `not a ${codec.name}` }) : E.right(d.right)
}

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
    ping: () => pipe(call('ping', 'GET', '/_ping'), TE.map(() => undefined)),
    inspectContainer: (c) => pipe(call(`inspect container ${c}`, 'GET', `/containers/${id(c)}/json`), TE.chainEitherK(decodeAs(ContainerInspect, `inspect container ${c}`))),
    inspectNetwork: (n) => pipe(call(`inspect network ${n}`, 'GET', `/networks/${id(n)}`), TE.chainEitherK(decodeAs(NetworkInspect, `inspect network ${n}`))),
    connect: (n, body) => pipe(call(`connect ${body.Container} to ${n}`, 'POST', `/networks/${id(n)}/connect`, body), TE.map(() => undefined)),
    disconnect: (n, c, force = false) =>
      pipe(call(`disconnect ${c} from ${n}`, 'POST', `/networks/${id(n)}/disconnect`, { Container: c, Force: force }), TE.map(() => undefined))
  }
}
