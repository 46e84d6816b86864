/**
 * The Overlay port: the kernel side of a cluster network on one host (Linux: a VXLAN device per
 * cluster network beside its bridge, `@isthmus/dataplane-linux`). Traffic between hosts is routed:
 * every host's bridge holds the network's one gateway address, and a host reaches another host's
 * blocks through a route, a neighbour and an FDB entry per remote host, so the kernel's entries
 * grow with hosts and blocks, not with endpoints.
 */
import type * as TE from 'fp-ts/lib/TaskEither.js'
import type { CoreError } from '../errors.js'
import type { IpAddress, MacAddress, Subnet } from '../model/Address.js'
import type { HostName } from '../model/Cluster.js'
import type { Network } from '../model/Network.js'

/** This host's end of every tunnel. @category ports */
export interface Vtep {
  /** This host's underlay address: the VXLAN devices' local address. */
  readonly underlay: IpAddress
  /** The MAC every VXLAN device of this host carries (other hosts' neighbour entries name it). */
  readonly mac: MacAddress
}

/** One cluster network on this host: its local record (with its bridge) and its VXLAN id. @category ports */
export interface OverlaySpec {
  readonly network: Network
  readonly vni: number
  readonly vtep: Vtep
}

/** Another host of the cluster and the blocks of this network it holds. @category ports */
export interface OverlayPeer {
  readonly host: HostName
  readonly underlay: IpAddress
  readonly vtepMac: MacAddress
  readonly blocks: ReadonlyArray<Subnet>
}

/** @category ports */
export interface Overlay {
  /** Bytes the encapsulation costs (VXLAN over IPv4: 50): a cluster network's MTU is the underlay's less this. */
  readonly overhead: number
  /** This host's VTEP as the dataplane finds it (the underlay address given, the MAC derived or read). */
  readonly vtep: () => TE.TaskEither<CoreError, Vtep>
  /** Make (or repair) the network's VXLAN device, learning off, and let the bridge answer for remote blocks. */
  readonly ensure: (spec: OverlaySpec) => TE.TaskEither<CoreError, void>
  /**
   * Make the network's kernel entries exactly those for `peers` (added, changed, removed as
   * needed): a host no longer listed is forgotten.
   */
  readonly setPeers: (spec: OverlaySpec, peers: ReadonlyArray<OverlayPeer>) => TE.TaskEither<CoreError, void>
  /** Remove the network's VXLAN device and entries; absent succeeds. */
  readonly remove: (spec: OverlaySpec) => TE.TaskEither<CoreError, void>
}
