/**
 * The vRouter agent as an Agent port: `POST /port` when an endpoint is created, `DELETE
 * /port/<interface uuid>` when it is deleted (docs/contrail.md, "The vRouter agent"; the agent's
 * side: https://github.com/tungstenfabric/tf-controller/tree/master/src/vnsw/agent/port_ipc).
 * Unlike the Go driver,
 * which fired these off and only logged the outcome, every call is awaited, so the createEndpoint
 * flow fails (and rolls back) when the agent refuses, and retried while the agent is unreachable.
 *
 * The agent cannot list its ports (it answers GET /port/<id> only), so `reconcile` cannot find a
 * port nobody remembers. It re-posts the port of every stored Contrail endpoint, then calls
 * `POST /syncports`: the agent then removes, after its stale timer, every port that was not
 * posted again since. That is how ports of endpoints that no longer exist go away.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as A from 'fp-ts/lib/ReadonlyArray.js'
import * as T from 'fp-ts/lib/Task.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import {
  agent as agentError,
  invalidConfig,
  splitCidr,
  transient,
  type Agent,
  type CoreError,
  type Endpoint,
  type EndpointId,
  type Logger,
  type Network,
  type Store
} from '@isthmus/core'
import {
  DEFAULT_HTTP_POLICY,
  failureText,
  sendLogged,
  withRetries,
  type HttpPolicy,
  type HttpResponse
} from '../http.js'
import { redactor, urlSecrets } from '../secrets.js'
import * as P from './Port.js'

/** @category model */
export interface VRouterAgentOptions {
  /** `http://127.0.0.1:9091` by default. */
  readonly url?: string
  readonly policy?: HttpPolicy
  readonly log?: Logger
}

/** @category constants */
export const DEFAULT_AGENT_URL = 'http://127.0.0.1:9091'

/** What `reconcile` did. @category model */
export interface AgentReconcileReport {
  readonly reposted: ReadonlyArray<EndpointId>
  readonly failures: ReadonlyArray<{ readonly endpointId: EndpointId; readonly error: CoreError }>
}

/** @category ports */
export interface VRouterAgent extends Agent {
  /** Make the agent hold exactly the ports of the stored endpoints (see the module comment). */
  readonly reconcile: (store: Store) => TE.TaskEither<CoreError, AgentReconcileReport>
}

/**
 * How the agent finds the port's interface on the host. Linux: the host end of the veth pair.
 * Windows (the endpoint has an HNS endpoint): the HNS endpoint's ID as display name, and as
 * system name its HNS name, the Docker endpoint ID, which is the container NIC's name on Windows
 * Server 2019 that the agent waits to appear. Decided by the record, not by the platform.
 */
const namesOf = (endpoint: Endpoint): Pick<P.AgentPort, 'display-name' | 'system-name'> =>
  endpoint.hostEndpointId === undefined
    ? { 'display-name': endpoint.id, 'system-name': endpoint.hostIfName }
    : { 'display-name': endpoint.hostEndpointId, 'system-name': endpoint.id }

/**
 * The port message for an endpoint; Left when the endpoint lacks what the agent requires (a
 * non-nil project uuid above all: every agent rejects an empty `vm-project-id` for type 0).
 *
 * @category utils
 */
export const portOf = (network: Network, endpoint: Endpoint, time: string): E.Either<CoreError, P.AgentPort> => {
  const c = endpoint.controller
  const vn = network.controller?.networkId
  if (c?.interfaceId === undefined || c.vmId === undefined || c.projectId === undefined || vn === undefined) {
    return E.left(
      invalidConfig(
        `endpoint ${endpoint.id} has no Contrail interface, VM, project and network to give the vRouter agent`
      )
    )
  }
  if (endpoint.mac === undefined) {
    return E.left(invalidConfig(`endpoint ${endpoint.id} has no MAC address for the vRouter agent`))
  }
  const v4 = endpoint.addresses.find((a) => !a.cidr.includes(':'))
  const v6 = endpoint.addresses.find((a) => a.cidr.includes(':'))
  return E.right({
    id: c.interfaceId,
    'instance-id': c.vmId,
    'vn-id': vn,
    'vm-project-id': c.projectId,
    ...namesOf(endpoint),
    'ip-address': v4 === undefined ? '' : splitCidr(v4.cidr).address,
    'ip6-address': v6 === undefined ? '' : splitCidr(v6.cidr).address,
    'mac-address': endpoint.mac,
    type: P.PORT_TYPE_VM,
    'rx-vlan-id': P.NO_VLAN,
    'tx-vlan-id': P.NO_VLAN,
    time
  })
}

/** What the agent client's requests need. */
interface AgentContext {
  readonly base: string
  readonly policy: HttpPolicy
  readonly log: Logger | undefined
}

// Only "no answer" is retried: the agent answers 500 for invalid ports too, and sending an
// invalid port again changes nothing.
const call = (
  ctx: AgentContext,
  op: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown
): TE.TaskEither<CoreError, HttpResponse> =>
  pipe(
    withRetries(
      ctx.policy,
      () => true,
      sendLogged(
        { method, url: `${ctx.base}${path}`, path, ...(body === undefined ? {} : { body }) },
        ctx.policy.timeoutMs,
        ctx.log,
        'vrouter agent'
      )
    ),
    TE.mapLeft((f) => transient(`vRouter agent at ${ctx.base} ${failureText(f)} during ${op}`))
  )

/** Re-post every stored Contrail endpoint's port; a failure is reported, not fatal. */
const repost = (store: Store, addPort: Agent['addPort']): TE.TaskEither<CoreError, AgentReconcileReport> =>
  pipe(
    TE.Do,
    TE.bind('networks', () => store.networks.list()),
    TE.bind('endpoints', () => store.endpoints.list()),
    TE.chain(({ networks, endpoints }) => {
      const byId = new Map(networks.map((n) => [n.id as string, n]))
      const ports = endpoints.flatMap((e) => {
        const n = byId.get(e.networkId)
        return n?.controller === undefined || e.controller?.interfaceId === undefined ? [] : [{ n, e }]
      })
      return pipe(
        ports,
        T.traverseSeqArray(({ n, e }) =>
          pipe(
            addPort(n, e),
            T.map(
              E.bimap(
                (error) => ({ endpointId: e.id, error }),
                () => e.id
              )
            )
          )
        ),
        T.map((rs) => E.right({ reposted: A.rights(rs), failures: A.lefts(rs) }))
      )
    })
  )

/** @category constructors */
export const vrouterAgent = (options: VRouterAgentOptions = {}): VRouterAgent => {
  const base = (options.url ?? DEFAULT_AGENT_URL).replace(/\/+$/, '')
  const ctx: AgentContext = { base, policy: options.policy ?? DEFAULT_HTTP_POLICY, log: options.log }
  const secrets = redactor(urlSecrets(base))
  const refused = (op: string, res: HttpResponse): CoreError => agentError(op, res.status, secrets.body(res.text))
  const expect200 = (op: string) => (res: HttpResponse) =>
    res.status === 200 ? TE.right(undefined) : TE.left(refused(op, res))

  const post = (port: P.AgentPort): TE.TaskEither<CoreError, void> => {
    const op = `add port ${port.id}`
    return pipe(call(ctx, op, 'POST', '/port', P.AgentPortOut.encode(port)), TE.chain(expect200(op)))
  }

  const addPort: Agent['addPort'] = (network, endpoint) =>
    network.controller === undefined
      ? TE.right(undefined)
      : pipe(TE.fromEither(portOf(network, endpoint, new Date().toISOString())), TE.chain(post))

  const deletePort: Agent['deletePort'] = (network, endpoint) => {
    const id = endpoint.controller?.interfaceId
    if (network.controller === undefined || id === undefined) return TE.right(undefined)
    const op = `delete port ${id}`
    const path = `/port/${encodeURIComponent(id.toLowerCase())}`
    return pipe(
      call(ctx, op, 'DELETE', path),
      TE.chain((res) =>
        res.status === 200 || res.status === 404
          ? TE.right(undefined)
          : // Some agents answer 500 after removing the port file: a port that is gone is deleted.
            pipe(
              call(ctx, op, 'GET', path),
              TE.chain((check) => (check.status === 404 ? TE.right(undefined) : TE.left(refused(op, res))))
            )
      )
    )
  }

  // Only once every live port is announced again: ports not announced since are stale.
  const reconcile: VRouterAgent['reconcile'] = (store) =>
    pipe(
      repost(store, addPort),
      TE.chainFirst((report) =>
        report.failures.length > 0
          ? TE.right(undefined)
          : pipe(call(ctx, 'sync ports', 'POST', '/syncports'), TE.chain(expect200('sync ports')))
      )
    )

  return { addPort, deletePort, reconcile }
}
