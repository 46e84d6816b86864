/**
 * The NetworkDriver API as dockerd 20.10 speaks it (libnetwork's
 * https://github.com/moby/libnetwork/blob/master/docs/remote.md, and docs/cnm.md for what a real
 * daemon sends). Wire names stay as on the wire; a field that always holds one kind of id is
 * decoded into it here, once.
 */
import * as t from 'io-ts'
import { Cidr, EndpointId, IpAddress, MacAddress, NetworkId, SandboxKey, Subnet } from '@isthmus/core'
import { idField, nullable, optionalIdField, Options } from './common.js'

/**
 * `IPAMData` of one family: Gateway and aux addresses carry the pool's prefix length
 * (`10.1.0.1/24`), so the gateway is a CIDR.
 */
const ipamData = (family: 4 | 6) =>
  t.intersection(
    [
      t.type({ AddressSpace: t.string, Pool: idField(Subnet, `IPv${family}Data.Pool`) }),
      t.partial({
        Gateway: optionalIdField(Cidr, `IPv${family}Data.Gateway`),
        AuxAddresses: nullable(t.record(t.string, t.string))
      })
    ],
    'IPAMData'
  )
/** `IPAMData` as AllocateNetwork (swarm only) carries it: acknowledged, so only its shape is checked. */
const IPAMDataShape = t.intersection(
  [
    t.type({ AddressSpace: t.string, Pool: t.string }),
    t.partial({ Gateway: t.string, AuxAddresses: nullable(t.record(t.string, t.string)) })
  ],
  'IPAMData'
)
export const IPv4Data = ipamData(4)
export const IPv6Data = ipamData(6)
export type IPAMData = t.TypeOf<typeof IPv4Data>

const NetworkRef = { NetworkID: idField(NetworkId, 'NetworkID') }
const EndpointRef = { NetworkID: idField(NetworkId, 'NetworkID'), EndpointID: idField(EndpointId, 'EndpointID') }
/** Requests that name an endpoint: only its id is used, so only its id is checked. */
const EndpointOnly = { NetworkID: t.string, EndpointID: idField(EndpointId, 'EndpointID') }

export const GetCapabilitiesResponse = t.type(
  { Scope: t.keyof({ local: null, global: null }), ConnectivityScope: t.keyof({ local: null, global: null }) },
  'GetCapabilitiesResponse'
)
export type GetCapabilitiesResponse = t.TypeOf<typeof GetCapabilitiesResponse>

export const CreateNetworkRequest = t.intersection(
  [
    t.type(NetworkRef),
    t.partial({ Options, IPv4Data: nullable(t.array(IPv4Data)), IPv6Data: nullable(t.array(IPv6Data)) })
  ],
  'CreateNetworkRequest'
)
export type CreateNetworkRequest = t.TypeOf<typeof CreateNetworkRequest>

/** Swarm only: nothing in it is used, so nothing in it is checked beyond its shape. */
export const AllocateNetworkRequest = t.intersection(
  [
    t.type({ NetworkID: t.string }),
    t.partial({ Options, IPv4Data: nullable(t.array(IPAMDataShape)), IPv6Data: nullable(t.array(IPAMDataShape)) })
  ],
  'AllocateNetworkRequest'
)
export const AllocateNetworkResponse = t.type({ Options: t.record(t.string, t.string) }, 'AllocateNetworkResponse')

export const NetworkRequest = t.type(NetworkRef, 'NetworkRequest')
export type NetworkRequest = t.TypeOf<typeof NetworkRequest>

/** FreeNetwork (swarm only): acknowledged, the id unused. */
export const FreeNetworkRequest = t.type({ NetworkID: t.string }, 'FreeNetworkRequest')

/** The addresses Docker's IPAM gave the endpoint, with their prefix length; empty for none. */
export const EndpointInterface = t.partial(
  {
    Address: optionalIdField(Cidr, 'Interface.Address'),
    AddressIPv6: optionalIdField(Cidr, 'Interface.Address'),
    MacAddress: optionalIdField(MacAddress, 'Interface.MacAddress')
  },
  'EndpointInterface'
)
export type EndpointInterface = t.TypeOf<typeof EndpointInterface>

/** What CreateEndpoint answers: only fields dockerd left empty (docs/cnm.md). */
export const EndpointInterfaceResponse = t.partial(
  { Address: t.string, AddressIPv6: t.string, MacAddress: t.string },
  'EndpointInterfaceResponse'
)

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === 'object' && u !== null && !Array.isArray(u)

/** A whole number in [min, max]; `name` is what an error says was expected. */
const wholeIn = (name: string, min: number, max: number) =>
  new t.Type<number, number, unknown>(
    name,
    (u): u is number => typeof u === 'number' && Number.isInteger(u) && u >= min && u <= max,
    (u, c) => (typeof u === 'number' && Number.isInteger(u) && u >= min && u <= max ? t.success(u) : t.failure(u, c)),
    t.identity
  )

/** Go's `net.IP` as JSON: an address, or `""` for none. */
export const IpOrEmpty = new t.Type<IpAddress | '', string, unknown>(
  'an IP address or ""',
  (u): u is IpAddress | '' => u === '' || IpAddress.is(u),
  (u, c) => {
    if (u === '') return t.success('')
    const ip = IpAddress.decode(u)
    return ip._tag === 'Right' ? t.success(ip.right) : t.failure(u, c, 'an IP address or ""')
  },
  (a) => a
)

const PROTOCOL_NUMBERS: ReadonlySet<unknown> = new Set([6, 17, 132])

/** An IP protocol number Docker publishes: 6 (tcp), 17 (udp), 132 (sctp). */
export const ProtocolNumber = new t.Type<6 | 17 | 132, number, unknown>(
  'a protocol number (6 tcp, 17 udp, 132 sctp)',
  (u): u is 6 | 17 | 132 => PROTOCOL_NUMBERS.has(u),
  (u, c) => (PROTOCOL_NUMBERS.has(u) ? t.success(u as 6 | 17 | 132) : t.failure(u, c)),
  t.identity
)

/** libnetwork's `types.PortBinding`: IP protocol number, container port, host address and ports. */
export const PortBinding = t.intersection(
  [
    t.type({
      Proto: ProtocolNumber,
      Port: wholeIn('a port (1-65535)', 1, 65535)
    }),
    t.partial({
      IP: IpOrEmpty,
      HostIP: IpOrEmpty,
      HostPort: wholeIn('a host port (0-65535, 0 for any)', 0, 65535),
      HostPortEnd: wholeIn('a host port (0-65535, 0 for any)', 0, 65535)
    })
  ],
  'PortBinding'
)
export type PortBinding = t.TypeOf<typeof PortBinding>

/** The option key of an endpoint's published ports (`-p`, one entry per port). */
export const PORTMAP_OPTION = 'com.docker.network.portmap'

const PortmapOption = t.partial({ [PORTMAP_OPTION]: nullable(t.array(PortBinding)) })

/** CreateEndpoint's options: any map, whose portmap is decoded with the request (nothing stored first). */
export const EndpointOptions = nullable(
  new t.Type<t.TypeOf<typeof PortmapOption> & Record<string, unknown>, Record<string, unknown>, unknown>(
    'EndpointOptions',
    (u): u is t.TypeOf<typeof PortmapOption> & Record<string, unknown> => isObject(u) && PortmapOption.is(u),
    // t.partial keeps the keys it does not know
    (u, c) =>
      (isObject(u) ? PortmapOption.validate(u, c) : t.failure(u, c, 'an object of options')) as t.Validation<
        t.TypeOf<typeof PortmapOption> & Record<string, unknown>
      >,
    (a) => a
  ),
  'EndpointOptions'
)
export type EndpointOptions = t.TypeOf<typeof EndpointOptions>

export const CreateEndpointRequest = t.intersection(
  [t.type(EndpointRef), t.partial({ Interface: nullable(EndpointInterface), Options: EndpointOptions })],
  'CreateEndpointRequest'
)
export type CreateEndpointRequest = t.TypeOf<typeof CreateEndpointRequest>

/** Only fields dockerd left empty may be returned: it fails the call on any field it set itself. */
export const CreateEndpointResponse = t.partial({ Interface: EndpointInterfaceResponse }, 'CreateEndpointResponse')
export type CreateEndpointResponse = t.TypeOf<typeof CreateEndpointResponse>

export const EndpointRequest = t.type(EndpointOnly, 'EndpointRequest')
export type EndpointRequest = t.TypeOf<typeof EndpointRequest>

export const EndpointOperInfoResponse = t.type({ Value: t.record(t.string, t.unknown) }, 'EndpointOperInfoResponse')
export type EndpointOperInfoResponse = t.TypeOf<typeof EndpointOperInfoResponse>

export const JoinRequest = t.intersection(
  // checked endpoint, sandbox, network: the order of the ranks, not of the wire
  [
    t.type({
      NetworkID: idField(NetworkId, 'NetworkID', 2),
      EndpointID: idField(EndpointId, 'EndpointID'),
      SandboxKey: idField(SandboxKey, 'SandboxKey', 1)
    }),
    t.partial({ Options })
  ],
  'JoinRequest'
)
export type JoinRequest = t.TypeOf<typeof JoinRequest>

/** RouteType 0: via NextHop; 1: connected. */
export const StaticRoute = t.intersection(
  [
    t.type({ Destination: t.string, RouteType: t.union([t.literal(0), t.literal(1)]) }),
    t.partial({ NextHop: t.string })
  ],
  'StaticRoute'
)
export type StaticRoute = t.TypeOf<typeof StaticRoute>

export const JoinResponse = t.partial(
  {
    // absent on Windows: HCS attaches the endpoint EndpointOperInfo named (hnsid)
    InterfaceName: t.type({ SrcName: t.string, DstPrefix: t.string }),
    Gateway: t.string,
    GatewayIPv6: t.string,
    StaticRoutes: t.array(StaticRoute),
    DisableGatewayService: t.boolean
  },
  'JoinResponse'
)
export type JoinResponse = t.TypeOf<typeof JoinResponse>

/** Acknowledged only (ports are published at Join): the ids are not used, so not checked. */
export const ExternalConnectivityRequest = t.intersection(
  [t.type({ NetworkID: t.string, EndpointID: t.string }), t.partial({ Options })],
  'ExternalConnectivityRequest'
)
export type ExternalConnectivityRequest = t.TypeOf<typeof ExternalConnectivityRequest>

export const DiscoveryRequest = t.type({ DiscoveryType: t.number, DiscoveryData: t.unknown }, 'DiscoveryRequest')
export type DiscoveryRequest = t.TypeOf<typeof DiscoveryRequest>
