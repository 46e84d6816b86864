/**
 * HNS v1 JSON as hcsshim v0.8.6 sends and reads it (the `internal/hns` package of
 * https://github.com/microsoft/hcsshim; docs/contrail.md, "HNS"): the envelope of every HNSCall,
 * HNSNetwork and HNSEndpoint. Keys are PascalCase and `ID` is upper-case; every field is optional
 * on the wire (omitempty) except what HNS always fills on what it returns.
 */
import * as t from 'io-ts'

/** `{"Success", "Error", "Output"}`: the answer of every HNSCall. @category codecs */
export const HnsEnvelope = t.intersection(
  [t.type({ Success: t.boolean }), t.partial({ Error: t.string, Output: t.unknown })],
  'HnsEnvelope'
)
/** @category model */
export type HnsEnvelope = t.TypeOf<typeof HnsEnvelope>

/** @category codecs */
export const HnsSubnet = t.intersection(
  [t.type({ AddressPrefix: t.string }), t.partial({ GatewayAddress: t.string, Policies: t.array(t.unknown) })],
  'HnsSubnet'
)
/** @category model */
export type HnsSubnet = t.TypeOf<typeof HnsSubnet>

/** @category codecs */
export const MacPool = t.type({ StartMacAddress: t.string, EndMacAddress: t.string }, 'MacPool')

const networkFields = {
  Name: t.string,
  Type: t.string,
  NetworkAdapterName: t.string,
  SourceMac: t.string,
  Policies: t.array(t.unknown),
  MacPools: t.array(MacPool),
  Subnets: t.array(HnsSubnet),
  DNSSuffix: t.string,
  /** comma-separated */
  DNSServerList: t.string,
  DNSServerCompartment: t.number,
  ManagementIP: t.string,
  AutomaticDNS: t.boolean
}

/** A network as isthmus asks for it (POST /networks/): no ID yet. @category codecs */
export const HnsNetworkRequest = t.exact(
  t.intersection([t.type({ Name: t.string, Type: t.string }), t.partial(networkFields)]),
  'HnsNetworkRequest'
)
/** @category model */
export type HnsNetworkRequest = t.TypeOf<typeof HnsNetworkRequest>

/** A network as HNS returns it. @category codecs */
export const HnsNetwork = t.intersection(
  [t.type({ ID: t.string, Name: t.string, Type: t.string }), t.partial(networkFields)],
  'HnsNetwork'
)
/** @category model */
export type HnsNetwork = t.TypeOf<typeof HnsNetwork>

const endpointFields = {
  Name: t.string,
  VirtualNetwork: t.string,
  VirtualNetworkName: t.string,
  Policies: t.array(t.unknown),
  /** `AA-BB-CC-DD-EE-FF` */
  MacAddress: t.string,
  IPAddress: t.string,
  DNSSuffix: t.string,
  DNSServerList: t.string,
  GatewayAddress: t.string,
  EnableInternalDNS: t.boolean,
  DisableICC: t.boolean,
  PrefixLength: t.number,
  IsRemoteEndpoint: t.boolean,
  EnableLowMetric: t.boolean,
  Namespace: t.type({ ID: t.string }),
  EncapOverhead: t.number
}

/** An endpoint as isthmus asks for it (POST /endpoints/). @category codecs */
export const HnsEndpointRequest = t.exact(
  t.intersection([t.type({ Name: t.string, VirtualNetwork: t.string }), t.partial(endpointFields)]),
  'HnsEndpointRequest'
)
/** @category model */
export type HnsEndpointRequest = t.TypeOf<typeof HnsEndpointRequest>

/** An endpoint as HNS returns it. @category codecs */
export const HnsEndpoint = t.intersection(
  [t.type({ ID: t.string, Name: t.string, VirtualNetwork: t.string }), t.partial(endpointFields)],
  'HnsEndpoint'
)
/** @category model */
export type HnsEndpoint = t.TypeOf<typeof HnsEndpoint>

/** HNS's MAC format: upper-case, dash separated. @category utils */
export const toHnsMac = (mac: string): string => mac.toUpperCase().replace(/:/g, '-')
/** The MAC format of Contrail and the agent: lower-case, colon separated. @category utils */
export const fromHnsMac = (mac: string): string => mac.toLowerCase().replace(/-/g, ':')
/** The MAC syntax HNS accepts: six dash-separated hex pairs. @category utils */
export const isHnsMac = (mac: string): boolean => /^[0-9A-Fa-f]{2}(-[0-9A-Fa-f]{2}){5}$/.test(mac)
