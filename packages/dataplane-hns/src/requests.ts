/**
 * HNS requests built from core records, as the Contrail Windows driver made them: a
 * transparent network named `Contrail:<tenant>:<network>:<subnet>` with the controller's gateway,
 * and an endpoint named by the endpoint id with the controller's address and MAC.
 */
import * as E from 'fp-ts/lib/Either.js'
import { invalidConfig, splitCidr, type CoreError, type Endpoint, type Network } from '@isthmus/core'
import { toHnsMac, type HnsEndpointRequest, type HnsNetworkRequest } from './Hns.js'
import { hostNetworkName } from './names.js'

/** The HNS network of a Contrail network. @category constructors */
export const hnsNetworkRequest = (network: Network): E.Either<CoreError, HnsNetworkRequest> => {
  const c = network.controller
  const s = network.ipv4[0]
  if (c === undefined || s === undefined) {
    return E.left(invalidConfig(`network ${network.name} is not a Contrail IPv4 network`))
  }
  return E.right({
    Name: c.hostNetworkName ?? hostNetworkName({ tenant: c.tenant, network: c.network, subnet: s.subnet }),
    Type: 'transparent',
    Subnets: [{ AddressPrefix: s.subnet, ...(s.gateway === undefined ? {} : { GatewayAddress: s.gateway }) }]
  })
}

/** The HNS endpoint of an endpoint on the HNS network `hnsNetworkId`. @category constructors */
export const hnsEndpointRequest = (
  endpoint: Endpoint,
  hnsNetworkId: string
): E.Either<CoreError, HnsEndpointRequest> => {
  const a = endpoint.addresses.find((x) => !x.cidr.includes(':'))
  if (a === undefined) return E.left(invalidConfig(`endpoint ${endpoint.id} has no IPv4 address for HNS`))
  const { address, prefix } = splitCidr(a.cidr)
  return E.right({
    Name: endpoint.id,
    VirtualNetwork: hnsNetworkId,
    IPAddress: address,
    PrefixLength: prefix,
    ...(a.gateway === undefined ? {} : { GatewayAddress: a.gateway }),
    ...(endpoint.mac === undefined ? {} : { MacAddress: toHnsMac(endpoint.mac) })
  })
}
