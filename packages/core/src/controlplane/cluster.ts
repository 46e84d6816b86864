/**
 * Cluster networks in the built-in control plane: a network spec naming a cluster network
 * (`-o isthmus.cluster=<name>`, a CNI netconf's `cluster`, or a pool Docker requested with
 * `--ipam-opt isthmus.cluster=<name>`) gets that network's one subnet through a cluster pool, the
 * network's MTU (the underlay's less the overlay's cost) and, in its record's options, its name,
 * VXLAN id and block size, which the overlay and the cluster agent read.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { invalidConfig, type CoreError } from '../errors.js'
import { DEFAULT_LOCAL_SPACE } from '../ids.js'
import { familyOf } from '../model/Address.js'
import { CLUSTER_MTU_OPTION, CLUSTER_OPTION, type ClusterNetworkName } from '../model/Cluster.js'
import type { Pool } from '../model/Ipam.js'
import type { NetworkBinding, NetworkSpec, SubnetRequest } from '../ports/ControlPlane.js'
import type { ClusterIpam, Ipam } from '../ipam/Ipam.js'
import { checkGiven, fromPool } from './pools.js'

// The options of a spec that choose how a cluster network is defined (block size, VNI, MTU).
const clusterChoices = (spec: NetworkSpec, name: ClusterNetworkName): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(spec.options)) if (k.startsWith(`${CLUSTER_OPTION}.`)) out[k] = v
  if (spec.mtu !== undefined && out[CLUSTER_MTU_OPTION] === undefined) out[CLUSTER_MTU_OPTION] = String(spec.mtu)
  return { ...out, [CLUSTER_OPTION]: name }
}

/** The binding of a network on cluster pool `pool`. */
const bindingOf = (c: ClusterIpam, pool: Pool, owned: boolean): NetworkBinding => {
  const opts = pool.options
  const mtu = Number(opts[CLUSTER_MTU_OPTION])
  const ns = fromPool(pool, owned)
  const keep: Record<string, string> = {}
  for (const [k, v] of Object.entries(opts)) if (k === CLUSTER_OPTION || k.startsWith(`${CLUSTER_OPTION}.`)) keep[k] = v
  return {
    addressSpace: pool.addressSpace,
    ipv4: familyOf(pool.subnet) === 4 ? [ns] : [],
    ipv6: familyOf(pool.subnet) === 4 ? [] : [ns],
    mtu: Number.isInteger(mtu) && mtu > 0 ? mtu : c.settings.underlayMtu - c.settings.overhead,
    options: keep
  }
}

/**
 * ControlPlane.ensureNetwork for a spec of cluster network `name`. One subnet: the cluster
 * network's (a spec without one takes it; one with another is refused). A pool Docker requested
 * is made a cluster pool (Docker shows `-o` only at CreateNetwork); else the pool is requested
 * here, and given back with the network.
 *
 * @category constructors
 */
export const clusterNetwork = (
  ipam: Ipam,
  spec: NetworkSpec,
  name: ClusterNetworkName
): TE.TaskEither<CoreError, NetworkBinding> => {
  const c = ipam.cluster
  if (c === undefined) {
    return TE.left(
      invalidConfig(
        `network ${spec.name} is part of cluster network ${name}, and this isthmus runs without a cluster store: start it with one (etcd)`
      )
    )
  }
  // Docker with isthmus's IPAM: the addresses are Docker's IPAM calls, on pools of ours (poolId).
  if (!spec.managedAddresses && spec.subnets.some((r) => r.poolId === undefined)) {
    return TE.left(
      invalidConfig(
        `cluster network ${name} needs isthmus's own IPAM (Docker: --ipam-driver isthmus) to hand out its blocks`
      )
    )
  }
  if (spec.subnets.length > 1) {
    const asked = spec.subnets.map((r) => r.subnet ?? `an IPv${r.family} subnet`).join(', ')
    return TE.left(
      invalidConfig(
        `cluster network ${name} has one subnet, and network ${spec.name} asks for ${asked} (no --ipv6 either)`
      )
    )
  }
  const req: SubnetRequest = spec.subnets[0] ?? { family: 4 }
  const choices = clusterChoices(spec, name)
  if (req.poolId !== undefined) {
    const poolId = req.poolId
    return pipe(
      ipam.getPool(poolId),
      TE.chainEitherK((pool) => checkGiven(req, pool, spec.addressSpace)),
      TE.chain(() => c.adopt(poolId, name, choices, spec.mtu)),
      TE.map((pool) => bindingOf(c, pool, false))
    )
  }
  return pipe(
    ipam.requestPool({
      addressSpace: spec.addressSpace ?? DEFAULT_LOCAL_SPACE,
      family: req.family,
      ...(req.subnet === undefined ? {} : { subnet: req.subnet }),
      ...(req.ranges === undefined ? {} : { ranges: req.ranges }),
      ...(req.gateway === undefined ? {} : { gateway: req.gateway }),
      ...(req.aux === undefined ? {} : { aux: req.aux }),
      ...(req.excluded === undefined ? {} : { excluded: req.excluded }),
      options: choices
    }),
    TE.map((pool) => bindingOf(c, pool, true))
  )
}
