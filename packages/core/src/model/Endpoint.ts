/** An endpoint: one interface of one sandbox on one network, and what it holds. */
import * as t from 'io-ts'
import { ContainerId, EndpointId, IfName, NetworkId, PoolId, SandboxKey } from '../ids.js'
import { Cidr, IpAddress, MacAddress, Subnet } from './Address.js'

/**
 * An address of an endpoint. `fromRuntime`: the runtime's own IPAM call reserved it (Docker
 * RequestAddress) and the runtime will release it (ReleaseAddress after DeleteEndpoint).
 *
 * @category codecs
 */
export const EndpointAddress = t.intersection(
  [t.type({ cidr: Cidr }), t.partial({ poolId: PoolId, gateway: IpAddress, fromRuntime: t.boolean })],
  'EndpointAddress'
)
/** @category model */
export type EndpointAddress = t.TypeOf<typeof EndpointAddress>

/**
 * A route inside the sandbox; no `gw` means on-link. `ifNone`: a default the caller did not ask
 * for, installed only when the sandbox has no route to `dst` yet, so that a second attachment
 * (CNI `net1`) does not take the default route of the first.
 *
 * @category codecs
 */
export const Route = t.intersection([t.type({ dst: Subnet }), t.partial({ gw: IpAddress, ifNone: t.boolean })], 'Route')
/** @category model */
export type Route = t.TypeOf<typeof Route>

/** @category codecs */
export const Protocol = t.keyof({ tcp: null, udp: null, sctp: null }, 'Protocol')

/** Docker `-p` / CNI `portMappings`: host port to container port. @category codecs */
export const PortMapping = t.intersection(
  [t.type({ protocol: Protocol, containerPort: t.number, hostPort: t.number }), t.partial({ hostIp: IpAddress })],
  'PortMapping'
)
/** @category model */
export type PortMapping = t.TypeOf<typeof PortMapping>

/**
 * Who the endpoint belongs to. A CNI attachment is (container, ifName); Docker names only its
 * endpoint id at CreateEndpoint.
 *
 * WORKAROUND: CNM never sends the container id before Join (libnetwork remote.md), so a Docker
 * endpoint is owned by its endpoint id and learns its sandbox at Join.
 *
 * @category codecs
 */
export const EndpointOwner = t.union(
  [
    t.type({ kind: t.literal('container'), containerId: ContainerId, ifName: IfName }),
    t.type({ kind: t.literal('docker'), endpointId: EndpointId })
  ],
  'EndpointOwner'
)
/** @category model */
export type EndpointOwner = t.TypeOf<typeof EndpointOwner>

/** Identity an SDN controller gave the endpoint (Contrail VM, interface, instance-ip). @category codecs */
export const ControllerEndpoint = t.partial(
  { vmId: t.string, interfaceId: t.string, instanceIpId: t.string, projectId: t.string },
  'ControllerEndpoint'
)
/** @category model */
export type ControllerEndpoint = t.TypeOf<typeof ControllerEndpoint>

/** @category codecs */
export const Endpoint = t.intersection(
  [
    t.type({
      id: EndpointId,
      networkId: NetworkId,
      owner: EndpointOwner,
      addresses: t.array(EndpointAddress),
      hostIfName: IfName,
      peerIfName: IfName,
      routes: t.array(Route),
      portMappings: t.array(PortMapping),
      createdAt: t.string
    }),
    t.partial({
      mac: MacAddress,
      sandbox: SandboxKey,
      sandboxIfName: IfName,
      controller: ControllerEndpoint,
      /** The dataplane's id of the host side (HNS endpoint ID), from `EnsuredEndpoint`. */
      hostEndpointId: t.string
    })
  ],
  'Endpoint'
)
/** @category model */
export type Endpoint = t.TypeOf<typeof Endpoint>
