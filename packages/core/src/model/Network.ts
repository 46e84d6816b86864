/** A network: the host side (bridge, MTU, masquerade) and the pools its addresses come from. */
import * as t from 'io-ts'
import { AddressSpace, IfName, NetworkId, PoolId } from '../ids.js'
import { IpAddress, Subnet } from './Address.js'

/**
 * One subnet of a network. `poolId` is set when isthmus's IPAM owns the addresses; without it
 * the runtime's IPAM assigns them (Docker with another --ipam-driver) and isthmus only records.
 * `ownedPool` is true when the control plane requested the pool itself (and so releases it with
 * the network); a pool the runtime requested (Docker RequestPool) is the runtime's to release.
 *
 * @category codecs
 */
export const NetworkSubnet = t.intersection(
  [t.type({ subnet: Subnet }), t.partial({ poolId: PoolId, gateway: IpAddress, ownedPool: t.boolean })],
  'NetworkSubnet'
)
/** @category model */
export type NetworkSubnet = t.TypeOf<typeof NetworkSubnet>

/**
 * What an SDN controller knows the network as (Contrail: tenant/project and virtual network).
 *
 * @category codecs
 */
export const ControllerNetwork = t.intersection(
  [
    t.type({ tenant: t.string, network: t.string }),
    t.partial({ projectId: t.string, networkId: t.string, subnetId: t.string, hostNetworkName: t.string })
  ],
  'ControllerNetwork'
)
/** @category model */
export type ControllerNetwork = t.TypeOf<typeof ControllerNetwork>

/** @category codecs */
export const Network = t.intersection(
  [
    t.type({
      id: NetworkId,
      name: t.string,
      addressSpace: AddressSpace,
      ipv4: t.array(NetworkSubnet),
      ipv6: t.array(NetworkSubnet),
      internal: t.boolean,
      ipMasquerade: t.boolean,
      options: t.record(t.string, t.string),
      createdAt: t.string
    }),
    t.partial({
      mtu: t.number,
      bridge: IfName,
      controller: ControllerNetwork
    })
  ],
  'Network'
)
/** @category model */
export type Network = t.TypeOf<typeof Network>
