/**
 * The used-address hint of each pool, per process: a free-space bitmap over the pool's usable
 * span, its round-robin cursor, and the indices never handed out (gateway, aux). The Store stays
 * the authority: the hint only makes the usual allocation one `reserve`, and is rebuilt from the
 * pool's leases whenever the store disagrees (other processes allocate in the same space).
 */
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { notFound, type CoreError } from '../errors.js'
import type { PoolId } from '../ids.js'
import { familyOf, type IpAddress } from '../model/Address.js'
import type { LeaseOwner, Pool } from '../model/Ipam.js'
import type { Store } from '../ports/Store.js'
import { freeSpace, type FreeSpace } from './Allocator.js'
import { auxOf, excludedOf } from './Pools.js'
import { addressValue, indexAtOrBefore, indexOf, usableSpan, type Span } from './Range.js'

/**
 * What one process knows about one pool. `pool` may be stale in its refs and gateway only.
 * `never` holds the gateway and aux indices: they stay marked used in `free` (at
 * load, reload and release) even when their leases are gone.
 */
export interface PoolState {
  pool: Pool
  readonly span: Span
  readonly free: FreeSpace
  cursor: bigint
  never: Set<bigint>
  // candidates being reserved right now by this process, kept across a reload
  readonly inflight: Set<bigint>
}

/**
 * How many candidates in a row the store may report taken before the hint is rebuilt from the
 * pool's leases: √size, within [32, 4096]. Misses mean another process allocated there. Reading
 * every lease costs about as much as probing as many addresses as there are leases, so a process
 * that allocates once (a CNI ADD) should rather probe; a long-lived one should reload once and
 * get back to one `reserve` per allocation. √size bounds the probing of the first and lets the
 * second reload early.
 *
 * @category utils
 */
export const missLimit = (size: bigint): number => {
  const root = Math.ceil(Math.sqrt(Number(size)))
  return Math.min(4096, Math.max(32, root))
}

/** The addresses a pool holds leases on for itself: its gateway and aux addresses. */
export const holdersOf = (pool: Pool): ReadonlyArray<readonly [IpAddress, LeaseOwner]> => [
  ...(pool.gateway === undefined ? [] : [[pool.gateway, { kind: 'gateway' }] as const]),
  ...auxOf(pool).map((x) => [x.address, { kind: 'aux', name: x.name }] as const)
]

/** The indices of the gateway and aux addresses in `span`: never handed out. */
export const neverOf = (pool: Pool, span: Span): Set<bigint> => {
  const out = new Set<bigint>()
  for (const [a] of holdersOf(pool)) {
    const i = indexOf(span, a)
    if (i !== undefined) out.add(i)
  }
  return out
}

/** The hints of one process, loaded on first use. */
export interface Hints {
  /** The pool's hint, loaded from the store on first use (one load at a time per pool). */
  readonly stateOf: (id: PoolId) => TE.TaskEither<CoreError, PoolState>
  /** Rebuild a hint from the store: leases of the pool, the gateway and aux, what is in flight. */
  readonly reload: (st: PoolState) => TE.TaskEither<CoreError, void>
  /** The hint of a pool when loaded. */
  readonly known: (id: PoolId) => PoolState | undefined
  /** Drop a pool's hint (the pool is gone, or a new pool took its id). */
  readonly forget: (id: PoolId) => void
}

/** @category constructors */
export const makeHints = (store: Store): Hints => {
  const states = new Map<PoolId, PoolState>()
  const loading = new Map<PoolId, Promise<E.Either<CoreError, PoolState>>>()

  const stateOfPool = (pool: Pool, span: Span, at: IpAddress | undefined): PoolState => {
    const state: PoolState = {
      pool,
      span,
      free: freeSpace(span.size),
      cursor: at !== undefined && familyOf(at) === span.family ? indexAtOrBefore(span, addressValue(at)) : -1n,
      never: neverOf(pool, span),
      inflight: new Set()
    }
    for (const i of state.never) state.free.markUsed(i)
    // another load of the same pool won the race: one state per pool
    const racing = states.get(pool.id)
    if (racing !== undefined) return racing
    states.set(pool.id, state)
    return state
  }

  const loadState = (id: PoolId): TE.TaskEither<CoreError, PoolState> =>
    pipe(
      store.pools.get(id),
      TE.chain(TE.fromOption(() => notFound('pool', id))),
      TE.bindTo('pool'),
      TE.bind('span', ({ pool }) =>
        TE.fromEither(usableSpan({ subnet: pool.subnet, ranges: pool.ranges, excluded: excludedOf(pool) }))
      ),
      // the cursor is a hint: a store that cannot give it only costs round robin its start
      TE.bind('at', () =>
        pipe(
          store.leases.getCursor(id),
          TE.map(O.toUndefined),
          TE.orElse(() => TE.right<CoreError, IpAddress | undefined>(undefined))
        )
      ),
      TE.map(({ pool, span, at }) => stateOfPool(pool, span, at))
    )

  const stateOf =
    (id: PoolId): TE.TaskEither<CoreError, PoolState> =>
    () => {
      const known = states.get(id)
      if (known !== undefined) return Promise.resolve(E.right(known))
      let pending = loading.get(id)
      if (pending === undefined) {
        pending = loadState(id)().finally(() => loading.delete(id))
        loading.set(id, pending)
      }
      return pending
    }

  const reload = (st: PoolState): TE.TaskEither<CoreError, void> =>
    pipe(
      store.leases.list(st.pool.addressSpace, st.pool.id),
      TE.map((leases) => {
        st.free.reset()
        for (const l of leases) {
          const i = indexOf(st.span, l.address)
          if (i !== undefined) st.free.markUsed(i)
        }
        for (const i of st.never) st.free.markUsed(i)
        for (const i of st.inflight) st.free.markUsed(i)
      })
    )

  return { stateOf, reload, known: (id) => states.get(id), forget: (id) => void states.delete(id) }
}
