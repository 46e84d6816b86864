/**
 * The Dataplane port: the host network. Linux bridge and veth (`@isthmus/dataplane-linux`),
 * HNS on Windows. Every `ensure` returns what exists when it exists; every delete of something
 * absent succeeds.
 */
import type * as TE from 'fp-ts/lib/TaskEither.js'
import type { CoreError } from '../errors.js'
import type { EndpointId, IfName, NetworkId, SandboxKey } from '../ids.js'
import type { MacAddress } from '../model/Address.js'
import type { Endpoint, PortMapping, Route } from '../model/Endpoint.js'
import type { Network } from '../model/Network.js'
import type { Placement } from '../model/Sandbox.js'

/** @category ports */
export interface HostNetwork {
  /** The host-side device endpoints attach to (a bridge on Linux, an HNS network on Windows). */
  readonly device: IfName | string
  /** Whether isthmus created it now (and so removes it with the network). */
  readonly created: boolean
}

/** What the dataplane needs to make an endpoint's host side. @category ports */
export interface EndpointSpec {
  readonly endpoint: Endpoint
  readonly network: Network
}

/** The interface as it ended up after placement. @category ports */
export interface PlacedInterface {
  /** The link the runtime must move (RuntimeMoves) or the name inside the sandbox (PluginMoves). */
  readonly ifName: IfName
  readonly mac: MacAddress
  readonly sandbox?: SandboxKey
  /**
   * The routes the sandbox got, when not all of the endpoint's: a route marked `ifNone` is left
   * out when the sandbox already had one to its destination. Absent: all of them.
   */
  readonly routes?: ReadonlyArray<Route>
}

/**
 * What `ensureEndpoint` made or found. A dataplane that adopts links someone else created (the
 * VNICs an integrator registered) names them, and the endpoint record keeps those names instead
 * of the ones derived from the endpoint id.
 *
 * @category ports
 */
export interface EnsuredEndpoint {
  /** The sandbox-side MAC. */
  readonly mac: MacAddress
  readonly hostIfName?: IfName
  readonly peerIfName?: IfName
  /**
   * The dataplane's own id of the endpoint's host side, when it has one that is not a link name
   * (HNS: the HNS endpoint's ID, which Docker on Windows and the vRouter agent need). Kept in the
   * endpoint record as `hostEndpointId`.
   */
  readonly hostEndpointId?: string
}

/** What on the host belongs to isthmus, for garbage collection. @category ports */
export interface DataplaneInventory {
  readonly links: ReadonlyArray<IfName>
  /**
   * The endpoint each link was made for, as the link itself records it (Linux: the host end's
   * alias `isthmus:endpoint:<id>`, set by the `ip` process that makes the pair). gc removes such a
   * link only while holding that endpoint's lock, which an endpoint creation holds from its
   * addresses to its record, so a link being made is never taken for a stray. A link not named
   * here (made by an older isthmus, or by hand) is judged by the records alone.
   */
  readonly endpoints?: Readonly<Record<string, EndpointId>>
  /** Host devices isthmus created for its networks (bridges on Linux); `removeLink` removes one. */
  readonly networks: ReadonlyArray<string>
  /**
   * The network each device of `networks` was made for, for the devices this dataplane can show
   * are its own (Linux: the bridge's mark `isthmus:net:<id>`, and that network's firewall rules in
   * this dataplane's chains; another isthmus instance on the host has a chain prefix of its own).
   * gc removes such a device whose network has no record when told which networks are its
   * caller's alone (`GcOptions.orphanDevices`).
   */
  readonly devices?: Readonly<Record<string, NetworkId>>
  /** Packet-filter objects of isthmus's own, for operators (Linux: `iptables:nat/ISTHMUS-DNAT`). */
  readonly chains?: ReadonlyArray<string>
}

/** @category ports */
export interface Dataplane {
  /**
   * Whether this dataplane makes the host a router of every network's subnets (Linux bridge: the
   * gateway is an address of the host on the bridge). Then two networks may not overlap even in
   * different address spaces, since the host's routes would be ambiguous. False when each
   * tenant's gateway lives off the host (ciao's CNCI behind VNICs), so tenants' subnets may
   * overlap across address spaces. Absent counts as true.
   */
  readonly routesSubnetsOnHost?: boolean
  /**
   * Make the network's host device, or repair the one there. A device an operator made is adopted
   * and never removed. One that carries the mark of a network in `sharedWith` is adopted too: the
   * caller made this network share that one's device on purpose (a Docker network made on a CNI
   * network's bridge, `-o cni-network`, same pools). One that carries any other isthmus network's
   * mark is a leftover, taken over (re-marked as this network's, so it goes with it): the caller
   * has made sure that no other stored network uses the device (core's ensureNetwork does). Work
   * still running in the background on a device of that name (link removals, spare refills) is
   * finished first.
   */
  readonly ensureNetwork: (
    network: Network,
    sharedWith?: ReadonlyArray<NetworkId>
  ) => TE.TaskEither<CoreError, HostNetwork>
  readonly deleteNetwork: (network: Network) => TE.TaskEither<CoreError, void>
  /**
   * Make the endpoint's links (veth pair on the network's device); returns the sandbox-side MAC.
   * `placement`, when already known (CNI ADD), lets the dataplane make the sandbox side where it
   * will end up: on Linux that saves moving it between namespaces, which waits for an RCU grace
   * period (~20 ms) in the kernel. `place` must still be called with the same placement.
   */
  readonly ensureEndpoint: (spec: EndpointSpec, placement?: Placement) => TE.TaskEither<CoreError, EnsuredEndpoint>
  /** Put the sandbox side where the placement says, with the endpoint's addresses and routes. */
  readonly place: (spec: EndpointSpec, placement: Placement) => TE.TaskEither<CoreError, PlacedInterface>
  readonly deleteEndpoint: (spec: EndpointSpec) => TE.TaskEither<CoreError, void>
  readonly publishPorts: (spec: EndpointSpec, ports: ReadonlyArray<PortMapping>) => TE.TaskEither<CoreError, void>
  readonly unpublishPorts: (spec: EndpointSpec) => TE.TaskEither<CoreError, void>
  /**
   * What on the host belongs to isthmus. With `scope`, only the links on those networks' devices:
   * other isthmus instances (another state directory, another runtime) may share the host, and
   * their links are not ours to judge. Links a dataplane keeps in reserve (Linux spare pairs) are
   * left out: they have no endpoint record, nor does one just handed to an endpoint being created.
   */
  readonly inventory: (scope?: ReadonlyArray<Network>) => TE.TaskEither<CoreError, DataplaneInventory>
  /** Remove a link found by `inventory` that no endpoint owns; absent succeeds. */
  readonly removeLink: (name: IfName) => TE.TaskEither<CoreError, void>
}
