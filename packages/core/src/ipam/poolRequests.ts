/**
 * Pool requests: a pool for a subnet or the first free default one, ref-counted for identical
 * requests (as Docker requires), with leases on its gateway and aux addresses; released with its
 * last reference. Both under the address space's lock.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import * as T from 'fp-ts/lib/Task.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { invalidConfig, notFound, poolExhausted, poolOverlap, type CoreError } from '../errors.js'
import type { AddressSpace, PoolId } from '../ids.js'
import { familyOf, overlaps, type IpAddress, type Subnet } from '../model/Address.js'
import { DOCKER_RUNTIME_OWNER, sameOwner, type LeaseOwner, type Pool } from '../model/Ipam.js'
import { begin, bindEach, doStep } from '../flows/saga.js'
import { silentLogger } from '../ports/Logger.js'
import { clusterNameOf } from '../model/Cluster.js'
import { spaceLock } from './allocation.js'
import { dropBlocks } from './clusterBlocks.js'
import { clusterOption } from './clusterNetworks.js'
import { requestClusterPool } from './clusterPools.js'
import { holdersOf, type Hints } from './hint.js'
import { claim, type LeaseDeps } from './lease.js'
import { buildPool, DEFAULT_V4_POOLS, DEFAULT_V6_POOLS, isIdentical, pickSubnet, type PoolRequest } from './Pools.js'
import { normaliseRanges } from './Range.js'

type Holding = readonly [IpAddress, LeaseOwner]

/** What a request gets: the identical pool of the space, one more reference, or a new pool on a subnet. */
type Pick = { readonly _tag: 'Same'; readonly pool: Pool } | { readonly _tag: 'New'; readonly subnet: Subnet }

const pickFor = (req: PoolRequest, mine: ReadonlyArray<Pool>): E.Either<CoreError, Pick> => {
  const space = req.addressSpace
  const wanted = req.subnet
  if (wanted === undefined) {
    if ((req.ranges ?? []).length > 0) return E.left(invalidConfig('address ranges need a subnet'))
    const picked = pickSubnet(
      req.family,
      mine.map((p) => p.subnet)
    )
    if (picked !== undefined) return E.right({ _tag: 'New', subnet: picked })
    const d = req.family === 4 ? DEFAULT_V4_POOLS : DEFAULT_V6_POOLS
    return E.left(poolExhausted(`default pools ${d.base} of address space ${space}`))
  }
  if (familyOf(wanted) !== req.family) {
    return E.left(invalidConfig(`subnet ${wanted} is not an IPv${req.family} subnet`))
  }
  return pipe(
    normaliseRanges(wanted, req.ranges ?? []),
    E.chain((ranges): E.Either<CoreError, Pick> => {
      // A cluster pool keeps its blocks as ranges: identical when it is of the same cluster network.
      const cluster = clusterNameOf(req.options)
      const same = mine.find((p) =>
        clusterNameOf(p.options) !== cluster
          ? false
          : cluster === undefined
            ? isIdentical(p, space, wanted, ranges)
            : p.subnet === wanted
      )
      if (same !== undefined) return E.right({ _tag: 'Same', pool: same })
      const clash = mine.find((p) => overlaps(p.subnet, wanted))
      return clash !== undefined
        ? E.left(poolOverlap(wanted, clash.subnet, space))
        : E.right({ _tag: 'New', subnet: wanted })
    })
  )
}

// Release each holding in turn; the first failure stops.
const releaseEach = (
  { store }: LeaseDeps,
  space: AddressSpace,
  held: ReadonlyArray<Holding>
): TE.TaskEither<CoreError, void> =>
  pipe(
    held,
    TE.traverseSeqArray(([a, o]) => store.leases.release(space, a, o)),
    TE.map(() => undefined)
  )

// A new pool: its holdings claimed in order, then the record stored; a failure of any step gives
// back the holdings already claimed (core's saga, which logs a give-back that fails).
const createPool = (deps: LeaseDeps, hints: Hints, pool: Pool): TE.TaskEither<CoreError, Pool> =>
  pipe(
    begin(`requestPool ${pool.id}`),
    bindEach(
      'holdings',
      () => holdersOf(pool),
      ([address, owner]) =>
        () =>
          claim(deps)(pool, address, owner),
      ([address, owner]) =>
        () =>
          deps.store.leases.release(pool.addressSpace, address, owner)
    ),
    doStep('record', () => () => deps.store.pools.put(pool)),
    RTE.map(() => {
      // a state cached under this id belongs to an earlier pool with the same span: start afresh
      hints.forget(pool.id)
      return pool
    })
  )({ log: deps.log ?? silentLogger })

/** Ipam.requestPool: a pool of one host, or a host's pool of a cluster network (clusterPools.ts). */
export const requestPool =
  (deps: LeaseDeps, hints: Hints) =>
  (req: PoolRequest): TE.TaskEither<CoreError, Pool> =>
    pipe(
      TE.fromEither(clusterOption(req.options)),
      TE.chain((name) =>
        name === undefined ? localPool(deps, hints)(req) : requestClusterPool(deps, localPool(deps, hints))(req, name)
      )
    )

const localPool =
  (deps: LeaseDeps, hints: Hints) =>
  (req: PoolRequest): TE.TaskEither<CoreError, Pool> =>
    deps.store.withLock(
      spaceLock(req.addressSpace),
      pipe(
        deps.store.pools.list(),
        TE.chain((all) =>
          TE.fromEither(
            pickFor(
              req,
              all.filter((p) => p.addressSpace === req.addressSpace)
            )
          )
        ),
        TE.chain((pick) => {
          if (pick._tag === 'New') {
            return pipe(
              TE.fromEither(buildPool(req, pick.subnet)),
              TE.chain((pool) => createPool(deps, hints, pool))
            )
          }
          const more: Pool = { ...pick.pool, refs: pick.pool.refs + 1 }
          return pipe(
            deps.store.pools.put(more),
            TE.map(() => more)
          )
        })
      )
    )

// The last reference gone: the pool's holdings, Docker's leftovers, the record and its cursor.
const dropPool = (deps: LeaseDeps, hints: Hints, pool: Pool): TE.TaskEither<CoreError, void> => {
  const { store } = deps
  const space = pool.addressSpace
  return pipe(
    releaseEach(deps, space, holdersOf(pool)),
    // Docker releases its addresses before their pool: one still held by it now is a
    // ReleaseAddress lost while the plugin was down, and would never be released otherwise.
    TE.chain(() => store.leases.list(space, pool.id)),
    TE.chain((left) =>
      releaseEach(
        deps,
        space,
        left
          .filter((l) => sameOwner(l.owner, DOCKER_RUNTIME_OWNER))
          .map((l): Holding => [l.address, DOCKER_RUNTIME_OWNER])
      )
    ),
    // A cluster pool's blocks go back to the cluster with it (those whose addresses are all free).
    TE.chainFirst(() =>
      clusterNameOf(pool.options) === undefined ? TE.right(undefined) : TE.fromTask(dropBlocks(deps, pool))
    ),
    TE.chain(() => store.pools.delete(pool.id)),
    TE.chain(() => {
      hints.forget(pool.id)
      // A hint only: a cursor left behind by a failure here is harmless.
      return pipe(
        store.leases.deleteCursor(pool.id),
        T.map(() => E.right(undefined))
      )
    })
  )
}

/** Ipam.releasePool: read again under the space's lock, since the first read took none. */
export const releasePool =
  (deps: LeaseDeps, hints: Hints) =>
  (id: PoolId): TE.TaskEither<CoreError, void> => {
    const { store } = deps
    const locked = pipe(
      store.pools.get(id),
      TE.chain(
        O.fold(
          () => TE.right(undefined),
          (pool) => (pool.refs > 1 ? store.pools.put({ ...pool, refs: pool.refs - 1 }) : dropPool(deps, hints, pool))
        )
      )
    )
    return pipe(
      store.pools.get(id),
      TE.chain(
        O.fold(
          () => TE.right(undefined),
          (pool) => store.withLock(spaceLock(pool.addressSpace), locked)
        )
      )
    )
  }

/** Ipam.getPool. */
export const getPool =
  ({ store }: LeaseDeps) =>
  (id: PoolId): TE.TaskEither<CoreError, Pool> =>
    pipe(store.pools.get(id), TE.chain(TE.fromOption(() => notFound('pool', id))))
