/**
 * Allocation and release in a cluster pool. An address is handed out only inside a block the host
 * holds (the pool's ranges), so the usual allocation is the engine's own, on the host's store, and
 * never asks the cluster; a block is claimed when the host's are full or a static address lies
 * outside them, and given back when its last lease goes (clusterBlocks.ts).
 *
 * After its reservation an allocation reads the pool record again and keeps the address only if
 * its block is still the host's: a block being given back by another process of this host (a CNI
 * executable beside the daemon) is either seen here, or sees this lease and is kept.
 */
import type * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as T from 'fp-ts/lib/Task.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { invalidConfig, notFound, transient, type CoreError } from '../errors.js'
import type { AddressSpace, PoolId } from '../ids.js'
import type { IpAddress } from '../model/Address.js'
import { clusterNameOf } from '../model/Cluster.js'
import type { Lease, LeaseOwner } from '../model/Ipam.js'
import { dynamicLease, staticLease, type ClusterLease } from './allocation.js'
import { blockOf } from './blocks.js'
import { blocksOf, claimFor, releaseIfEmpty, type Want } from './clusterBlocks.js'
import { blockPrefixOf } from './clusterNetworks.js'
import type { Hints, PoolState } from './hint.js'
import type { LeaseDeps } from './lease.js'
import { rangesKey } from './Pools.js'
import { forbiddenReason } from './Range.js'
import { releaseLease } from './release.js'

/**
 * The claim of a pool's next block under way in this process, if any. Allocations that find the
 * pool full while one runs wait for it and share its outcome instead of queueing for the space
 * lock one after the other: with etcd cut off silently, each would otherwise wait the deadline
 * in its turn, the last of n after n deadlines; now they all fail when the one claim does.
 */
const claiming = new WeakMap<Hints, Map<PoolId, Promise<E.Either<CoreError, void>>>>()

const sharedClaim =
  (hints: Hints, pool: PoolId, claim: TE.TaskEither<CoreError, void>): TE.TaskEither<CoreError, void> =>
  () => {
    const running = claiming.get(hints) ?? new Map<PoolId, Promise<E.Either<CoreError, void>>>()
    claiming.set(hints, running)
    const under = running.get(pool)
    if (under !== undefined) return under
    const started = claim().finally(() => running.delete(pool))
    running.set(pool, started)
    return started
  }

// Rounds of "claim a block, try again" one allocation may take: each round some host claimed a
// block, so only a storm of allocations on a nearly full network gets this far.
const ROUNDS = 64

/** @category constructors */
export const clusterLease =
  (deps: LeaseDeps, hints: Hints): ClusterLease =>
  (first, owner, opts) => {
    const poolId = first.pool.id
    const giveBack = (lease: Lease): TE.TaskEither<CoreError, unknown> =>
      releaseLease(deps, hints)(lease.addressSpace, lease.address, owner)

    // Keep the lease only if its block is still the host's (see the module's comment).
    const verified = (st: PoolState, lease: Lease, rounds: number): TE.TaskEither<CoreError, Lease> =>
      pipe(
        deps.store.pools.get(poolId),
        TE.chain(
          O.fold(
            () =>
              pipe(
                giveBack(lease),
                TE.chain(() => TE.left<CoreError, Lease>(notFound('pool', poolId)))
              ),
            (now) => {
              if (rangesKey(now.ranges) !== rangesKey(st.pool.ranges)) hints.forget(poolId)
              if (blocksOf(now).includes(blockOf(lease.address, blockPrefixOf(now)))) return TE.right(lease)
              return pipe(
                giveBack(lease),
                TE.chain(() => attempt(rounds - 1))
              )
            }
          )
        )
      )

    const attempt = (rounds: number): TE.TaskEither<CoreError, Lease> =>
      pipe(
        hints.stateOf(poolId),
        TE.chain((st) => {
          const pool = st.pool
          const name = clusterNameOf(pool.options) ?? pool.id
          if (rounds === 0) {
            return TE.left(transient(`the blocks of cluster network ${name} kept changing during the allocation`))
          }
          const prefix = blockPrefixOf(pool)
          const blocks = blocksOf(pool)
          const claimThen = (want: Want): TE.TaskEither<CoreError, Lease> =>
            deps.cluster === undefined
              ? TE.left(
                  invalidConfig(
                    `pool ${pool.id} is part of cluster network ${name}, and this isthmus has no cluster store to claim a block of it in`
                  )
                )
              : pipe(
                  want._tag === 'Next'
                    ? sharedClaim(hints, pool.id, claimFor(deps, deps.cluster, hints, pool, want))
                    : claimFor(deps, deps.cluster, hints, pool, want),
                  TE.chain(() => attempt(rounds - 1))
                )

          if (opts.address !== undefined) {
            const address: IpAddress = opts.address
            const why = forbiddenReason(pool.subnet, address) ?? (address === pool.gateway ? 'its gateway' : undefined)
            if (why !== undefined) {
              return TE.left(
                invalidConfig(
                  `requested address ${address} cannot be handed out in cluster network ${name}: it is ${why}`
                )
              )
            }
            const block = blockOf(address, prefix)
            if (!blocks.includes(block)) return claimThen({ _tag: 'Exact', block, address })
            return pipe(
              staticLease(deps, st, owner, address, { ...opts, anywhereInSubnet: false }),
              TE.chain((lease) => verified(st, lease, rounds))
            )
          }
          if (blocks.length === 0) return claimThen({ _tag: 'Next' })
          return pipe(
            dynamicLease(deps, hints, st, owner, opts.mac, opts.durable ?? true),
            TE.matchE(
              (e) => (e._tag === 'PoolExhausted' ? claimThen({ _tag: 'Next' }) : TE.left(e)),
              (lease) => verified(st, lease, rounds)
            )
          )
        })
      )

    return attempt(ROUNDS)
  }

/**
 * Ipam.release with a cluster: the address given back, then its block when it was the last lease
 * there. A block that cannot be given back now is logged, never a failed release.
 *
 * @category constructors
 */
export const clusterRelease =
  (deps: LeaseDeps, hints: Hints) =>
  (space: AddressSpace, address: IpAddress, owner?: LeaseOwner): TE.TaskEither<CoreError, void> =>
    pipe(
      releaseLease(deps, hints)(space, address, owner),
      TE.chain(
        O.fold(
          () => TE.right(undefined),
          (lease) =>
            deps.cluster === undefined
              ? TE.right(undefined)
              : TE.fromTask(
                  pipe(
                    releaseIfEmpty(deps, deps.cluster, hints, lease.poolId, address),
                    T.map(() => undefined)
                  )
                )
        )
      )
    )
