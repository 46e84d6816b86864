/**
 * One ControlPlane in front of two: a network that names a controller (Docker `-o tenant=…
 * -o network=…`, a CNI netconf's tenant and network) goes to the controller's control plane,
 * every other network to the built-in one. The choice is made per network, so both kinds live
 * side by side in one store and one plugin.
 */
import type { Network } from '../model/Network.js'
import type { ControlPlane, NetworkSpec } from '../ports/ControlPlane.js'

/** @category model */
export interface CompositeControlPlaneOptions {
  /** Networks that name a controller. */
  readonly controller: ControlPlane
  /** Every other network. */
  readonly builtin: ControlPlane
}

/** @category constructors */
export const compositeControlPlane = (o: CompositeControlPlaneOptions): ControlPlane => {
  const bySpec = (s: NetworkSpec): ControlPlane => (s.controller === undefined ? o.builtin : o.controller)
  const byNetwork = (n: Network): ControlPlane => (n.controller === undefined ? o.builtin : o.controller)
  return {
    ensureNetwork: (spec) => bySpec(spec).ensureNetwork(spec),
    deleteNetwork: (network) => byNetwork(network).deleteNetwork(network),
    createEndpoint: (network, req) => byNetwork(network).createEndpoint(network, req),
    deleteEndpoint: (network, endpoint) => byNetwork(network).deleteEndpoint(network, endpoint)
  }
}
