/**
 * Cluster networks as the IPAM sees them: what a host needs to reach the cluster (ClusterIpamDeps),
 * the definition of a cluster network by the first host that creates it, the check that a later
 * host's request names the same network, and the options a cluster pool carries so that the host
 * knows the network without asking the cluster again.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { invalidConfig, type CoreError } from '../errors.js'
import { boundsOf, familyOf, overlaps, type IpAddress, type Subnet } from '../model/Address.js'
import {
  CLUSTER_BLOCK_OPTION,
  CLUSTER_MTU_OPTION,
  CLUSTER_OPTION,
  CLUSTER_VNI_OPTION,
  ClusterNetworkName,
  DEFAULT_BLOCK_PREFIX,
  FIRST_VNI,
  MAX_VNI,
  type ClusterNetwork,
  type HostName
} from '../model/Cluster.js'
import type { Pool } from '../model/Ipam.js'
import type { Clock } from '../ports/Clock.js'
import type { Cluster } from '../ports/Cluster.js'
import { checkBlockPrefix } from './blocks.js'
import { formatAddress, forbiddenReason } from './Range.js'

/**
 * How a cluster network's MTU is made: the underlay's, less what the overlay's encapsulation
 * costs (Overlay.overhead: 50 for VXLAN over IPv4).
 *
 * @category model
 */
export interface ClusterSettings {
  /** The MTU of the hosts' underlay network (default 1500). */
  readonly underlayMtu?: number
  readonly overhead: number
  /** Blocks of a network this host defines without `isthmus.cluster.block` (`serve --block-size`; default 26). */
  readonly blockPrefix?: number
}

/** VXLAN over IPv4 on a 1500-byte underlay. @category constants */
export const DEFAULT_CLUSTER_SETTINGS: Required<ClusterSettings> = {
  underlayMtu: 1500,
  overhead: 50,
  blockPrefix: DEFAULT_BLOCK_PREFIX
}

/** What the IPAM needs to serve cluster pools: the cluster, and this host's name in it. @category model */
export interface ClusterIpamDeps {
  readonly cluster: Cluster
  readonly host: HostName
  readonly settings?: ClusterSettings
}

/** A request to be (or join) a cluster network, from a pool request or a network's options. */
export interface ClusterRequest {
  readonly name: ClusterNetworkName
  readonly subnet?: Subnet
  readonly gateway?: IpAddress
  /** Options that may choose the block size, VNI and MTU of a network defined now. */
  readonly options: Readonly<Record<string, string>>
  /** The network's own MTU when its spec gives one (a network defined now takes it). */
  readonly mtu?: number
}

/**
 * The cluster network an options record names: undefined when it names none, InvalidConfig for a
 * name a cluster could not hold.
 *
 * @category utils
 */
export const clusterOption = (
  options: Readonly<Record<string, string>> | undefined
): E.Either<CoreError, ClusterNetworkName | undefined> => {
  const v = options?.[CLUSTER_OPTION]
  if (v === undefined) return E.right(undefined)
  return ClusterNetworkName.is(v)
    ? E.right(v)
    : E.left(
        invalidConfig(
          `${CLUSTER_OPTION}=${JSON.stringify(v)} is not a cluster network name (letters, digits, _ . -; at most 63)`
        )
      )
}

const intOption = (
  options: Readonly<Record<string, string>>,
  key: string,
  min: number,
  max: number
): E.Either<CoreError, number | undefined> => {
  const v = options[key]
  if (v === undefined) return E.right(undefined)
  const n = Number(v)
  return /^\d+$/.test(v.trim()) && n >= min && n <= max
    ? E.right(n)
    : E.left(invalidConfig(`${key}=${JSON.stringify(v)} is not a whole number from ${min} to ${max}`))
}

/** The options a cluster pool and its network record carry. @category utils */
export const clusterOptions = (n: ClusterNetwork): Record<string, string> => ({
  [CLUSTER_OPTION]: n.name,
  [CLUSTER_BLOCK_OPTION]: String(n.blockPrefix),
  [CLUSTER_VNI_OPTION]: String(n.vni),
  ...(n.mtu === undefined ? {} : { [CLUSTER_MTU_OPTION]: String(n.mtu) })
})

/** The block prefix a cluster pool's options carry (the default when absent). @category utils */
export const blockPrefixOf = (pool: Pool): number => {
  const v = Number(pool.options[CLUSTER_BLOCK_OPTION])
  return Number.isInteger(v) && v > 0 ? v : DEFAULT_BLOCK_PREFIX
}

const sameOrRefused = (req: ClusterRequest, n: ClusterNetwork): E.Either<CoreError, ClusterNetwork> => {
  const differs = (what: string, asked: string, stored: string, hint: string) =>
    E.left(invalidConfig(`cluster network ${n.name} has ${what} ${stored}, not ${asked}: ${hint}`))
  if (req.subnet !== undefined && req.subnet !== n.subnet) {
    return differs(
      'subnet',
      req.subnet,
      n.subnet,
      `give subnet ${n.subnet} (Docker: --subnet ${n.subnet}, or --ipam-opt ${CLUSTER_OPTION}=${n.name} to take it), ` +
        `or no subnet (CNI), or another cluster name`
    )
  }
  if (req.gateway !== undefined && req.gateway !== n.gateway) {
    return differs(
      'gateway',
      req.gateway,
      n.gateway,
      `its gateway is the same on every host; give ${n.gateway} or none`
    )
  }
  const block = req.options[CLUSTER_BLOCK_OPTION]
  if (block !== undefined && Number(block) !== n.blockPrefix) {
    return differs('blocks of /', block, String(n.blockPrefix), `leave ${CLUSTER_BLOCK_OPTION} out or give the same`)
  }
  const vni = req.options[CLUSTER_VNI_OPTION]
  if (vni !== undefined && Number(vni) !== n.vni) {
    return differs('VXLAN id', vni, String(n.vni), `leave ${CLUSTER_VNI_OPTION} out or give the same`)
  }
  return E.right(n)
}

/** The lowest VXLAN id from FIRST_VNI that no cluster network holds. */
const lowestFreeVni = (taken: ReadonlyArray<ClusterNetwork>): number => {
  const used = new Set(taken.map((n) => n.vni))
  let v = FIRST_VNI
  while (used.has(v)) v++
  return v
}

// A define that lost a race for the VNI it picked picks again, this many times in all.
const DEFINE_ATTEMPTS = 5

/** The record of a network defined now by this host, its VNI picked among `taken` unless given. */
const newNetwork = (
  req: ClusterRequest,
  subnet: Subnet,
  settings: Required<ClusterSettings>,
  clock: Clock,
  taken: ReadonlyArray<ClusterNetwork>
): E.Either<CoreError, ClusterNetwork> => {
  const family = familyOf(subnet)
  const b = boundsOf(subnet)
  // The overlay routes IPv4 blocks only (VXLAN over an IPv4 underlay, proxy ARP): an IPv6 cluster
  // network would be defined, addressed, and never reach another host.
  if (family !== 4) {
    return E.left(
      invalidConfig(`cluster network ${req.name}: ${subnet} is an IPv6 subnet; cluster networks are IPv4 only`)
    )
  }
  return pipe(
    E.Do,
    E.bind('blockPrefix', () =>
      pipe(
        intOption(req.options, CLUSTER_BLOCK_OPTION, 1, family === 4 ? 32 : 128),
        E.chain((p) => checkBlockPrefix(subnet, p ?? settings.blockPrefix))
      )
    ),
    E.bind('vni', () => intOption(req.options, CLUSTER_VNI_OPTION, 1, MAX_VNI)),
    E.bind('mtu', () => intOption(req.options, CLUSTER_MTU_OPTION, 576, 65535)),
    E.bind('gateway', () => {
      const gw = req.gateway ?? formatAddress(b.first + 1n, family)
      const why = forbiddenReason(subnet, gw)
      return why === undefined
        ? E.right(gw)
        : E.left(invalidConfig(`gateway ${gw} of cluster network ${req.name} is ${why}`))
    }),
    E.map(({ blockPrefix, vni, mtu, gateway }): ClusterNetwork => ({
      name: req.name,
      subnet,
      gateway,
      vni: vni ?? lowestFreeVni(taken),
      blockPrefix,
      createdAt: clock.now().toISOString(),
      mtu: mtu ?? req.mtu ?? settings.underlayMtu - settings.overhead
    }))
  )
}

/**
 * The cluster network `req` names: the stored one, checked to be the same network (subnet,
 * gateway, block size, VNI when the request gives them); else defined now by this host, which
 * needs the subnet. Two hosts defining it at once get one record (Cluster.networks.define).
 *
 * @category utils
 */
export const clusterNetworkFor = (
  deps: ClusterIpamDeps,
  clock: Clock,
  req: ClusterRequest
): TE.TaskEither<CoreError, ClusterNetwork> => {
  const { cluster } = deps
  const settings = { ...DEFAULT_CLUSTER_SETTINGS, ...deps.settings }
  const define = (left: number): TE.TaskEither<CoreError, ClusterNetwork> =>
    pipe(
      cluster.networks.list(),
      TE.chain((taken) => {
        const stored = taken.find((n) => n.name === req.name)
        if (stored !== undefined) return TE.fromEither(sameOrRefused(req, stored))
        if (req.subnet === undefined) {
          return TE.left(
            invalidConfig(
              `cluster network ${req.name} is not defined yet: the first network made with it must give its subnet`
            )
          )
        }
        const subnet = req.subnet
        const clash = taken.find((n) => overlaps(n.subnet, subnet))
        if (clash !== undefined) {
          return TE.left(
            invalidConfig(
              `subnet ${subnet} of cluster network ${req.name} overlaps cluster network ${clash.name} (${clash.subnet})`
            )
          )
        }
        return pipe(
          TE.fromEither(newNetwork(req, subnet, settings, clock, taken)),
          TE.chain((n) =>
            pipe(
              cluster.networks.define(n),
              TE.orElse((e) =>
                // another host took the VNI this one picked in the meantime: pick again
                e._tag === 'AlreadyExists' && req.options[CLUSTER_VNI_OPTION] === undefined && left > 1
                  ? define(left - 1)
                  : TE.left(e)
              )
            )
          ),
          TE.chainEitherK((n) => sameOrRefused(req, n))
        )
      })
    )
  return pipe(
    cluster.networks.get(req.name),
    TE.chain(
      O.fold(
        () => define(DEFINE_ATTEMPTS),
        (n) => TE.fromEither(sameOrRefused(req, n))
      )
    )
  )
}
