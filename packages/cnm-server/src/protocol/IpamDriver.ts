/**
 * The IpamDriver API as dockerd 20.10 speaks it (libnetwork's
 * https://github.com/moby/libnetwork/blob/master/docs/ipam.md, and docs/cnm.md). Failures go out
 * as a non-200 with both `Err` and `Error`: on a 200 dockerd reads only `Error`. A field that
 * always holds one kind of id is decoded into it here, once.
 */
import * as t from 'io-ts'
import { AddressSpace, IpAddress, MacAddress, PoolId, Subnet } from '@isthmus/core'
import { idField, optionalIdField, stringOptionsWith } from './common.js'

/** The `--ipam-opt` that names the pool's address space (the tenant's). */
export const ADDRESS_SPACE_OPTION = 'address-space'
/** The option that carries an endpoint's MAC address (`docker run --mac-address`). */
export const MAC_OPTION = 'com.docker.network.endpoint.macaddress'

export const CapabilitiesResponse = t.type(
  { RequiresMACAddress: t.boolean, RequiresRequestReplay: t.boolean },
  'IpamCapabilitiesResponse'
)
export type CapabilitiesResponse = t.TypeOf<typeof CapabilitiesResponse>

export const DefaultAddressSpacesResponse = t.type(
  { LocalDefaultAddressSpace: t.string, GlobalDefaultAddressSpace: t.string },
  'DefaultAddressSpacesResponse'
)
export type DefaultAddressSpacesResponse = t.TypeOf<typeof DefaultAddressSpacesResponse>

/** Checked the space, the one `--ipam-opt` names, the subnets: the order of the ranks, not of the wire. */
export const RequestPoolRequest = t.intersection(
  [
    t.type({ AddressSpace: idField(AddressSpace, 'AddressSpace') }),
    t.partial({
      Pool: optionalIdField(Subnet, 'Pool', 2),
      SubPool: optionalIdField(Subnet, 'SubPool', 3),
      Options: stringOptionsWith(
        ADDRESS_SPACE_OPTION,
        optionalIdField(AddressSpace, `Options.${ADDRESS_SPACE_OPTION}`, 1)
      ),
      V6: t.boolean
    })
  ],
  'RequestPoolRequest'
)
export type RequestPoolRequest = t.TypeOf<typeof RequestPoolRequest>

export const RequestPoolResponse = t.type(
  { PoolID: t.string, Pool: t.string, Data: t.record(t.string, t.string) },
  'RequestPoolResponse'
)
export type RequestPoolResponse = t.TypeOf<typeof RequestPoolResponse>

export const ReleasePoolRequest = t.type({ PoolID: idField(PoolId, 'PoolID') }, 'ReleasePoolRequest')
export type ReleasePoolRequest = t.TypeOf<typeof ReleasePoolRequest>

/** `Options` is JSON null for a container's address and for aux addresses (docs/cnm.md). */
export const RequestAddressRequest = t.intersection(
  [
    t.type({ PoolID: idField(PoolId, 'PoolID') }),
    t.partial({
      Address: optionalIdField(IpAddress, 'Address'),
      Options: stringOptionsWith(MAC_OPTION, optionalIdField(MacAddress, MAC_OPTION))
    })
  ],
  'RequestAddressRequest'
)
export type RequestAddressRequest = t.TypeOf<typeof RequestAddressRequest>

/** `Address` must carry the prefix length, or dockerd fails with `invalid CIDR address`. */
export const RequestAddressResponse = t.type(
  { Address: t.string, Data: t.record(t.string, t.string) },
  'RequestAddressResponse'
)
export type RequestAddressResponse = t.TypeOf<typeof RequestAddressResponse>

export const ReleaseAddressRequest = t.type(
  { PoolID: idField(PoolId, 'PoolID'), Address: idField(IpAddress, 'Address') },
  'ReleaseAddressRequest'
)
export type ReleaseAddressRequest = t.TypeOf<typeof ReleaseAddressRequest>

export const IpamErrorResponse = t.type({ Err: t.string, Error: t.string }, 'IpamErrorResponse')
