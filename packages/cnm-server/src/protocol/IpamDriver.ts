/**
 * The IpamDriver API as dockerd 20.10 speaks it (libnetwork docs/ipam.md; cnm-protocol.md §4).
 * Failures go out as a non-200 with both `Err` and `Error`: on a 200 dockerd reads only `Error`.
 */
import * as t from 'io-ts'
import { nullable } from './common.js'

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

const StringMap = nullable(t.record(t.string, t.string, 'an object of string options'), 'StringMap')

export const RequestPoolRequest = t.intersection(
  [t.type({ AddressSpace: t.string }), t.partial({ Pool: t.string, SubPool: t.string, Options: StringMap, V6: t.boolean })],
  'RequestPoolRequest'
)
export type RequestPoolRequest = t.TypeOf<typeof RequestPoolRequest>

export const RequestPoolResponse = t.type(
  { PoolID: t.string, Pool: t.string, Data: t.record(t.string, t.string) },
  'RequestPoolResponse'
)
export type RequestPoolResponse = t.TypeOf<typeof RequestPoolResponse>

export const ReleasePoolRequest = t.type({ PoolID: t.string }, 'ReleasePoolRequest')
export type ReleasePoolRequest = t.TypeOf<typeof ReleasePoolRequest>

/** `Options` is JSON null for container endpoints and aux addresses (cnm-protocol.md §10.3). */
export const RequestAddressRequest = t.intersection(
  [t.type({ PoolID: t.string }), t.partial({ Address: t.string, Options: StringMap })],
  'RequestAddressRequest'
)
export type RequestAddressRequest = t.TypeOf<typeof RequestAddressRequest>

/** `Address` must carry the prefix length, or dockerd fails with `invalid CIDR address`. */
export const RequestAddressResponse = t.type(
  { Address: t.string, Data: t.record(t.string, t.string) },
  'RequestAddressResponse'
)
export type RequestAddressResponse = t.TypeOf<typeof RequestAddressResponse>

export const ReleaseAddressRequest = t.type({ PoolID: t.string, Address: t.string }, 'ReleaseAddressRequest')
export type ReleaseAddressRequest = t.TypeOf<typeof ReleaseAddressRequest>

export const IpamErrorResponse = t.type({ Err: t.string, Error: t.string }, 'IpamErrorResponse')
