/**
 * Cluster records (multi-host): the hosts of a cluster, the networks that span them, and the
 * blocks of a cluster network's subnet that each host allocates from. They live in the cluster's
 * shared store (etcd), not in a host's own Store.
 */
import * as t from 'io-ts'
import { IpAddress, MacAddress, Subnet } from './Address.js'

// A DNS label or a dotted name: what `hostname` prints, and what a Docker -o value may carry.
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/

// One codec for both names: what they accept is the same, only their brand differs.
const nameCodec = <A extends string>(name: string, what: string): t.Type<A, string> =>
  new t.Type<A, string, unknown>(
    name,
    (u): u is A => typeof u === 'string' && NAME.test(u),
    (u, c) =>
      typeof u === 'string' && NAME.test(u)
        ? t.success(u as A)
        : t.failure(u, c, `${what} (letters, digits, _ . -; at most 63)`),
    (a) => a
  )

export interface HostNameBrand {
  readonly HostName: unique symbol
}
/** A cluster host's name (its hostname by default). @category model */
export type HostName = string & HostNameBrand
/** @category codecs */
export const HostName = nameCodec<HostName>('HostName', 'a host name')

export interface ClusterNetworkNameBrand {
  readonly ClusterNetworkName: unique symbol
}
/** The name every host gives one cluster network (Docker `-o isthmus.cluster=<name>`). @category model */
export type ClusterNetworkName = string & ClusterNetworkNameBrand
/** @category codecs */
export const ClusterNetworkName = nameCodec<ClusterNetworkName>('ClusterNetworkName', 'a cluster network name')

/**
 * The network option that makes a network a cluster network: Docker `-o isthmus.cluster=<name>`
 * (or `--ipam-opt`), and what a CNI netconf's `cluster` turns into.
 *
 * @category constants
 */
export const CLUSTER_OPTION = 'isthmus.cluster'

/**
 * One daemon of the cluster, as it registers itself under an etcd lease: gone from the list
 * when its lease expires (the daemon died or lost etcd for longer than the lease's TTL).
 *
 * @category codecs
 */
export const HostRecord = t.intersection(
  [
    t.type({
      name: HostName,
      /** Where other hosts send its VXLAN traffic. */
      underlay: IpAddress,
      /** The MAC of its VXLAN devices (one per cluster network, all with this MAC). */
      vtepMac: MacAddress,
      since: t.string
    }),
    t.partial({ version: t.string })
  ],
  'HostRecord'
)
/** @category model */
export type HostRecord = t.TypeOf<typeof HostRecord>

/**
 * A network that spans the cluster: one subnet, one gateway address (on every host's bridge),
 * one VXLAN id, cut into blocks of `blockPrefix` bits for the hosts.
 *
 * @category codecs
 */
export const ClusterNetwork = t.intersection(
  [
    t.type({
      name: ClusterNetworkName,
      subnet: Subnet,
      gateway: IpAddress,
      vni: t.number,
      blockPrefix: t.number,
      createdAt: t.string
    }),
    t.partial({ mtu: t.number })
  ],
  'ClusterNetwork'
)
/** @category model */
export type ClusterNetwork = t.TypeOf<typeof ClusterNetwork>

/**
 * A block of a cluster network's subnet with its host affinity: only `host` allocates in it.
 * Released by its host when empty, or by an operator's `isthmus hosts rm` for a host that is gone;
 * never by a timeout.
 *
 * @category codecs
 */
export const Block = t.type(
  {
    network: ClusterNetworkName,
    cidr: Subnet,
    host: HostName,
    claimedAt: t.string
  },
  'Block'
)
/** @category model */
export type Block = t.TypeOf<typeof Block>

/**
 * Options a cluster pool (and its network record) carries besides CLUSTER_OPTION, so a host
 * knows its cluster networks without asking the cluster: the block size (also how a network's
 * creator chooses it, `-o isthmus.cluster.block=24`), the VXLAN id and the MTU. The VNI may be
 * given at creation too (`isthmus.cluster.vni`); else the lowest free one from FIRST_VNI.
 *
 * @category constants
 */
export const CLUSTER_BLOCK_OPTION = 'isthmus.cluster.block'
/** @category constants */
export const CLUSTER_VNI_OPTION = 'isthmus.cluster.vni'
/** @category constants */
export const CLUSTER_MTU_OPTION = 'isthmus.cluster.mtu'

/** Blocks of /26 (62 containers per host before a second block) unless a network says otherwise. @category constants */
export const DEFAULT_BLOCK_PREFIX = 26
/** The first VXLAN id isthmus picks, leaving the low ids to overlays configured by hand. @category constants */
export const FIRST_VNI = 4096
/** The largest VXLAN id (24 bits). @category constants */
export const MAX_VNI = 0xffffff

/** The cluster network a stored record's options name, if any (a name the codec refuses is none). @category utils */
export const clusterNameOf = (
  options: Readonly<Record<string, string>> | undefined
): ClusterNetworkName | undefined => {
  const v = options?.[CLUSTER_OPTION]
  return v !== undefined && ClusterNetworkName.is(v) ? v : undefined
}
