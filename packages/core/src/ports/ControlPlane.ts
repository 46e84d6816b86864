/**
 * The ControlPlane port: who assigns addresses and identity. The built-in IPAM by default;
 * an SDN controller (Contrail) when the network names one.
 */
import type * as TE from 'fp-ts/lib/TaskEither.js'
import type { CoreError } from '../errors.js'
import type { AddressSpace, EndpointId, IfName, NetworkId, PoolId } from '../ids.js'
import type { Cidr, Family, IpAddress, MacAddress, Subnet } from '../model/Address.js'
import type { ControllerEndpoint, Endpoint, EndpointAddress, EndpointOwner } from '../model/Endpoint.js'
import type { IpRange } from '../model/Ipam.js'
import type { ControllerNetwork, Network, NetworkSubnet } from '../model/Network.js'

/**
 * One subnet a network asks for. With `poolId` the runtime already requested the pool (Docker
 * RequestPool); without `subnet` the control plane picks one.
 *
 * @category ports
 */
export interface SubnetRequest {
  readonly family: Family
  readonly subnet?: Subnet
  readonly poolId?: PoolId
  readonly ranges?: ReadonlyArray<IpRange>
  readonly gateway?: IpAddress
  readonly aux?: Readonly<Record<string, IpAddress>>
  readonly excluded?: ReadonlyArray<IpAddress>
}

/** @category ports */
export interface NetworkSpec {
  readonly id: NetworkId
  readonly name: string
  readonly addressSpace?: AddressSpace
  readonly subnets: ReadonlyArray<SubnetRequest>
  /** Whether isthmus's IPAM assigns addresses; false when the runtime's own IPAM does. */
  readonly managedAddresses: boolean
  readonly mtu?: number
  readonly bridge?: IfName
  readonly internal: boolean
  readonly ipMasquerade: boolean
  readonly controller?: ControllerNetwork
  readonly options: Readonly<Record<string, string>>
}

/** What the control plane decided for a network. @category ports */
export interface NetworkBinding {
  readonly addressSpace: AddressSpace
  readonly ipv4: ReadonlyArray<NetworkSubnet>
  readonly ipv6: ReadonlyArray<NetworkSubnet>
  readonly controller?: ControllerNetwork
  /**
   * The network's MTU when the control plane decides it (a cluster network: the underlay's less
   * what the overlay costs); a spec's own MTU wins.
   */
  readonly mtu?: number
  /** Options the network record carries besides the spec's (a cluster network: its name, VNI, block size). */
  readonly options?: Readonly<Record<string, string>>
}

/**
 * One address an endpoint asks for: any free one, a given one (Docker --ip with our IPAM,
 * CNI `ips`), or one the runtime's IPAM already assigned (Docker CreateEndpoint Interface).
 *
 * @category ports
 */
export type AddressRequest =
  | { readonly _tag: 'Any'; readonly family: Family }
  | { readonly _tag: 'Static'; readonly address: IpAddress }
  | { readonly _tag: 'Assigned'; readonly cidr: Cidr }

/** @category ports */
export interface EndpointRequest {
  readonly id: EndpointId
  readonly owner: EndpointOwner
  readonly addresses: ReadonlyArray<AddressRequest>
  readonly mac?: MacAddress
}

/** What the control plane assigned to an endpoint. @category ports */
export interface EndpointBinding {
  readonly addresses: ReadonlyArray<EndpointAddress>
  readonly mac?: MacAddress
  readonly controller?: ControllerEndpoint
}

/** @category ports */
export interface ControlPlane {
  readonly ensureNetwork: (spec: NetworkSpec) => TE.TaskEither<CoreError, NetworkBinding>
  /** Undo `ensureNetwork`: give back pools it took; absent succeeds. */
  readonly deleteNetwork: (network: Network) => TE.TaskEither<CoreError, void>
  readonly createEndpoint: (network: Network, request: EndpointRequest) => TE.TaskEither<CoreError, EndpointBinding>
  /** Give back what `createEndpoint` assigned; absent succeeds. */
  readonly deleteEndpoint: (network: Network, endpoint: Endpoint) => TE.TaskEither<CoreError, void>
}
