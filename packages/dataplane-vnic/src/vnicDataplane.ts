/**
 * The Dataplane port over registered VNICs (ciao mode). The integrator owns every link: it made
 * the tenant bridges and the veth pairs, and deletes them. An endpoint adopts the VNIC registered
 * for its address in its network's address space (as ciao's plugin finds its VNIC from the
 * address Docker sends); Docker then moves the VNIC's container side into the container, and
 * moves it back before DeleteEndpoint, which only unbinds it.
 *
 * No command runs on the host here, and the host holds no tenant address: each tenant's gateway
 * is off the host (its CNCI), so `routesSubnetsOnHost` is false and tenants' subnets may overlap
 * across address spaces.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import {
  invalidConfig,
  splitCidr,
  unsupportedField,
  type CoreError,
  type Dataplane,
  type Endpoint,
  type Network
} from '@isthmus/core'
import type { VnicRegistry } from './registry.js'
import type { Vnic } from './Vnic.js'

// A VNIC answers for every address of the endpoint it carries: all must be its own.
const checkFits = (vnic: Vnic, endpoint: Endpoint, network: Network): CoreError | undefined => {
  if (endpoint.mac !== undefined && endpoint.mac !== vnic.mac) {
    return invalidConfig(`VNIC ${vnic.peerIfName} of ${vnic.address} has MAC ${vnic.mac}, not ${endpoint.mac}`)
  }
  if (vnic.bridge !== undefined && network.bridge !== undefined && vnic.bridge !== network.bridge) {
    return invalidConfig(
      `VNIC ${vnic.peerIfName} of ${vnic.address} is on bridge ${vnic.bridge}, not on ${network.bridge} of network ${network.name}`
    )
  }
  return undefined
}

/**
 * The VNIC dataplane over `registry`.
 *
 * @category constructors
 */
export const vnicDataplane = (registry: VnicRegistry): Dataplane => ({
  routesSubnetsOnHost: false,

  // The tenant bridge is the integrator's: never created, so never removed with the network.
  ensureNetwork: (network) => TE.right({ device: network.bridge ?? network.name, created: false }),
  deleteNetwork: () => TE.right(undefined),

  ensureEndpoint: ({ endpoint, network }) => {
    const first = endpoint.addresses[0]
    if (first === undefined) {
      return TE.left(invalidConfig(`endpoint ${endpoint.id} has no address to find its VNIC by (docker run --ip)`))
    }
    const address = splitCidr(first.cidr).address
    return pipe(
      registry.claim(network.addressSpace, address, endpoint.id),
      TE.chain((vnic) => {
        const others = endpoint.addresses.slice(1).map((a) => splitCidr(a.cidr).address)
        const misfit =
          checkFits(vnic, endpoint, network) ??
          (others.length > 0
            ? invalidConfig(`VNIC ${vnic.peerIfName} carries only ${vnic.address}, not ${others.join(', ')}`)
            : undefined)
        return misfit === undefined
          ? TE.right({ mac: vnic.mac, hostIfName: vnic.hostIfName, peerIfName: vnic.peerIfName })
          : pipe(
              registry.release(endpoint.id),
              TE.chain(() => TE.left(misfit))
            )
      })
    )
  },

  // Docker moves the container side itself (Join's SrcName); moving it for a CNI runtime would
  // make this dataplane a second Linux dataplane.
  place: ({ endpoint }, placement) =>
    placement._tag === 'RuntimeMoves'
      ? endpoint.mac === undefined
        ? TE.left(invalidConfig(`endpoint ${endpoint.id} has no MAC: it adopted no VNIC`))
        : TE.right({ ifName: endpoint.peerIfName, mac: endpoint.mac })
      : TE.left(
          unsupportedField(
            'placement',
            'the VNIC dataplane serves runtimes that move the interface themselves (Docker)'
          )
        ),

  // The VNIC stays registered and in place until the integrator tears it down.
  deleteEndpoint: ({ endpoint }) => registry.release(endpoint.id),

  // Published ports are the tenant gateway's business (ciao: the CNCI), not the host's.
  publishPorts: (_spec, ports) =>
    ports.length === 0
      ? TE.right(undefined)
      : TE.left(unsupportedField('portMappings', 'published ports: the tenant gateway publishes them')),
  unpublishPorts: () => TE.right(undefined),

  // Nothing on the host is isthmus's: gc must find no orphan among the integrator's links.
  inventory: () => TE.right({ links: [], networks: [] }),
  removeLink: () => TE.right(undefined)
})
