/**
 * Cluster pools: a host's pool of a cluster network. It is requested with CLUSTER_OPTION among its
 * options (Docker `--ipam-opt isthmus.cluster=blue`, the control plane for `-o` or a CNI netconf's
 * `cluster`), or made of a pool Docker requested without it (`-o` only: Docker asks for the pool
 * before it shows the network's options). Either way the cluster network is found, or defined by
 * this first host, and the pool takes its subnet, gateway and options; it starts with no block.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { invalidConfig, notFound, type CoreError } from '../errors.js'
import type { PoolId } from '../ids.js'
import { familyOf } from '../model/Address.js'
import { clusterNameOf, type ClusterNetworkName } from '../model/Cluster.js'
import type { Pool } from '../model/Ipam.js'
import { spaceLock } from './allocation.js'
import { clusterNetworkFor, clusterOptions, type ClusterIpamDeps } from './clusterNetworks.js'
import type { Hints } from './hint.js'
import type { LeaseDeps } from './lease.js'
import type { PoolRequest } from './Pools.js'

const noCluster = (name: ClusterNetworkName): CoreError =>
  invalidConfig(
    `the network asks for cluster network ${name}, and this isthmus runs without a cluster store: start it with one (etcd) to use cluster networks`
  )

const unsupported = (name: ClusterNetworkName, what: string): CoreError =>
  invalidConfig(
    `cluster network ${name}: ${what} are not supported (each host hands out the addresses of its own blocks of the subnet)`
  )

/** One pool per cluster network on a host: a second one, in another address space, would share its blocks. */
const oneLocalPool = (
  deps: LeaseDeps,
  name: ClusterNetworkName,
  except: (p: Pool) => boolean
): TE.TaskEither<CoreError, void> =>
  pipe(
    deps.store.pools.list(),
    TE.chain((pools) => {
      const other = pools.find((p) => clusterNameOf(p.options) === name && !except(p))
      return other === undefined
        ? TE.right(undefined)
        : TE.left(
            invalidConfig(
              `cluster network ${name} is already pool ${other.id} of this host (address space ${other.addressSpace}): use that address space`
            )
          )
    })
  )

/**
 * Ipam.requestPool for a request naming cluster network `name`: the network's subnet (the
 * request's must be the same; none takes it), its gateway and options, then the engine's own
 * pool request (an identical request gets the same pool).
 *
 * @category constructors
 */
export const requestClusterPool =
  (deps: LeaseDeps, plain: (req: PoolRequest) => TE.TaskEither<CoreError, Pool>) =>
  (req: PoolRequest, name: ClusterNetworkName): TE.TaskEither<CoreError, Pool> => {
    const c: ClusterIpamDeps | undefined = deps.cluster
    if (c === undefined) return TE.left(noCluster(name))
    if ((req.ranges ?? []).length > 0) return TE.left(unsupported(name, 'address ranges (--ip-range, rangeStart/End)'))
    if (Object.keys(req.aux ?? {}).length > 0) return TE.left(unsupported(name, 'auxiliary addresses'))
    if ((req.excluded ?? []).length > 0) return TE.left(unsupported(name, 'excluded addresses'))
    return pipe(
      clusterNetworkFor(c, deps.clock, {
        name,
        options: req.options ?? {},
        ...(req.subnet === undefined ? {} : { subnet: req.subnet }),
        ...(req.gateway === undefined ? {} : { gateway: req.gateway })
      }),
      TE.chainFirst(() =>
        oneLocalPool(deps, name, (p) => p.addressSpace === req.addressSpace && clusterNameOf(p.options) === name)
      ),
      TE.chain((n) =>
        plain({
          ...req,
          family: familyOf(n.subnet),
          subnet: n.subnet,
          gateway: n.gateway,
          ranges: [],
          options: { ...(req.options ?? {}), ...clusterOptions(n) }
        })
      )
    )
  }

/**
 * Make a pool Docker requested without the cluster option a pool of cluster network `name`, at
 * CreateNetwork (`-o isthmus.cluster=<name>`). It holds only its gateway then; its subnet and
 * gateway must be the cluster network's (or define it, on the first host). A pool already of
 * `name` is answered as it is.
 *
 * @category constructors
 */
export const adoptPool =
  (deps: LeaseDeps, hints: Hints) =>
  (
    poolId: PoolId,
    name: ClusterNetworkName,
    options: Readonly<Record<string, string>>,
    mtu?: number
  ): TE.TaskEither<CoreError, Pool> => {
    const c = deps.cluster
    if (c === undefined) return TE.left(noCluster(name))
    const { store } = deps
    const read = pipe(store.pools.get(poolId), TE.chain(TE.fromOption(() => notFound('pool', poolId))))
    const locked = pipe(
      read,
      TE.chain((pool): TE.TaskEither<CoreError, Pool> => {
        const already = clusterNameOf(pool.options)
        if (already === name) return TE.right(pool)
        if (already !== undefined) {
          return TE.left(invalidConfig(`pool ${pool.id} is part of cluster network ${already}, not ${name}`))
        }
        if (pool.ranges.length > 0) return TE.left(unsupported(name, 'address ranges (--ip-range)'))
        if (pool.reserved.length > 0) return TE.left(unsupported(name, 'auxiliary or excluded addresses'))
        if (pool.refs > 1) {
          return TE.left(
            invalidConfig(
              `pool ${pool.id} serves another network of this host too: it cannot become part of cluster network ${name}`
            )
          )
        }
        return pipe(
          store.leases.list(pool.addressSpace, pool.id),
          TE.chain((leases) => {
            const handedOut = leases.filter((l) => l.owner.kind !== 'gateway' && l.owner.kind !== 'aux')
            return handedOut.length === 0
              ? TE.right(undefined)
              : TE.left(
                  invalidConfig(
                    `pool ${pool.id} has addresses handed out already (${handedOut[0]!.address}): it cannot become part of cluster network ${name}`
                  )
                )
          }),
          TE.chain(() =>
            clusterNetworkFor(c, deps.clock, {
              name,
              subnet: pool.subnet,
              options,
              ...(pool.gateway === undefined ? {} : { gateway: pool.gateway }),
              ...(mtu === undefined ? {} : { mtu })
            })
          ),
          TE.chainFirst(() => oneLocalPool(deps, name, (p) => p.id === pool.id)),
          TE.chain((n) => {
            const next: Pool = { ...pool, options: { ...pool.options, ...clusterOptions(n) } }
            return pipe(
              store.pools.put(next),
              TE.map(() => {
                hints.forget(pool.id)
                return next
              })
            )
          })
        )
      })
    )
    return pipe(
      read,
      TE.chain((pool) => store.withLock(spaceLock(pool.addressSpace), locked))
    )
  }
