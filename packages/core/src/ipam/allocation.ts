/**
 * Allocation: a lease for an owner from a pool, an address given (static), the next free one
 * after the pool's cursor (dynamic), or the pool's gateway (moved when Docker names another).
 */
import * as E from 'fp-ts/lib/Either.js'
import * as T from 'fp-ts/lib/Task.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { invalidConfig, notFound, poolExhausted, type CoreError } from '../errors.js'
import type { IpAddress, MacAddress } from '../model/Address.js'
import { CLUSTER_OPTION, clusterNameOf } from '../model/Cluster.js'
import type { Lease, LeaseOwner, Pool } from '../model/Ipam.js'
import { nextCandidate } from './Allocator.js'
import { missLimit, neverOf, type Hints, type PoolState } from './hint.js'
import { claim, leaseOf, type LeaseDeps } from './lease.js'
import { excludedOf } from './Pools.js'
import { addressAt, forbiddenReason, indexOf } from './Range.js'

/** @category model */
export interface AllocateOptions {
  /** A given address (Docker --ip, CNI `ips`/`IP=`): exactly this one or an error. */
  readonly address?: IpAddress
  readonly mac?: MacAddress
  /**
   * Let `address` lie anywhere in the subnet, outside the pool's ranges too. Docker's --ip-range
   * only bounds the addresses the IPAM picks itself: --ip and --aux-address may name any address
   * of the subnet (libnetwork's allocator marks them in a subnet-wide bitmap). Excluded
   * addresses, the gateway, the network and broadcast addresses stay refused.
   */
  readonly anywhereInSubnet?: boolean
  /** How the lease is written (the Store's PutOptions): Docker's own picks need not be durable. */
  readonly durable?: boolean
  /**
   * `address` held by `owner` already is AddressInUse too, not that lease again. For an owner that
   * stands for many requesters (Docker's RequestAddress, whose one owner is the runtime): a second
   * request for a held address is another container's, and an address given out is exclusive
   * whoever asked. Without it, an owner that names one requester (an endpoint, a Contrail
   * reservation) gets its lease back when it asks again (a retried CNI ADD).
   */
  readonly exclusive?: boolean
}

/** The lock of an address space: pool creation and changes are serialised per space. */
export const spaceLock = (space: string): string => `space:${space}`

// Why `address` may not be handed out by the pool, if it may not.
const refusal = (st: PoolState, address: IpAddress, anywhereInSubnet: boolean): string | undefined => {
  const pool = st.pool
  return (
    forbiddenReason(pool.subnet, address) ??
    (address === pool.gateway ? 'the gateway' : undefined) ??
    (indexOf(st.span, address) !== undefined
      ? undefined
      : excludedOf(pool).includes(address)
        ? 'excluded from the pool'
        : anywhereInSubnet
          ? undefined
          : 'outside the ranges of the pool')
  )
}

/** The address asked for, or why not; the hint learns that it is taken either way. */
export const staticLease = (
  deps: LeaseDeps,
  st: PoolState,
  owner: LeaseOwner,
  address: IpAddress,
  opts: AllocateOptions
) => {
  const why = refusal(st, address, opts.anywhereInSubnet ?? false)
  if (why !== undefined) {
    const pool = st.pool.id
    return TE.left(invalidConfig(`requested address ${address} cannot be handed out by pool ${pool}: it is ${why}`))
  }
  const i = indexOf(st.span, address)
  return pipe(
    claim(deps)(st.pool, address, owner, {
      ...(opts.mac === undefined ? {} : { mac: opts.mac }),
      durable: opts.durable ?? true,
      exclusive: opts.exclusive ?? false
    }),
    T.map((r) => {
      if (i !== undefined && (E.isRight(r) || r.left._tag === 'AddressInUse')) st.free.markUsed(i)
      return r
    })
  )
}

/**
 * The next free address after the cursor. Each candidate is marked used before the store is
 * asked, so that concurrent calls try different ones; after `missLimit` taken candidates in a
 * row, or a full cycle without one, the hint is rebuilt from the store, once.
 */
export const dynamicLease = (
  { store, clock }: LeaseDeps,
  hints: Hints,
  st: PoolState,
  owner: LeaseOwner,
  mac: MacAddress | undefined,
  durable: boolean
): TE.TaskEither<CoreError, Lease> => {
  const { pool, span, free } = st
  const limit = missLimit(span.size)
  const afterReload = (): TE.TaskEither<CoreError, Lease> =>
    pipe(
      hints.reload(st),
      TE.chain(() => step(true, 0))
    )
  const step =
    (reloaded: boolean, misses: number): TE.TaskEither<CoreError, Lease> =>
    () => {
      const i = nextCandidate(free, st.cursor)
      if (i === undefined) {
        // a full cycle found nothing: another process may have released addresses
        return reloaded ? TE.left(poolExhausted(pool.id))() : afterReload()()
      }
      free.markUsed(i)
      st.cursor = i
      const lease = leaseOf(clock)(pool, addressAt(span, i), owner, mac)
      st.inflight.add(i)
      return pipe(
        store.leases.reserve(lease, { durable }),
        T.map((r) => {
          st.inflight.delete(i)
          if (E.isLeft(r)) free.markFree(i)
          return r
        }),
        TE.chain((reserved) => {
          // the cursor only orders the next search; failing to store it must not fail this lease
          if (reserved) {
            return pipe(
              store.leases.setCursor(pool.id, lease.address),
              T.map(() => E.right(lease))
            )
          }
          return !reloaded && misses + 1 >= limit ? afterReload() : step(reloaded, misses + 1)
        })
      )()
    }
  return step(false, 0)
}

// The gateway moves to `target`: the old lease released, the pool record and the hint updated.
const moveGateway = ({ store }: LeaseDeps, st: PoolState, pool: Pool, target: IpAddress, lease: Lease) => {
  const current = pool.gateway
  const moved: Pool = { ...pool, gateway: target }
  return pipe(
    current === undefined ? TE.right(undefined) : store.leases.release(pool.addressSpace, current, { kind: 'gateway' }),
    TE.chain(() => store.pools.put(moved)),
    TE.map(() => {
      st.pool = moved
      const old = current === undefined ? undefined : indexOf(st.span, current)
      st.never = neverOf(moved, st.span)
      if (old !== undefined && !st.never.has(old)) st.free.markFree(old)
      for (const i of st.never) st.free.markUsed(i)
      return lease
    })
  )
}

/**
 * The pool's gateway lease. Docker asks for the gateway through RequestAddress (type gateway)
 * after RequestPool, with the address of --gateway if the user gave one; the pool record is
 * updated under the space's lock.
 */
const gatewayLease = (deps: LeaseDeps, st: PoolState, address?: IpAddress): TE.TaskEither<CoreError, Lease> =>
  deps.store.withLock(
    spaceLock(st.pool.addressSpace),
    pipe(
      deps.store.pools.get(st.pool.id),
      TE.chain(TE.fromOption(() => notFound('pool', st.pool.id))),
      TE.chain((pool) => {
        const current = pool.gateway
        const target = address ?? current
        if (target === undefined) return TE.left(invalidConfig(`pool ${pool.id} has no gateway to give`))
        const cluster = clusterNameOf(pool.options)
        if (target !== current && cluster !== undefined) {
          // every host's bridge holds the one gateway: it cannot move on one host alone
          return TE.left(
            invalidConfig(
              `the gateway of cluster network ${cluster} is ${current ?? 'unset'} on every host: give --gateway ${current ?? ''} or none`
            )
          )
        }
        if (target !== current) {
          const why =
            forbiddenReason(pool.subnet, target) ?? (excludedOf(pool).includes(target) ? 'excluded' : undefined)
          if (why !== undefined) return TE.left(invalidConfig(`gateway ${target} is ${why}`))
        }
        return pipe(
          claim(deps)(pool, target, { kind: 'gateway' }),
          TE.chain((lease) => (target === current ? TE.right(lease) : moveGateway(deps, st, pool, target, lease)))
        )
      })
    )
  )

/** A lease for `owner` from a pool of one host (and a cluster pool's gateway). */
export const leaseFrom = (
  deps: LeaseDeps,
  hints: Hints,
  st: PoolState,
  owner: LeaseOwner,
  opts: AllocateOptions
): TE.TaskEither<CoreError, Lease> =>
  owner.kind === 'gateway'
    ? gatewayLease(deps, st, opts.address)
    : opts.address !== undefined
      ? staticLease(deps, st, owner, opts.address, opts)
      : dynamicLease(deps, hints, st, owner, opts.mac, opts.durable ?? true)

/**
 * A lease for `owner` from the pool `poolId` (Ipam.allocate). A cluster pool hands out addresses
 * only inside the blocks its host holds (clusterAllocation.ts); every other pool as it always has.
 */
export const allocate =
  (deps: LeaseDeps, hints: Hints, inCluster: ClusterLease) =>
  (poolId: Pool['id'], owner: LeaseOwner, opts: AllocateOptions = {}): TE.TaskEither<CoreError, Lease> =>
    pipe(
      hints.stateOf(poolId),
      TE.chain((st) =>
        owner.kind !== 'gateway' && st.pool.options[CLUSTER_OPTION] !== undefined
          ? inCluster(st, owner, opts)
          : leaseFrom(deps, hints, st, owner, opts)
      )
    )

/** How a cluster pool hands out an address (clusterAllocation.ts). */
export type ClusterLease = (st: PoolState, owner: LeaseOwner, opts: AllocateOptions) => TE.TaskEither<CoreError, Lease>
