/**
 * The vRouter agent as an Agent port: `POST /port` when an endpoint is created, `DELETE
 * /port/<interface uuid>` when it is deleted (contrail-hns-agent.md §3). Unlike the Go driver,
 * which fired these off and only logged the outcome, every call is awaited, so the createEndpoint
 * flow fails (and rolls back) when the agent refuses, and retried while the agent is unreachable.
 *
 * The agent cannot list its ports (§3.1 has GET /port/<id> only), so `reconcile` cannot find a
 * port nobody remembers. It re-posts the port of every stored Contrail endpoint, then calls
 * `POST /syncports`: the agent then removes, after its stale timer, every port that was not
 * posted again since (§3.3). That is how ports of endpoints that no longer exist go away.
 */
import * as E from 'fp-ts/lib/Either.js'
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
import { DEFAULT_HTTP_POLICY, failureText, send, withRetries, type HttpFailure, type HttpPolicy, type HttpResponse } from '../http.js'
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
 * The port message for an endpoint; Left when the endpoint lacks what the agent requires (a
 * non-nil project uuid above all: every agent rejects an empty `vm-project-id` for type 0).
 *
 * @category utils
 */
export const portOf = (network: Network, endpoint: Endpoint, time: string): E.Either<CoreError, P.AgentPort> => {
  const c = endpoint.controller
  const vn = network.controller?.networkId
  if (c?.interfaceId === undefined || c.vmId === undefined || c.projectId === undefined || vn === undefined) {
    return E.left(invalidConfig(`endpoint ${endpoint.id} has no Contrail interface, VM, project and network to give the vRouter agent`))
  }
  if (endpoint.mac === undefined) return E.left(invalidConfig(`endpoint ${endpoint.id} has no MAC address for the vRouter agent`))
  const v4 = endpoint.addresses.find((a) => !a.cidr.includes(':'))
  const v6 = endpoint.addresses.find((a) => a.cidr.includes(':'))
  return E.right({
    id: c.interfaceId,
    'instance-id': c.vmId,
    'vn-id': vn,
    'vm-project-id': c.projectId,
    'display-name': endpoint.id,
    // the host end of the veth pair: the interface the vRouter forwards to on Linux
    'system-name': endpoint.hostIfName,
    'ip-address': v4 === undefined ? '' : splitCidr(v4.cidr).address,
    'ip6-address': v6 === undefined ? '' : splitCidr(v6.cidr).address,
    'mac-address': endpoint.mac,
    type: P.PORT_TYPE_VM,
    'rx-vlan-id': P.NO_VLAN,
    'tx-vlan-id': P.NO_VLAN,
    time
  })
}

/** @category constructors */
export const vrouterAgent = (options: VRouterAgentOptions = {}): VRouterAgent => {
  const base = (options.url ?? DEFAULT_AGENT_URL).replace(/\/+$/, '')
  const policy = options.policy ?? DEFAULT_HTTP_POLICY
  const secrets = redactor(urlSecrets(base))

  // Only "no answer" is retried: the agent answers 500 for invalid ports too (§3.1), and
  // sending an invalid port again changes nothing.
  const call = (op: string, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): TE.TaskEither<CoreError, HttpResponse> => {
    const attempt: TE.TaskEither<HttpFailure, HttpResponse> = async () => {
      const started = Date.now()
      const r = await send({ method, url: `${base}${path}`, ...(body === undefined ? {} : { body }) }, policy.timeoutMs)()
      options.log?.debug('vrouter agent', { method, path, status: E.isRight(r) ? r.right.status : r.left._tag, durationMs: Date.now() - started })
      return r
    }
    return pipe(
      withRetries(policy, () => true, attempt),
      TE.mapLeft((f) => transient(`vRouter agent at ${base} ${failureText(f)} during ${op}`))
    )
  }

  const refused = (op: string, res: HttpResponse): CoreError => agentError(op, res.status, secrets.body(res.text))

  const post = (port: P.AgentPort): TE.TaskEither<CoreError, void> => {
    const op = `add port ${port.id}`
    return pipe(
      call(op, 'POST', '/port', P.AgentPortOut.encode(port)),
      TE.chain((res) => (res.status === 200 ? TE.right(undefined) : TE.left(refused(op, res))))
    )
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
      call(op, 'DELETE', path),
      TE.chain((res) => {
        if (res.status === 200 || res.status === 404) return TE.right(undefined)
        // Some agents answer 500 after removing the port file (§3.2): a port that is gone is deleted.
        return pipe(
          call(op, 'GET', path),
          TE.chain((check) => (check.status === 404 ? TE.right(undefined) : TE.left(refused(op, res))))
        )
      })
    )
  }

  const reconcile: VRouterAgent['reconcile'] = (store) => async () => {
    const networks = await store.networks.list()()
    if (E.isLeft(networks)) return networks
    const endpoints = await store.endpoints.list()()
    if (E.isLeft(endpoints)) return endpoints
    const byId = new Map(networks.right.map((n) => [n.id as string, n]))
    const reposted: EndpointId[] = []
    const failures: Array<{ endpointId: EndpointId; error: CoreError }> = []
    for (const e of endpoints.right) {
      const n = byId.get(e.networkId)
      if (n?.controller === undefined || e.controller?.interfaceId === undefined) continue
      const r = await addPort(n, e)()
      if (E.isRight(r)) reposted.push(e.id)
      else failures.push({ endpointId: e.id, error: r.left })
    }
    // Only once every live port is announced again: ports not announced since are stale.
    if (failures.length === 0) {
      const op = 'sync ports'
      const s = await call(op, 'POST', '/syncports')()
      if (E.isLeft(s)) return s
      if (s.right.status !== 200) return E.left(refused(op, s.right))
    }
    return E.right({ reposted, failures })
  }

  return { addPort, deletePort, reconcile }
}
