/**
 * join: put an endpoint's interface into a sandbox (Docker Join; CNI ADD after createEndpoint).
 * The Placement carries the protocols' one real difference: Docker moves and renames the link
 * itself, a CNI plugin must move it into CNI_NETNS as CNI_IFNAME.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { alreadyExists, type CoreError } from '../errors.js'
import type { EndpointId, SandboxKey } from '../ids.js'
import type { Endpoint, Route } from '../model/Endpoint.js'
import type { Network } from '../model/Network.js'
import type { Placement } from '../model/Sandbox.js'
import type { PlacedInterface } from '../ports/Dataplane.js'
import type { Flow } from '../ports/Env.js'
import { ATTACHMENT_WRITE } from '../ports/Store.js'
import { call } from './call.js'
import { loadEndpoint, loadNetwork, lockedEndpoint, putEndpoint } from './records.js'
import { gatewaysOf, type Gateways } from './routing.js'

export type { Gateways } from './routing.js'

/** @category flows */
export interface JoinOptions {
  /**
   * The sandbox, when the placement does not name it: Docker's Join sends SandboxKey with
   * RuntimeMoves. PluginMoves carries its own (CNI_NETNS) and this is ignored.
   */
  readonly sandboxKey?: SandboxKey
}

/** What a frontend needs to answer Join (Docker) or build the CNI result. @category flows */
export interface JoinResult {
  readonly endpoint: Endpoint
  readonly network: Network
  readonly placed: PlacedInterface
  /** None on an internal network. */
  readonly gateways: Gateways
  readonly routes: ReadonlyArray<Route>
}

/**
 * Join the endpoint to a sandbox. Calling it again with the same placement gives the same result
 * (the dataplane's `place` is idempotent); a different sandbox, or another name in the same one,
 * fails with AlreadyExists: an endpoint is one interface of one sandbox.
 *
 * Steps: 1. load the endpoint and its network (NotFound), 2. check the sandbox, 3. the dataplane
 * places the interface, 4. its port mappings are published, 5. the endpoint record learns its
 * sandbox (and, with PluginMoves, the interface's name in it). What a sandbox holds is the
 * endpoints whose records name it: no record of the sandbox itself is kept. No rollback: a failed join is followed by
 * DeleteEndpoint (Docker) or DEL (CNI SPEC: ADD is followed by DEL also when it failed), and
 * those remove whatever this got to.
 *
 * @category flows
 */
export const join = (endpointId: EndpointId, placement: Placement, options: JoinOptions = {}): Flow<JoinResult> =>
  pipe(
    RTE.Do,
    // 1. The endpoint and its network.
    RTE.bind('endpoint', () => loadEndpoint(endpointId)),
    RTE.bind('network', ({ endpoint }) => loadNetwork(endpoint.networkId)),
    // 2. The sandbox it goes to, if known; refused when it is already in another one.
    RTE.bind('key', ({ endpoint }) => RTE.fromEither(sandboxOf(endpoint, placement, options))),
    // 3. PluginMoves: moved, renamed, addressed and routed. RuntimeMoves: left in the host
    //    namespace under its own name for the runtime to move (dockerd needs SrcName to exist: docs/cnm.md).
    RTE.bind(
      'placed',
      ({ endpoint, network }) =>
        (env) =>
          env.dataplane.place({ endpoint, network }, placement)
    ),
    // 4. Published ports (dockerd publishes none itself for a remote driver).
    RTE.tap(({ endpoint, network }): Flow<void> =>
      endpoint.portMappings.length === 0
        ? RTE.right(undefined)
        : call((env) => env.dataplane.publishPorts({ endpoint, network }, endpoint.portMappings))
    ),
    // 5. The endpoint record: sandbox and, when the plugin chose it, the name inside; the routes
    //    the sandbox really got (a default it already had is not ours to report).
    RTE.bind('joined', ({ endpoint, key, placed }) => {
      const joined: Endpoint = {
        ...endpoint,
        ...(placed.routes !== undefined ? { routes: [...placed.routes] } : {}),
        ...(key !== undefined ? { sandbox: key } : {}),
        ...(placement._tag === 'PluginMoves' ? { sandboxIfName: placement.ifName } : {})
      }
      return pipe(
        // A sandbox dies with the machine: that record need not outlive a power loss.
        putEndpoint(joined, ATTACHMENT_WRITE),
        RTE.map(() => joined)
      )
    }),
    RTE.map(({ joined, network, placed }): JoinResult => ({
      endpoint: joined,
      network,
      placed,
      gateways: gatewaysOf(network, joined.addresses),
      routes: joined.routes
    })),
    lockedEndpoint(endpointId)
  )

const sandboxOf = (
  endpoint: Endpoint,
  placement: Placement,
  options: JoinOptions
): E.Either<CoreError, SandboxKey | undefined> => {
  const key = placement._tag === 'PluginMoves' ? placement.sandbox : (options.sandboxKey ?? endpoint.sandbox)
  if (endpoint.sandbox !== undefined && key !== endpoint.sandbox) {
    return E.left(alreadyExists('endpoint', endpoint.id, `is joined to sandbox ${endpoint.sandbox}`))
  }
  if (
    placement._tag === 'PluginMoves' &&
    endpoint.sandboxIfName !== undefined &&
    endpoint.sandboxIfName !== placement.ifName
  ) {
    return E.left(alreadyExists('endpoint', endpoint.id, `is ${endpoint.sandboxIfName} in sandbox ${key}`))
  }
  return E.right(key)
}
