/**
 * Readiness of a network's addressing (CNI STATUS, spec 1.1.0: code 50 when an ADD cannot be
 * served, the spec's example being a range with no free address). Reads the store only.
 */
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type { NetworkId, PoolId } from '../ids.js'
import { familyOf, type Family } from '../model/Address.js'
import { CLUSTER_OPTION } from '../model/Cluster.js'
import { usageOf, type PoolUsage, type StoreQuery } from './inspect.js'

/**
 * The pools of network `id`, for each of the given families whose every pool has no address
 * left to hand out (an ADD takes one address per family, from any pool of it). A network not yet
 * created has none (its first ADD makes the pools); nor has a network whose addresses another
 * IPAM assigns (no pool ids); a cluster pool is never full, as it claims another block of the
 * cluster network when its blocks are. One read of each pool and of its leases.
 *
 * @category inspection
 */
export const exhaustedPools =
  (id: NetworkId, families: ReadonlyArray<Family>): StoreQuery<ReadonlyArray<PoolUsage>> =>
  (env) =>
    pipe(
      env.store.networks.get(id),
      TE.map(
        O.match(
          () => [],
          (n) =>
            [...n.ipv4, ...n.ipv6].flatMap((x) =>
              x.poolId === undefined || !families.includes(familyOf(x.subnet))
                ? []
                : [{ family: familyOf(x.subnet), poolId: x.poolId }]
            )
        )
      ),
      TE.chain(
        TE.traverseSeqArray(({ family, poolId }) =>
          pipe(
            usageIn(poolId)(env),
            TE.map((usage) => ({ family, usage }))
          )
        )
      ),
      TE.map((pools) =>
        families.flatMap((f) => {
          const mine = pools.filter((p) => p.family === f).map((p) => p.usage)
          const full = mine.flatMap((u) => (u?.free === 0n ? [u] : []))
          return full.length > 0 && full.length === mine.length ? full : []
        })
      )
    )

// A pool's usage; undefined (it may serve) for a pool gone from the store and a cluster pool.
const usageIn =
  (poolId: PoolId): StoreQuery<PoolUsage | undefined> =>
  (env) =>
    pipe(
      env.store.pools.get(poolId),
      TE.chain(
        O.match(
          () => TE.right(undefined),
          (pool) =>
            pool.options[CLUSTER_OPTION] !== undefined
              ? TE.right(undefined)
              : pipe(
                  env.store.leases.list(pool.addressSpace, pool.id),
                  TE.chainEitherK((leases) => usageOf(pool, leases))
                )
        )
      )
    )
