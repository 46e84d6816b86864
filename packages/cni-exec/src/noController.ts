/**
 * The controller ports of a CNI call whose netconf has no `contrail` section: a guard that refuses
 * every network bound to a controller, so a DEL whose netconf lost its `contrail` section fails
 * (the runtime retries DEL) instead of dropping the record while the controller keeps the
 * interface, VM and instance-ip and the agent keeps the port.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import { invalidConfig, type Agent, type ControlPlane, type CoreError, type Network } from '@isthmus/core'
import type { ControllerPorts } from './runtime.js'

const unbound = (network: Pick<Network, 'name' | 'controller'>): CoreError =>
  invalidConfig(
    `network ${network.name} is bound to Contrail ` +
      `${network.controller?.tenant ?? '?'}:${network.controller?.network ?? '?'} ` +
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
