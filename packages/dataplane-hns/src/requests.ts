/**
 * HNS requests built from core records, as the Contrail Windows driver made them: a transparent
 * network named as the controller recorded it (`Contrail:<tenant>:<network>:<subnet>`) with the
 * network's subnet and gateway, and an endpoint named by the endpoint id with the endpoint's
 * address, prefix length, gateway and MAC.
 */
import * as E from 'fp-ts/lib/Either.js'
import { invalidConfig, splitCidr, type CoreError, type Endpoint, type Network } from '@isthmus/core'
import { toHnsMac, type HnsEndpointRequest, type HnsNetworkRequest } from './Hns.js'

/** Prefix of the HNS networks isthmus names itself (a network with no controller name). @category constants */
export const ISTHMUS_NETWORK_PREFIX = 'isthmus:'

/**
 * The HNS network name of `network`: the name its controller recorded
 * (`network.controller.hostNetworkName`, the Contrail driver's `Contrail:<tenant>:<network>:<subnet>`),
 * else `isthmus:<network id>`: unique per network, and never taken for a Contrail driver's name.
 *
 * @category utils
 */
export const hnsNetworkName = (network: Network): string =>
  network.controller?.hostNetworkName ?? `${ISTHMUS_NETWORK_PREFIX}${network.id}`

/** The transparent HNS network of a network with an IPv4 subnet. @category constructors */
export const hnsNetworkRequest = (network: Network): E.Either<CoreError, HnsNetworkRequest> => {
  const s = network.ipv4[0]
  if (s === undefined) {
    return E.left(invalidConfig(`network ${network.name} has no IPv4 subnet; HNS networks here need one (--subnet)`))
  }
  return E.right({
    Name: hnsNetworkName(network),
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
