/**
 * The blocks of a cluster pool: claimed in the cluster when the host's blocks are full (or an
 * address outside them is asked for), given back when their last lease goes, reconciled with the
 * cluster at a host's start. Every change of a pool's blocks happens under its address space's
 * lock, after reading the pool again, and writes the local record (its `ranges`) and the cluster
 * in an order that never lets two hosts hand out one address:
 *
 * - claim: the cluster first (create-if-absent: the block is this host's alone), then the record;
 * - give back: the record first, then the leases read again (an allocation that reserved an
 *   address in the block before the record changed is seen now, and the block is kept), then the
 *   cluster. An allocation reads the record after its reservation (clusterAllocation.ts), so of
 *   the two, one always sees the other.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as T from 'fp-ts/lib/Task.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { describe, invalidConfig, notFound, poolExhausted, type CoreError } from '../errors.js'
import type { PoolId } from '../ids.js'
import { boundsOf, type IpAddress, type Subnet } from '../model/Address.js'
import {
  CLUSTER_MTU_OPTION,
  CLUSTER_VNI_OPTION,
  clusterNameOf,
  type Block,
  type ClusterNetwork,
  type ClusterNetworkName
} from '../model/Cluster.js'
import type { Lease, Pool } from '../model/Ipam.js'
import { silentLogger, type Logger } from '../ports/Logger.js'
import type { Store } from '../ports/Store.js'
import { spaceLock } from './allocation.js'
import { blockOf, blocksOfRanges, firstFreeBlock, rangesOfBlocks } from './blocks.js'
import { blockPrefixOf, type ClusterIpamDeps } from './clusterNetworks.js'
import type { Hints } from './hint.js'
import type { LeaseDeps } from './lease.js'
import { rangesKey } from './Pools.js'
import { addressAt, indexAtOrBefore } from './Range.js'

/** The pool's own leases (gateway, aux): not handed out, so they never keep a block. */
const isHolding = (l: Lease): boolean => l.owner.kind === 'gateway' || l.owner.kind === 'aux'

/** The leases handed out in `block`. */
const handedOutIn = (leases: ReadonlyArray<Lease>, block: Subnet, prefix: number): ReadonlyArray<Lease> =>
  leases.filter((l) => !isHolding(l) && blockOf(l.address, prefix) === block)

/** The blocks a cluster pool holds. @category utils */
export const blocksOf = (pool: Pool): ReadonlyArray<Subnet> => blocksOfRanges(pool.ranges, blockPrefixOf(pool))

const withBlocks = (pool: Pool, blocks: ReadonlyArray<Subnet>): Pool => ({ ...pool, ranges: rangesOfBlocks(blocks) })

const putBlocks = (store: Store, pool: Pool, blocks: ReadonlyArray<Subnet>): TE.TaskEither<CoreError, Pool> => {
  const next = withBlocks(pool, blocks)
  return pipe(
    store.pools.put(next),
    TE.map(() => next)
  )
}

const nameOf = (pool: Pool): ClusterNetworkName => clusterNameOf(pool.options) as ClusterNetworkName

const logOf = (deps: LeaseDeps): Logger => deps.log ?? silentLogger

/** Run a task only for its effect: a failure is logged, never returned. */
const bestEffort = (log: Logger, what: string, te: TE.TaskEither<CoreError, unknown>): T.Task<void> =>
  pipe(
    te,
    T.map((r) => {
      if (E.isLeft(r)) log.warn(`${what}: ${describe(r.left)}`, { error: r.left._tag })
    })
  )

/** The cluster network a pool stands for, as its own record says (to define it again if it was removed). */
const networkOfPool = (pool: Pool, now: Date): ClusterNetwork => ({
  name: nameOf(pool),
  subnet: pool.subnet,
  gateway: pool.gateway ?? (pool.subnet.split('/')[0] as IpAddress),
  vni: Number(pool.options[CLUSTER_VNI_OPTION]),
  blockPrefix: blockPrefixOf(pool),
  createdAt: now.toISOString(),
  ...(pool.options[CLUSTER_MTU_OPTION] === undefined ? {} : { mtu: Number(pool.options[CLUSTER_MTU_OPTION]) })
})

/**
 * Claim `block` for this host. A network the cluster no longer has (removed by an operator while
 * this host still had it) is defined again from the pool's record first.
 */
const claimIn = (deps: LeaseDeps, c: ClusterIpamDeps, pool: Pool, block: Subnet): TE.TaskEither<CoreError, boolean> => {
  const record: Block = { network: nameOf(pool), cidr: block, host: c.host, claimedAt: deps.clock.now().toISOString() }
  return pipe(
    c.cluster.blocks.claim(record),
    TE.orElse((e) =>
      e._tag === 'NotFound'
        ? pipe(
            c.cluster.networks.define(networkOfPool(pool, deps.clock.now())),
            TE.chain(() => c.cluster.blocks.claim(record))
          )
        : TE.left(e)
    ),
    // The answer may have been lost with the block taken: give it back, so nothing is left half-done.
    TE.orElseFirst(() =>
      TE.fromTask(
        bestEffort(
          logOf(deps),
          `cannot give back block ${block} of cluster network ${record.network} after a failed claim`,
          c.cluster.blocks.release(record.network, block, c.host)
        )
      )
    )
  )
}

/** What a caller of `claimFor` wants: any free block, or the one holding a given address. */
export type Want =
  { readonly _tag: 'Next' } | { readonly _tag: 'Exact'; readonly block: Subnet; readonly address: IpAddress }

/** The pool now, or NotFound. */
const poolNow = (store: Store, id: PoolId): TE.TaskEither<CoreError, Pool> =>
  pipe(store.pools.get(id), TE.chain(TE.fromOption(() => notFound('pool', id))))

const heldElsewhere = (pool: Pool, want: Want & { _tag: 'Exact' }, holder: string, mine: ReadonlyArray<Subnet>) =>
  invalidConfig(
    `address ${want.address} lies in block ${want.block} of cluster network ${nameOf(pool)}, which host ${holder} holds: ` +
      `ask for it on ${holder}` +
      (mine.length > 0 ? `, or for an address in this host's blocks (${mine.join(', ')})` : '')
  )

/**
 * Give the pool `seen` one more block (or the block `want` names), under the space's lock:
 * nothing when the pool's blocks changed since `seen` (the caller tries again with them); blocks
 * the cluster says are this host's but the record lacks are taken in first (a claim whose answer
 * was lost); then the first free block of the subnet is claimed, the next one after a lost race.
 * The caller tries its allocation again afterwards.
 */
export const claimFor = (
  deps: LeaseDeps,
  c: ClusterIpamDeps,
  hints: Hints,
  seen: Pool,
  want: Want
): TE.TaskEither<CoreError, void> => {
  const { store } = deps
  const name = nameOf(seen)
  const prefix = blockPrefixOf(seen)

  // The record could not take the claimed block: give it back to the cluster.
  const putAfterClaim = (pool: Pool, keep: ReadonlyArray<Subnet>, b: Subnet): TE.TaskEither<CoreError, Pool> =>
    pipe(
      putBlocks(store, pool, [...keep, b]),
      TE.orElseFirst(() =>
        TE.fromTask(
          bestEffort(
            logOf(deps),
            `cannot give back block ${b} of cluster network ${name} after the pool record failed`,
            c.cluster.blocks.release(name, b, c.host)
          )
        )
      )
    )

  const locked = pipe(
    poolNow(store, seen.id),
    TE.chain((pool) => {
      const local = blocksOf(pool)
      if (want._tag === 'Exact' && local.includes(want.block)) return TE.right(undefined)
      if (want._tag === 'Next' && rangesKey(pool.ranges) !== rangesKey(seen.ranges)) return TE.right(undefined)
      return pipe(
        c.cluster.blocks.list(name),
        TE.chain((all) => {
          const mine = all.filter((b) => b.host === c.host).map((b) => b.cidr)
          const adopted = mine.filter((b) => !local.includes(b))
          if (adopted.length > 0) {
            logOf(deps).info(`blocks of cluster network ${name} held by this host taken into pool ${pool.id}`, {
              blocks: adopted
            })
          }
          const keep = [...local, ...adopted]
          if (want._tag === 'Exact') {
            if (mine.includes(want.block)) return putBlocks(store, pool, keep)
            const holder = all.find((b) => b.cidr === want.block)
            if (holder !== undefined) return TE.left(heldElsewhere(pool, want, holder.host, keep))
            return pipe(
              claimIn(deps, c, pool, want.block),
              TE.chain((won) =>
                won
                  ? putAfterClaim(pool, keep, want.block)
                  : pipe(
                      c.cluster.blocks.list(name),
                      TE.chain((again) => {
                        const h = again.find((b) => b.cidr === want.block)?.host ?? 'another host'
                        return TE.left<CoreError, Pool>(heldElsewhere(pool, want, h, keep))
                      })
                    )
              )
            )
          }
          if (adopted.length > 0) return putBlocks(store, pool, keep)
          const taken = new Set<string>(all.map((b) => b.cidr))
          const next = (): TE.TaskEither<CoreError, Pool> => {
            const b = firstFreeBlock(pool.subnet, prefix, taken)
            if (b === undefined) {
              return TE.left(poolExhausted(`cluster network ${name} (${pool.subnet}): every block is claimed`))
            }
            return pipe(
              claimIn(deps, c, pool, b),
              TE.chain((won) => {
                if (won) return putAfterClaim(pool, keep, b)
                taken.add(b)
                return next()
              })
            )
          }
          return next()
        })
      )
    }),
    TE.map(() => {
      hints.forget(seen.id)
    })
  )

  return store.withLock(spaceLock(seen.addressSpace), locked)
}

// A block larger than this is checked against the store directly, not through the hint.
const HINT_CHECK_LIMIT = 4096n

/**
 * Whether this process's hint shows the block still used: one of its addresses marked used (and
 * confirmed by the store, since another process may have released it) or being reserved now.
 * False means "maybe empty": the store decides, under the lock.
 */
const hintSaysUsed = (store: Store, hints: Hints, pool: Pool, block: Subnet): TE.TaskEither<CoreError, boolean> => {
  const st = hints.known(pool.id)
  if (st === undefined) return TE.right(false)
  const b = boundsOf(block)
  const lo = indexAtOrBefore(st.span, b.first - 1n) + 1n
  const hi = indexAtOrBefore(st.span, b.last)
  if (hi < lo || hi - lo >= HINT_CHECK_LIMIT) return TE.right(false)
  const marked: bigint[] = []
  for (let i = lo; i <= hi; i++) {
    if (st.inflight.has(i)) return TE.right(true)
    if (!st.never.has(i) && st.free.isUsed(i)) marked.push(i)
  }
  const probe = (k: number): TE.TaskEither<CoreError, boolean> => {
    const i = marked[k]
    if (i === undefined) return TE.right(false)
    const address = addressAt(st.span, i)
    return pipe(
      store.leases.get(pool.addressSpace, address),
      TE.chain(
        O.fold(
          () => {
            st.free.markFree(i)
            return probe(k + 1)
          },
          () => TE.right(true)
        )
      )
    )
  }
  return probe(0)
}

/**
 * Give back every block of the pool with no lease handed out (when `only` is given, only if that
 * one is empty), under the space's lock (the caller holds it). Every empty block goes, not only
 * the one of the last release: a block claimed by an allocation that then found room elsewhere
 * would otherwise stay this host's with no lease. The blocks given back.
 */
const sweep = (
  deps: LeaseDeps,
  c: ClusterIpamDeps,
  poolId: PoolId,
  only?: Subnet
): TE.TaskEither<CoreError, ReadonlyArray<Subnet>> => {
  const { store } = deps
  const log = logOf(deps)
  const emptyOf = (pool: Pool, blocks: ReadonlyArray<Subnet>) =>
    pipe(
      store.leases.list(pool.addressSpace, pool.id),
      TE.map((ls) => blocks.filter((b) => handedOutIn(ls, b, blockPrefixOf(pool)).length === 0))
    )
  const giveBack = (pool: Pool, local: ReadonlyArray<Subnet>, empty: ReadonlyArray<Subnet>) =>
    pipe(
      // the record first, then the leases again: an allocation in between keeps its block
      putBlocks(
        store,
        pool,
        local.filter((b) => !empty.includes(b))
      ),
      TE.chain(() => emptyOf(pool, empty)),
      TE.chain((still) =>
        pipe(
          still,
          TE.traverseSeqArray((b) =>
            pipe(
              c.cluster.blocks.release(nameOf(pool), b, c.host),
              TE.map(() => true),
              TE.orElse((e) => {
                log.warn(`cannot give back block ${b} of cluster network ${nameOf(pool)}: ${describe(e)}`, { poolId })
                return TE.right(false)
              })
            )
          ),
          TE.chain((done) => {
            const gone = still.filter((_, i) => done[i] === true)
            if (gone.length > 0) {
              log.info(`blocks of cluster network ${nameOf(pool)} given back`, { poolId, blocks: gone })
            }
            // what was not given back (used again, or the cluster failed) stays in the record
            const keep = local.filter((b) => !gone.includes(b))
            return keep.length === local.length - empty.length
              ? TE.right(gone)
              : pipe(
                  putBlocks(store, pool, keep),
                  TE.map(() => gone)
                )
          })
        )
      )
    )
  return pipe(
    store.pools.get(poolId),
    TE.chain(
      O.fold(
        () => TE.right<CoreError, ReadonlyArray<Subnet>>([]),
        (pool) => {
          const local = blocksOf(pool)
          if (only !== undefined && !local.includes(only)) return TE.right([])
          return pipe(
            emptyOf(pool, local),
            TE.chain((empty) =>
              empty.length === 0 || (only !== undefined && !empty.includes(only))
                ? TE.right([])
                : giveBack(pool, local, empty)
            )
          )
        }
      )
    )
  )
}

/**
 * Give back the blocks of every local cluster pool that have no lease handed out: for a host's
 * start, after leases were released behind the IPAM's back (gc of endpoints whose records are
 * gone releases their leases in the store directly). The blocks given back.
 *
 * @category utils
 */
export const releaseEmptyBlocks = (deps: {
  readonly store: Store
  readonly cluster: ClusterIpamDeps
  readonly clock: LeaseDeps['clock']
  readonly log?: Logger
}): TE.TaskEither<CoreError, ReadonlyArray<Subnet>> =>
  pipe(
    deps.store.pools.list(),
    TE.map((pools) => pools.filter((p) => clusterNameOf(p.options) !== undefined)),
    TE.chain(
      TE.traverseSeqArray((p) => deps.store.withLock(spaceLock(p.addressSpace), sweep(deps, deps.cluster, p.id)))
    ),
    TE.map((lists) => lists.flat())
  )

/**
 * After a lease of a cluster pool was released: give its block back to the cluster when no lease
 * is left in it. Never fails: what cannot be done now is logged (the block stays this host's, and
 * is used again or given back with a later release).
 */
export const releaseIfEmpty = (
  deps: LeaseDeps,
  c: ClusterIpamDeps,
  hints: Hints,
  poolId: PoolId,
  address: IpAddress
): T.Task<void> => {
  const { store } = deps
  const log = logOf(deps)
  return pipe(
    poolOf(store, hints, poolId),
    TE.chain(
      O.fold(
        () => TE.right(undefined),
        (pool) => {
          if (clusterNameOf(pool.options) === undefined) return TE.right(undefined)
          const prefix = blockPrefixOf(pool)
          const block = blockOf(address, prefix)
          return pipe(
            hintSaysUsed(store, hints, pool, block),
            TE.chain((used) =>
              used
                ? TE.right(undefined)
                : store.withLock(
                    spaceLock(pool.addressSpace),
                    pipe(
                      sweep(deps, c, poolId, block),
                      TE.map((gone) => {
                        if (gone.length > 0) hints.forget(poolId)
                      })
                    )
                  )
            )
          )
        }
      )
    ),
    (te) => bestEffort(log, `cannot give back the block of ${address} to the cluster`, te)
  )
}

/** The pool as this process knows it (its hint), else as stored. */
const poolOf = (store: Store, hints: Hints, id: PoolId): TE.TaskEither<CoreError, O.Option<Pool>> => {
  const st = hints.known(id)
  return st !== undefined ? TE.right(O.some(st.pool)) : store.pools.get(id)
}

/**
 * A cluster pool's last reference is gone (the network was deleted): give every block back whose
 * addresses are all released. A block that still has leases (endpoints whose teardown was lost)
 * stays this host's, logged: giving it back would let another host hand those addresses out.
 * Never fails; called under the space's lock, before the pool record is deleted.
 */
export const dropBlocks = (deps: LeaseDeps, pool: Pool): T.Task<void> => {
  const log = logOf(deps)
  const name = nameOf(pool)
  const blocks = blocksOf(pool)
  if (blocks.length === 0) return T.of(undefined)
  const c = deps.cluster
  if (c === undefined) {
    log.warn(`blocks of cluster network ${name} stay claimed: this isthmus has no cluster store`, { blocks })
    return T.of(undefined)
  }
  const prefix = blockPrefixOf(pool)
  return pipe(
    deps.store.leases.list(pool.addressSpace, pool.id),
    TE.chain((leases) =>
      pipe(
        blocks,
        TE.traverseSeqArray((b): TE.TaskEither<CoreError, void> => {
          const left = handedOutIn(leases, b, prefix)
          if (left.length > 0) {
            log.warn(`block ${b} of cluster network ${name} stays claimed: ${left.length} addresses are still leased`, {
              addresses: left.slice(0, 5).map((l) => l.address)
            })
            return TE.right(undefined)
          }
          return TE.fromTask(
            bestEffort(
              log,
              `cannot give back block ${b} of cluster network ${name}`,
              c.cluster.blocks.release(name, b, c.host)
            )
          )
        })
      )
    ),
    (te) => bestEffort(log, `cannot give back the blocks of cluster network ${name}`, te)
  )
}

/** What `syncBlocks` changed in one pool. @category model */
export interface BlockSync {
  readonly pool: PoolId
  readonly network: ClusterNetworkName
  /** Blocks the cluster says are this host's that the pool lacked (a claim whose answer was lost). */
  readonly adopted: ReadonlyArray<Subnet>
  /** Blocks of the pool that were free in the cluster, claimed again (an operator removed this host). */
  readonly reclaimed: ReadonlyArray<Subnet>
  /** Blocks of the pool another host holds now: dropped from the pool, their leases reported. */
  readonly lost: ReadonlyArray<{ readonly block: Subnet; readonly host: string; readonly leases: number }>
}

/**
 * Make every local cluster pool's blocks those the cluster says this host holds (a host's start):
 * blocks the pool lacks are taken in; blocks the cluster has free are claimed again; blocks
 * another host holds now (this host was removed with `isthmus hosts rm` while it was away) are
 * dropped from the pool and reported with how many leases they still carry, which conflict.
 *
 * @category utils
 */
export const syncBlocks = (deps: {
  readonly store: Store
  readonly cluster: ClusterIpamDeps
  readonly clock: LeaseDeps['clock']
  readonly log?: Logger
}): TE.TaskEither<CoreError, ReadonlyArray<BlockSync>> => {
  const { store, cluster: c } = deps
  const log = deps.log ?? silentLogger
  const one = (seen: Pool): TE.TaskEither<CoreError, BlockSync> =>
    store.withLock(
      spaceLock(seen.addressSpace),
      pipe(
        poolNow(store, seen.id),
        TE.chain((pool) => {
          const name = nameOf(pool)
          const prefix = blockPrefixOf(pool)
          const local = blocksOf(pool)
          return pipe(
            c.cluster.blocks.list(name),
            TE.bindTo('all'),
            TE.bind('leases', () => store.leases.list(pool.addressSpace, pool.id)),
            TE.chain(({ all, leases }) => {
              const mine = all.filter((b) => b.host === c.host).map((b) => b.cidr)
              const adopted = mine.filter((b) => !local.includes(b))
              const lost: Array<BlockSync['lost'][number]> = []
              const reclaimed: Subnet[] = []
              const missing = local.filter((b) => !mine.includes(b))
              return pipe(
                missing,
                TE.traverseSeqArray((b) => {
                  const holder = all.find((x) => x.cidr === b)
                  const drop = (host: string) => {
                    lost.push({ block: b, host, leases: handedOutIn(leases, b, prefix).length })
                    return TE.right<CoreError, void>(undefined)
                  }
                  if (holder !== undefined) return drop(holder.host)
                  return pipe(
                    claimIn(deps, c, pool, b),
                    TE.chain((won) => {
                      if (won) {
                        reclaimed.push(b)
                        return TE.right<CoreError, void>(undefined)
                      }
                      return drop('another host')
                    })
                  )
                }),
                TE.chain(() => {
                  const keep = [...local.filter((b) => !lost.some((l) => l.block === b)), ...adopted]
                  const changed = rangesKey(withBlocks(pool, keep).ranges) !== rangesKey(pool.ranges)
                  return changed
                    ? pipe(
                        putBlocks(store, pool, keep),
                        TE.map(() => undefined)
                      )
                    : TE.right(undefined)
                }),
                TE.map((): BlockSync => {
                  for (const l of lost) {
                    log.error(
                      `block ${l.block} of cluster network ${name} is held by ${l.host} now, not by this host (${c.host}): ` +
                        `dropped from pool ${pool.id}; ${l.leases} addresses leased here lie in it and may clash`,
                      { poolId: pool.id }
                    )
                  }
                  return { pool: pool.id, network: name, adopted, reclaimed, lost }
                })
              )
            })
          )
        })
      )
    )
  return pipe(
    store.pools.list(),
    TE.map((pools) => pools.filter((p) => clusterNameOf(p.options) !== undefined)),
    TE.chain(TE.traverseSeqArray(one))
  )
}
