/**
 * The Hns port: networks and endpoints by the HNS v1 call shapes (`GET|POST|DELETE /networks/`,
 * `/endpoints/`, with an id for one; hcsshim's `HNSCall`), over an `HnsTransport`
 * (the one `HNSCall(method, path, request) → envelope` entry point). On Windows the transport is
 * `windowsHnsTransport` (the shipped PowerShell helper); on Linux, tests bind `httpHnsTransport` to
 * the simulator server of `@isthmus/dataplane-hns/testing`, or its in-process transport. Every
 * Output is decoded; `Success: false` becomes one error.
 *
 * HNS v1 has no lookup by name: `findNetworkByName` lists and filters here.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as t from 'io-ts'
import { decodeWith, io, notFound, parseJson, transient, type CoreError } from '@isthmus/core'
import * as H from './Hns.js'

/** @category model */
export type HnsMethod = 'GET' | 'POST' | 'DELETE'

/** The HNSCall entry point. A Left is a failure to make the call at all (not an HNS error). @category ports */
export interface HnsTransport {
  readonly call: (method: HnsMethod, path: string, request: string) => TE.TaskEither<CoreError, string>
}

/** @category ports */
export interface Hns {
  readonly createNetwork: (req: H.HnsNetworkRequest) => TE.TaskEither<CoreError, H.HnsNetwork>
  readonly getNetwork: (id: string) => TE.TaskEither<CoreError, H.HnsNetwork>
  readonly listNetworks: () => TE.TaskEither<CoreError, ReadonlyArray<H.HnsNetwork>>
  readonly findNetworkByName: (name: string) => TE.TaskEither<CoreError, H.HnsNetwork | undefined>
  /** Absent succeeds. */
  readonly deleteNetwork: (id: string) => TE.TaskEither<CoreError, void>
  readonly createEndpoint: (req: H.HnsEndpointRequest) => TE.TaskEither<CoreError, H.HnsEndpoint>
  readonly getEndpoint: (id: string) => TE.TaskEither<CoreError, H.HnsEndpoint>
  readonly listEndpoints: () => TE.TaskEither<CoreError, ReadonlyArray<H.HnsEndpoint>>
  /** Absent succeeds. */
  readonly deleteEndpoint: (id: string) => TE.TaskEither<CoreError, void>
}

/** The text HNS gives for an unknown id; the only "not found" signal v1 has. */
const NOT_FOUND = /element not found/i

/** HNS's own error, as hcsshim renders it. @category utils */
export const hnsFailure = (kind: 'network' | 'endpoint', op: string, text: string): CoreError =>
  NOT_FOUND.test(text)
    ? notFound(kind, op)
    : /unspecified error/i.test(text)
      ? transient(`HNS failed during ${op}: ${text.trim()}`)
      : io(op, `HNS failed with error : ${text.trim()}`)

/** @category constructors */
export const hnsClient = (transport: HnsTransport): Hns => {
  const call = <A>(
    kind: 'network' | 'endpoint',
    op: string,
    method: HnsMethod,
    path: string,
    body: unknown,
    codec: t.Type<A, unknown>
  ): TE.TaskEither<CoreError, A> =>
    pipe(
      transport.call(method, path, body === undefined ? '' : JSON.stringify(body)),
      TE.chainEitherK((text) =>
        pipe(
          parseJson('HNS response')(text),
          E.mapLeft(() => io(op, 'HNS answered with something that is not JSON')),
          E.chain(decodeWith(H.HnsEnvelope, 'HNS response'))
        )
      ),
      TE.chainEitherK((env) =>
        env.Success
          ? decodeWith(codec, `HNS output of ${op}`)(env.Output)
          : E.left(hnsFailure(kind, op, env.Error ?? 'unknown error'))
      )
    )
  const absentOk = (te: TE.TaskEither<CoreError, unknown>): TE.TaskEither<CoreError, void> =>
    pipe(
      te,
      TE.map(() => undefined),
      TE.orElse((e) => (e._tag === 'NotFound' ? TE.right(undefined) : TE.left(e)))
    )
  const listNetworks = () => call('network', 'list networks', 'GET', '/networks/', undefined, t.array(H.HnsNetwork))
  return {
    createNetwork: (req) =>
      call(
        'network',
        `create network ${req.Name}`,
        'POST',
        '/networks/',
        H.HnsNetworkRequest.encode(req),
        H.HnsNetwork
      ),
    getNetwork: (id) => call('network', `network ${id}`, 'GET', `/networks/${id}`, undefined, H.HnsNetwork),
    listNetworks,
    findNetworkByName: (name) =>
      pipe(
        listNetworks(),
        TE.map((ns) => ns.find((n) => n.Name === name))
      ),
    deleteNetwork: (id) =>
      absentOk(call('network', `network ${id}`, 'DELETE', `/networks/${id}`, undefined, t.unknown)),
    createEndpoint: (req) =>
      call(
        'endpoint',
        `create endpoint ${req.Name}`,
        'POST',
        '/endpoints/',
        H.HnsEndpointRequest.encode(req),
        H.HnsEndpoint
      ),
    getEndpoint: (id) => call('endpoint', `endpoint ${id}`, 'GET', `/endpoints/${id}`, undefined, H.HnsEndpoint),
    listEndpoints: () => call('endpoint', 'list endpoints', 'GET', '/endpoints/', undefined, t.array(H.HnsEndpoint)),
    deleteEndpoint: (id) =>
      absentOk(call('endpoint', `endpoint ${id}`, 'DELETE', `/endpoints/${id}`, undefined, t.unknown))
  }
}
