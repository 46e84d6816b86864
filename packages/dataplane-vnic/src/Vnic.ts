/**
 * A VNIC: a veth pair an integrator made before any runtime asked for it (ciao-launcher does this
 * for every container): the host side is a port of the tenant's bridge, the container side carries
 * the instance's MAC and waits in the host namespace for the runtime to move it. Its address is
 * recorded here, not configured on the host: with overlapping tenant subnets the host must hold
 * no tenant address, and the runtime configures it inside the container.
 */
import * as t from 'io-ts'
import { AddressSpace, EndpointId, IfName, IpAddress, MacAddress } from '@isthmus/core'

/**
 * What an integrator registers. `addressSpace` is the tenant's IPAM address space (Docker:
 * `--ipam-opt address-space=<space>`): the same address may be registered once in each space.
 * `bridge`, when given, must be the network's bridge (`-o bridge=<name>`), which catches a VNIC
 * registered for one tenant and claimed by another tenant's network.
 *
 * @category codecs
 */
export const VnicSpec = t.intersection(
  [
    t.type({
      hostIfName: IfName,
      peerIfName: IfName,
      address: IpAddress,
      mac: MacAddress,
      addressSpace: AddressSpace
    }),
    t.partial({ bridge: IfName, instance: t.string })
  ],
  'VnicSpec'
)
/** @category model */
export type VnicSpec = t.TypeOf<typeof VnicSpec>

/** A registered VNIC, and the endpoint using it while one does. @category codecs */
export const Vnic = t.intersection([VnicSpec, t.partial({ endpointId: EndpointId })], 'Vnic')
/** @category model */
export type Vnic = t.TypeOf<typeof Vnic>

/** Whether two registrations describe the same VNIC (registering it again is then a no-op). @category utils */
export const sameVnic = (a: VnicSpec, b: VnicSpec): boolean =>
  a.hostIfName === b.hostIfName &&
  a.peerIfName === b.peerIfName &&
  a.address === b.address &&
  a.mac === b.mac &&
  a.addressSpace === b.addressSpace &&
  a.bridge === b.bridge
