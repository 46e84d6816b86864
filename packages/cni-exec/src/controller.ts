/**
 * The controller ports of one CNI call. With a netconf `contrail` section: the Contrail config
 * API (keystone credentials from the `OS_*` variables or the credentials file, never the
 * netconf) as the control plane of networks that name a controller, and the vRouter agent.
 * Without one: a guard that refuses every network bound to a controller, so a DEL whose netconf
 * lost its `contrail` section fails (the runtime retries DEL) instead of dropping the record
 * while the controller keeps the interface, VM and instance-ip and the agent keeps the port.
 */
import { readFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { invalidConfig, type Agent, type ControlPlane, type CoreError, type Network } from '@isthmus/core'
import {
  configApi,
  contrailControlPlane,
  DEFAULT_HTTP_POLICY,
  keystoneAuth,
  parseCredentialsFile,
  vrouterAgent,
  type Auth,
  type HttpPolicy
} from '@isthmus/contrail'
import type { ControllerPorts, ControllerSettings, Runtime } from './runtime.js'

// -------------------------------------------------------------------------------------
// without a contrail section
// -------------------------------------------------------------------------------------

const unbound = (network: Pick<Network, 'name' | 'controller'>): CoreError =>
  invalidConfig(
    `network ${network.name} is bound to Contrail ${network.controller?.tenant ?? '?'}:${network.controller?.network ?? '?'} ` +
      'and this netconf has no contrail section to reach the controller'
  )

/**
 * The controller ports when the netconf names no controller: the composite sends only
 * controller networks here, and the agent answers nothing for the others.
 *
 * @category constructors
 */
export const noController: ControllerPorts = {
  controlPlane: {
    ensureNetwork: (spec) => TE.left(unbound(spec)),
    deleteNetwork: (network) => TE.left(unbound(network)),
    createEndpoint: (network) => TE.left(unbound(network)),
    deleteEndpoint: (network) => TE.left(unbound(network))
  } satisfies ControlPlane,
  agent: {
    addPort: (network) => (network.controller === undefined ? TE.right(undefined) : TE.left(unbound(network))),
    deletePort: (network) => (network.controller === undefined ? TE.right(undefined) : TE.left(unbound(network)))
  } satisfies Agent
}

// -------------------------------------------------------------------------------------
// Contrail
// -------------------------------------------------------------------------------------

/** What resolving the settings needs from the host. @category model */
export interface ContrailDeps {
  readonly readFile: (path: string) => Promise<string>
  readonly hostname: () => string
}

const realDeps: ContrailDeps = { readFile: (p) => readFile(p, 'utf8'), hostname }

/**
 * The keystone credentials: the `OS_*` variables first, then the file. Left is one sentence that
 * names the file or the missing variables, never a value read from them.
 */
const authOf = async (s: ControllerSettings, deps: ContrailDeps): Promise<E.Either<CoreError, Auth>> => {
  const k = s.keystone
  if (k === undefined) return E.right({ kind: 'none' })
  let file: Record<string, string> = {}
  if (k.credentialsFile !== undefined) {
    try {
      file = parseCredentialsFile(await deps.readFile(k.credentialsFile))
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'unreadable'
      return E.left(invalidConfig(`cannot read contrail.keystone.credentialsFile ${k.credentialsFile}: ${code}`))
    }
  }
  const auth = keystoneAuth({ url: k.url, version: k.version }, k.vars, file)
  if (E.isRight(auth)) return auth
  const where = k.credentialsFile === undefined ? 'the environment (or contrail.keystone.credentialsFile)' : `the environment or ${k.credentialsFile}`
  return E.left(invalidConfig(`keystone needs ${auth.left.join(', ')} in ${where}`))
}

/**
 * The Controller port over the real Contrail config API and vRouter agent. Nothing is contacted
 * here: the clients are lazy, so DEL of a builtin network never waits on the controller.
 *
 * @category constructors
 */
export const contrailController =
  (deps: ContrailDeps = realDeps): Runtime['controller'] =>
  (s, log) =>
  async () => {
    const auth = await authOf(s, deps)
    if (E.isLeft(auth)) return auth
    const policy: HttpPolicy = {
      ...DEFAULT_HTTP_POLICY,
      ...(s.timeoutMs === undefined ? {} : { timeoutMs: s.timeoutMs }),
      ...(s.retries === undefined ? {} : { retries: s.retries })
    }
    const api = configApi({ url: s.api, auth: auth.right, policy, log })
    return E.right({
      controlPlane: contrailControlPlane({ api, owner: s.owner ?? deps.hostname(), ...(s.domain === undefined ? {} : { domain: s.domain }) }),
      agent: vrouterAgent({ ...(s.agent === undefined ? {} : { url: s.agent }), policy, log })
    })
  }
