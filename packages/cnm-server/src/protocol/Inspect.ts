/**
 * The inspection answers isthmus adds beside Docker's IpamDriver methods (docs/cnm.md,
 * "Inspecting IPAM"): `/IpamDriver.Leases`, `Networks`, `Metrics`, `Version`, `Configuration`.
 * Docker never calls them; they are isthmus's own, so their fields are camelCase like the
 * records in the state directory. `isthmus leases --json` and `isthmus networks --json` print
 * the same documents.
 */
import * as t from 'io-ts'
import {
  AddressSpace,
  Cidr,
  ContainerId,
  EndpointId,
  EndpointOwner,
  Family,
  IfName,
  IpAddress,
  IpRange,
  MacAddress,
  NetworkId,
  PoolId,
  SandboxKey,
  Subnet
} from '@isthmus/core'

const optional =
  <P extends t.Props>(required: P, name: string) =>
  <O extends t.Props>(opt: O) =>
    t.intersection([t.type(required), t.partial(opt)], name)

/** `{"network": id, name or id prefix}` in a POST body, or `?network=` on a GET. */
export const LeasesRequest = t.partial({ network: t.string }, 'LeasesRequest')
export type LeasesRequest = t.TypeOf<typeof LeasesRequest>

export const AttachmentAddress = optional({ cidr: Cidr }, 'AttachmentAddress')({ poolId: PoolId, gateway: IpAddress })

/** One live attachment: one endpoint record. */
export const Attachment = optional(
  {
    endpointId: EndpointId,
    owner: EndpointOwner,
    networkId: NetworkId,
    addresses: t.readonlyArray(AttachmentAddress),
    hostIfName: IfName,
    since: t.string
  },
  'Attachment'
)({ containerId: ContainerId, networkName: t.string, mac: MacAddress, sandbox: SandboxKey, sandboxIfName: IfName })
export type Attachment = t.TypeOf<typeof Attachment>

export const ReservationKind = t.keyof({ gateway: null, aux: null, runtime: null, orphan: null }, 'ReservationKind')

/** A held address that no live attachment holds. */
export const Reservation = optional(
  {
    kind: ReservationKind,
    address: IpAddress,
    addressSpace: AddressSpace,
    poolId: PoolId,
    holder: t.string,
    since: t.string
  },
  'Reservation'
)({ networkId: NetworkId, networkName: t.string, ref: t.string, mac: MacAddress })
export type Reservation = t.TypeOf<typeof Reservation>

export const LeasesResponse = t.type(
  { attachments: t.readonlyArray(Attachment), reserved: t.readonlyArray(Reservation) },
  'LeasesResponse'
)
export type LeasesResponse = t.TypeOf<typeof LeasesResponse>

/**
 * A pool's usage. Counts are JSON numbers: exact up to 2^53, so an IPv6 pool's `size` and
 * `free` are approximate (as in Prometheus, whose samples are floats).
 */
export const PoolUsage = optional(
  {
    poolId: PoolId,
    addressSpace: AddressSpace,
    subnet: Subnet,
    family: Family,
    ranges: t.readonlyArray(IpRange),
    size: t.number,
    used: t.number,
    free: t.number,
    leased: t.number
  },
  'PoolUsage'
)({ gateway: IpAddress })
export type PoolUsage = t.TypeOf<typeof PoolUsage>

export const NetworkSubnet = optional(
  { subnet: Subnet },
  'InspectNetworkSubnet'
)({ gateway: IpAddress, poolId: PoolId })

export const NetworkView = optional(
  {
    id: NetworkId,
    name: t.string,
    addressSpace: AddressSpace,
    subnets: t.readonlyArray(NetworkSubnet),
    pools: t.readonlyArray(PoolUsage),
    internal: t.boolean,
    ipMasquerade: t.boolean,
    endpoints: t.number,
    createdAt: t.string
  },
  'NetworkView'
)({ bridge: IfName, mtu: t.number })
export type NetworkView = t.TypeOf<typeof NetworkView>

export const NetworksResponse = t.type(
  { networks: t.readonlyArray(NetworkView), otherPools: t.readonlyArray(PoolUsage) },
  'NetworksResponse'
)
export type NetworksResponse = t.TypeOf<typeof NetworksResponse>

/** Calls answered on the plugin socket since the daemon started, by method and outcome. */
export const RequestCount = t.type(
  { op: t.string, outcome: t.string, count: t.number, durationSeconds: t.number },
  'RequestCount'
)
export type RequestCount = t.TypeOf<typeof RequestCount>

export const LeaseCounts = t.type(
  { attachment: t.number, gateway: t.number, aux: t.number, runtime: t.number, orphan: t.number },
  'LeaseCounts'
)

export const MetricsResponse = t.type(
  {
    requests: t.readonlyArray(RequestCount),
    networks: t.number,
    endpoints: t.number,
    leases: LeaseCounts,
    pools: t.readonlyArray(t.type({ poolId: PoolId, size: t.number, used: t.number, free: t.number, leased: t.number }))
  },
  'MetricsResponse'
)
export type MetricsResponse = t.TypeOf<typeof MetricsResponse>

export const VersionResponse = t.type(
  {
    version: t.string,
    pluginApi: t.type({ version: t.string, contentType: t.string, implements: t.readonlyArray(t.string) }),
    cniVersions: t.readonlyArray(t.string),
    node: t.string
  },
  'VersionResponse'
)
export type VersionResponse = t.TypeOf<typeof VersionResponse>

/** Where addresses and identity come from; a Contrail control plane without its credentials. */
export const ControlPlaneSettings = t.union(
  [
    t.type({ kind: t.literal('builtin') }),
    t.type({
      kind: t.literal('contrail'),
      api: t.string,
      auth: t.keyof({ none: null, keystone: null }),
      vrouterAgent: t.string,
      owner: t.string
    })
  ],
  'ControlPlaneSettings'
)
export type ControlPlaneSettings = t.TypeOf<typeof ControlPlaneSettings>

/** The dataplane the daemon runs on, and for HNS how it reaches it. */
export const DataplaneSettings = t.union(
  [
    t.type({ kind: t.literal('linux') }),
    t.intersection([t.type({ kind: t.literal('hns') }), t.partial({ hnsUrl: t.string })])
  ],
  'DataplaneSettings'
)
export type DataplaneSettings = t.TypeOf<typeof DataplaneSettings>

/** The daemon's effective settings. Never a credential. */
export const ConfigurationResponse = optional(
  {
    stateDir: t.string,
    socket: t.string,
    socketActivated: t.boolean,
    logLevel: t.string,
    chainPrefix: t.string,
    dataplane: DataplaneSettings,
    controlPlane: ControlPlaneSettings
  },
  'ConfigurationResponse'
)({ metricsAddr: t.string, pluginSpec: t.string })
export type ConfigurationResponse = t.TypeOf<typeof ConfigurationResponse>

/**
 * `/IpamDriver.Shutdown`: no argument (an empty body or `{}`); the answer is `{}`, sent before the
 * daemon stops (docs/cnm.md, "Stopping through the socket").
 */
export const ShutdownResponse = t.type({}, 'ShutdownResponse')
export type ShutdownResponse = t.TypeOf<typeof ShutdownResponse>
