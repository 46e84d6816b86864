/**
 * Gateways and default routes of an endpoint, derived from its addresses and its network: what
 * CNI puts in `ips[].gateway`/`routes` and Docker's Join answers as Gateway/GatewayIPv6.
 */
import { contains, familyOf, splitCidr, type IpAddress, type Subnet } from '../model/Address.js'
import type { EndpointAddress, Route } from '../model/Endpoint.js'
import type { Network } from '../model/Network.js'

/** The gateway of each family, when there is one. @category flows */
export interface Gateways {
  readonly v4?: IpAddress
  readonly v6?: IpAddress
}

/** The address's own gateway, else the gateway of the network subnet it lies in. */
export const gatewayOf = (network: Network, address: EndpointAddress): IpAddress | undefined => {
  if (address.gateway !== undefined) return address.gateway
  const ip = splitCidr(address.cidr).address
  return [...network.ipv4, ...network.ipv6].find((s) => contains(s.subnet, ip))?.gateway
}

/**
 * The first gateway of each family. An internal network has none: it must not look like a way
 * out (Docker would otherwise skip docker_gwbridge for nothing: docs/cnm.md).
 */
export const gatewaysOf = (network: Network, addresses: ReadonlyArray<EndpointAddress>): Gateways => {
  if (network.internal) return {}
  const first = (f: 4 | 6): IpAddress | undefined =>
    addresses
      .filter((a) => familyOf(a.cidr) === f)
      .map((a) => gatewayOf(network, a))
      .find((g) => g !== undefined)
  const v4 = first(4)
  const v6 = first(6)
  return { ...(v4 !== undefined ? { v4 } : {}), ...(v6 !== undefined ? { v6 } : {}) }
}

const DEFAULT_V4 = '0.0.0.0/0' as Subnet
const DEFAULT_V6 = '::/0' as Subnet

/** A default route via the gateway of each family; none on an internal network. */
export const defaultRoutes = (network: Network, addresses: ReadonlyArray<EndpointAddress>): Route[] => {
  const g = gatewaysOf(network, addresses)
  return [
    ...(g.v4 !== undefined ? [{ dst: DEFAULT_V4, gw: g.v4 }] : []),
    ...(g.v6 !== undefined ? [{ dst: DEFAULT_V6, gw: g.v6 }] : [])
  ]
}
