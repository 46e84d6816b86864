/**
 * The IPAM engine: pools in address spaces, and leases handed out from them through the Store.
 * The Store's `reserve` (atomic create-if-absent per (space, address)) is the only authority;
 * what this module keeps in memory per pool (a free-space hint and a round-robin cursor) makes
 * the usual allocation one `reserve` whatever the number of addresses in use, and is corrected
 * whenever the store disagrees, since other processes may allocate in the same space.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import {
  addressInUse,
  invalidConfig,
  notFound,
  poolExhausted,
  poolOverlap,
  transient,
  type CoreError
} from '../errors.js'
import type { AddressSpace, PoolId } from '../ids.js'
import { familyOf, overlaps, type IpAddress, type MacAddress, type Subnet } from '../model/Address.js'
import { DOCKER_RUNTIME_OWNER, ownerText, sameOwner, type Lease, type LeaseOwner, type Pool } from '../model/Ipam.js'
import type { Clock } from '../ports/Clock.js'
import type { Store } from '../ports/Store.js'
import { freeSpace, nextCandidate, type FreeSpace } from './Allocator.js'
import {
  auxOf,
  buildPool,
  DEFAULT_V4_POOLS,
  DEFAULT_V6_POOLS,
  excludedOf,
  isIdentical,
  pickSubnet,
  type PoolRequest
} from './Pools.js'
import {
  addressAt,
  forbiddenReason,
  indexAtOrBefore,
  indexOf,
  normaliseRanges,
  usableSpan,
  addressValue,
  type Span
} from './Range.js'

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

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

/** @category model */
export interface Ipam {
  /**
   * A pool for a subnet, or for the first free default subnet when none is given. An identical
   * request (same space, subnet and ranges) returns the same pool with `refs + 1`; its gateway,
   * aux and options are those of the first request. Another pool of the space overlapping the
   * subnet gives PoolOverlap. The gateway and aux addresses get leases.
   */
  readonly requestPool: (req: PoolRequest) => TE.TaskEither<CoreError, Pool>
  /**
   * Drop one reference; the last one releases the gateway and aux leases, and any address Docker
   * still holds in it (DOCKER_RUNTIME_OWNER: a lost ReleaseAddress), and deletes the pool. Unknown
   * ids succeed.
   */
  readonly releasePool: (id: PoolId) => TE.TaskEither<CoreError, void>
  readonly getPool: (id: PoolId) => TE.TaskEither<CoreError, Pool>
  /**
   * A lease for `owner`: the next free address after the pool's cursor, or `opts.address`.
   * Owner `{kind:'gateway'}` asks for the pool's gateway (Docker RequestAddress of type
   * gateway): without an address or with the current one it returns the gateway lease; with
   * another address it moves the gateway there.
   */
  readonly allocate: (poolId: PoolId, owner: LeaseOwner, opts?: AllocateOptions) => TE.TaskEither<CoreError, Lease>
  /** Give an address back; absent (or held by another owner than `owner`) succeeds. */
  readonly release: (space: AddressSpace, address: IpAddress, owner?: LeaseOwner) => TE.TaskEither<CoreError, void>
  readonly leases: (space: AddressSpace, pool?: PoolId) => TE.TaskEither<CoreError, ReadonlyArray<Lease>>
}

/** @category model */
export interface IpamDeps {
  readonly store: Store
  readonly clock: Clock
}

// What one process knows about one pool. `pool` may be stale in its refs and gateway only (see
// poolIdOf). `never` holds the gateway and aux indices: they stay marked used in `free` (at
// load, reload and release) even when their leases are gone.
interface PoolState {
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

// The addresses a pool holds leases on for itself: its gateway and aux addresses.
const holdersOf = (pool: Pool): ReadonlyArray<readonly [IpAddress, LeaseOwner]> => [
  ...(pool.gateway === undefined ? [] : [[pool.gateway, { kind: 'gateway' }] as const]),
  ...auxOf(pool).map((x) => [x.address, { kind: 'aux', name: x.name }] as const)
]

const neverOf = (pool: Pool, span: Span): Set<bigint> => {
  const out = new Set<bigint>()
  for (const [a] of holdersOf(pool)) {
    const i = indexOf(span, a)
    if (i !== undefined) out.add(i)
  }
  return out
}

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

/**
 * The built-in IPAM over a Store. Pool creation and changes are serialised per address space
 * with `store.withLock('space:<name>')`; allocation takes no lock.
 *
 * @category constructors
 */
export const makeIpam = (deps: IpamDeps): Ipam => {
  const { store, clock } = deps
  const states = new Map<PoolId, PoolState>()
  const loading = new Map<PoolId, Promise<E.Either<CoreError, PoolState>>>()
  const spaceLock = (space: AddressSpace) => `space:${space}`

  const leaseOf = (pool: Pool, address: IpAddress, owner: LeaseOwner, mac?: MacAddress): Lease => ({
    address,
    addressSpace: pool.addressSpace,
    poolId: pool.id,
    owner,
    since: clock.now().toISOString(),
    ...(mac === undefined ? {} : { mac })
  })

  // ---------------------------------------------------------------------------------
  // pool state (the hint)
  // ---------------------------------------------------------------------------------

  const loadState = async (id: PoolId): Promise<E.Either<CoreError, PoolState>> => {
    const got = await store.pools.get(id)()
    if (E.isLeft(got)) return got
    if (O.isNone(got.right)) return E.left(notFound('pool', id))
    const pool = got.right.value
    const span = usableSpan({ subnet: pool.subnet, ranges: pool.ranges, excluded: excludedOf(pool) })
    if (E.isLeft(span)) return span
    // the cursor is a hint: a store that cannot give it only costs round robin its start
    const cur = await store.leases.getCursor(id)()
    const at = E.isRight(cur) && O.isSome(cur.right) ? cur.right.value : undefined
    const state: PoolState = {
      pool,
      span: span.right,
      free: freeSpace(span.right.size),
      cursor:
        at !== undefined && familyOf(at) === span.right.family ? indexAtOrBefore(span.right, addressValue(at)) : -1n,
      never: neverOf(pool, span.right),
      inflight: new Set()
    }
    for (const i of state.never) state.free.markUsed(i)
    const racing = states.get(id)
    if (racing !== undefined) return E.right(racing)
    states.set(id, state)
    return E.right(state)
  }

  const stateOf = (id: PoolId): Promise<E.Either<CoreError, PoolState>> => {
    const known = states.get(id)
    if (known !== undefined) return Promise.resolve(E.right(known))
    let pending = loading.get(id)
    if (pending === undefined) {
      pending = loadState(id).finally(() => loading.delete(id))
      loading.set(id, pending)
    }
    return pending
  }

  // The store's view replaces the hint: leases of the pool, the gateway and aux, and what this
  // process is reserving right now.
  const reload = async (st: PoolState): Promise<E.Either<CoreError, void>> => {
    const ls = await store.leases.list(st.pool.addressSpace, st.pool.id)()
    if (E.isLeft(ls)) return ls
    st.free.reset()
    for (const l of ls.right) {
      const i = indexOf(st.span, l.address)
      if (i !== undefined) st.free.markUsed(i)
    }
    for (const i of st.never) st.free.markUsed(i)
    for (const i of st.inflight) st.free.markUsed(i)
    return E.right(undefined)
  }

  // ---------------------------------------------------------------------------------
  // leases
  // ---------------------------------------------------------------------------------

  // Reserve `address` for `owner`; a lease the owner already holds is returned as is (a retried
  // CNI ADD), unless the claim is `exclusive` (AllocateOptions).
  const claim = async (
    pool: Pool,
    address: IpAddress,
    owner: LeaseOwner,
    mac?: MacAddress,
    durable = true,
    exclusive = false
  ): Promise<E.Either<CoreError, Lease>> => {
    const space = pool.addressSpace
    for (let attempt = 0; attempt < 3; attempt++) {
      const lease = leaseOf(pool, address, owner, mac)
      const r = await store.leases.reserve(lease, { durable })()
      if (E.isLeft(r)) return r
      if (r.right) return E.right(lease)
      const held = await store.leases.get(space, address)()
      if (E.isLeft(held)) return held
      if (O.isSome(held.right)) {
        const l = held.right.value
        return sameOwner(l.owner, owner) && !exclusive ? E.right(l) : E.left(addressInUse(address, space, ownerText(l.owner)))
      }
      // released between reserve and get: try again
    }
    return E.left(transient(`address ${address} in ${space} changed hands while it was being reserved`))
  }

  const staticLease = async (
    st: PoolState,
    owner: LeaseOwner,
    address: IpAddress,
    mac?: MacAddress,
    anywhereInSubnet = false,
    durable = true,
    exclusive = false
  ): Promise<E.Either<CoreError, Lease>> => {
    const pool = st.pool
    const i = indexOf(st.span, address)
    const why =
      forbiddenReason(pool.subnet, address) ??
      (address === pool.gateway ? 'the gateway' : undefined) ??
      (i !== undefined
        ? undefined
        : excludedOf(pool).includes(address)
          ? 'excluded from the pool'
          : anywhereInSubnet
            ? undefined
            : 'outside the ranges of the pool')
    if (why !== undefined) {
      return E.left(invalidConfig(`requested address ${address} cannot be handed out by pool ${pool.id}: it is ${why}`))
    }
    const r = await claim(pool, address, owner, mac, durable, exclusive)
    if (i !== undefined && (E.isRight(r) || r.left._tag === 'AddressInUse')) st.free.markUsed(i)
    return r
  }

  const dynamicLease = async (
    st: PoolState,
    owner: LeaseOwner,
    mac?: MacAddress,
    durable = true
  ): Promise<E.Either<CoreError, Lease>> => {
    const { pool, span, free } = st
    const limit = missLimit(span.size)
    let reloaded = false
    let misses = 0
    for (;;) {
      const i = nextCandidate(free, st.cursor)
      if (i === undefined) {
        // a full cycle found nothing: another process may have released addresses
        if (reloaded) return E.left(poolExhausted(pool.id))
        const r = await reload(st)
        if (E.isLeft(r)) return r
        reloaded = true
        misses = 0
        continue
      }
      // claim the candidate before waiting, so that concurrent calls here try different ones
      free.markUsed(i)
      st.cursor = i
      const lease = leaseOf(pool, addressAt(span, i), owner, mac)
      st.inflight.add(i)
      const r = await store.leases.reserve(lease, { durable })()
      st.inflight.delete(i)
      if (E.isLeft(r)) {
        free.markFree(i)
        return r
      }
      if (r.right) {
        // the cursor only orders the next search; failing to store it must not fail this lease
        await store.leases.setCursor(pool.id, lease.address)()
        return E.right(lease)
      }
      misses++
      if (!reloaded && misses >= limit) {
        const rl = await reload(st)
        if (E.isLeft(rl)) return rl
        reloaded = true
        misses = 0
      }
    }
  }

  // Docker asks for the gateway through RequestAddress (type gateway) after RequestPool, with
  // the address of --gateway if the user gave one; the pool record is updated under the lock.
  const gatewayLease = (st: PoolState, address?: IpAddress): Promise<E.Either<CoreError, Lease>> =>
    store.withLock(spaceLock(st.pool.addressSpace), async (): Promise<E.Either<CoreError, Lease>> => {
      const got = await store.pools.get(st.pool.id)()
      if (E.isLeft(got)) return got
      if (O.isNone(got.right)) return E.left(notFound('pool', st.pool.id))
      const pool = got.right.value
      const current = pool.gateway
      const target = address ?? current
      if (target === undefined) return E.left(invalidConfig(`pool ${pool.id} has no gateway to give`))
      if (target !== current) {
        const why = forbiddenReason(pool.subnet, target) ?? (excludedOf(pool).includes(target) ? 'excluded' : undefined)
        if (why !== undefined) return E.left(invalidConfig(`gateway ${target} is ${why}`))
      }
      const lease = await claim(pool, target, { kind: 'gateway' })
      if (E.isLeft(lease) || target === current) return lease
      if (current !== undefined) {
        const r = await store.leases.release(pool.addressSpace, current, { kind: 'gateway' })()
        if (E.isLeft(r)) return r
      }
      const moved: Pool = { ...pool, gateway: target }
      const put = await store.pools.put(moved)()
      if (E.isLeft(put)) return put
      st.pool = moved
      const old = current === undefined ? undefined : indexOf(st.span, current)
      st.never = neverOf(moved, st.span)
      if (old !== undefined && !st.never.has(old)) st.free.markFree(old)
      for (const i of st.never) st.free.markUsed(i)
      return lease
    })()

  const allocate: Ipam['allocate'] = (poolId, owner, opts = {}) => async () => {
    const s = await stateOf(poolId)
    if (E.isLeft(s)) return s
    if (owner.kind === 'gateway') return gatewayLease(s.right, opts.address)
    return opts.address !== undefined
      ? staticLease(s.right, owner, opts.address, opts.mac, opts.anywhereInSubnet, opts.durable, opts.exclusive)
      : dynamicLease(s.right, owner, opts.mac, opts.durable)
  }

  const release: Ipam['release'] = (space, address, owner) => async () => {
    const held = await store.leases.get(space, address)()
    if (E.isLeft(held)) return held
    if (O.isNone(held.right)) return E.right(undefined)
    const lease = held.right.value
    if (owner !== undefined && !sameOwner(lease.owner, owner)) return E.right(undefined)
    const r = await store.leases.release(space, address, owner)()
    if (E.isLeft(r)) return r
    const st = states.get(lease.poolId)
    if (st !== undefined && st.pool.addressSpace === space) {
      const i = indexOf(st.span, address)
      if (i !== undefined && !st.never.has(i)) st.free.markFree(i)
    }
    return E.right(undefined)
  }

  // ---------------------------------------------------------------------------------
  // pools
  // ---------------------------------------------------------------------------------

  const requestPool: Ipam['requestPool'] = (req) =>
    store.withLock(spaceLock(req.addressSpace), async (): Promise<E.Either<CoreError, Pool>> => {
      const space = req.addressSpace
      const all = await store.pools.list()()
      if (E.isLeft(all)) return all
      const mine = all.right.filter((p) => p.addressSpace === space)
      let subnet: Subnet
      const wanted = req.subnet
      if (wanted !== undefined) {
        subnet = wanted
        if (familyOf(wanted) !== req.family) {
          return E.left(invalidConfig(`subnet ${wanted} is not an IPv${req.family} subnet`))
        }
        const ranges = normaliseRanges(wanted, req.ranges ?? [])
        if (E.isLeft(ranges)) return ranges
        const same = mine.find((p) => isIdentical(p, space, wanted, ranges.right))
        if (same !== undefined) {
          const more: Pool = { ...same, refs: same.refs + 1 }
          const put = await store.pools.put(more)()
          return E.isLeft(put) ? put : E.right(more)
        }
        const clash = mine.find((p) => overlaps(p.subnet, wanted))
        if (clash !== undefined) return E.left(poolOverlap(wanted, clash.subnet, space))
      } else {
        if ((req.ranges ?? []).length > 0) return E.left(invalidConfig('address ranges need a subnet'))
        const picked = pickSubnet(req.family, mine.map((p) => p.subnet))
        if (picked === undefined) {
          const d = req.family === 4 ? DEFAULT_V4_POOLS : DEFAULT_V6_POOLS
          return E.left(poolExhausted(`default pools ${d.base} of address space ${space}`))
        }
        subnet = picked
      }
      const built = buildPool(req, subnet)
      if (E.isLeft(built)) return built
      const pool = built.right

      const held = holdersOf(pool)
      const taken: Array<readonly [IpAddress, LeaseOwner]> = []
      const undo = async (): Promise<void> => {
        for (const [a, o] of taken) await store.leases.release(space, a, o)()
      }
      for (const [a, o] of held) {
        const r = await claim(pool, a, o)
        if (E.isLeft(r)) {
          await undo()
          return r
        }
        taken.push([a, o] as const)
      }
      const put = await store.pools.put(pool)()
      if (E.isLeft(put)) {
        await undo()
        return put
      }
      // a state cached under this id belongs to an earlier pool with the same span: start afresh
      states.delete(pool.id)
      return E.right(pool)
    })

  const releasePool: Ipam['releasePool'] = (id) => async () => {
    const got = await store.pools.get(id)()
    if (E.isLeft(got)) return got
    if (O.isNone(got.right)) return E.right(undefined)
    const space = got.right.value.addressSpace
    return store.withLock(spaceLock(space), async (): Promise<E.Either<CoreError, void>> => {
      const again = await store.pools.get(id)()
      if (E.isLeft(again)) return again
      if (O.isNone(again.right)) return E.right(undefined)
      const pool = again.right.value
      if (pool.refs > 1) return store.pools.put({ ...pool, refs: pool.refs - 1 })()
      const held = holdersOf(pool)
      for (const [a, o] of held) {
        const r = await store.leases.release(space, a, o)()
        if (E.isLeft(r)) return r
      }
      // Docker releases its addresses before their pool: one still held by it now is a
      // ReleaseAddress lost while the plugin was down, and would never be released otherwise.
      const left = await store.leases.list(space, id)()
      if (E.isLeft(left)) return left
      for (const l of left.right.filter((x) => sameOwner(x.owner, DOCKER_RUNTIME_OWNER))) {
        const r = await store.leases.release(space, l.address, DOCKER_RUNTIME_OWNER)()
        if (E.isLeft(r)) return r
      }
      const del = await store.pools.delete(id)()
      if (E.isLeft(del)) return del
      states.delete(id)
      // A hint only: a cursor left behind by a failure here is harmless.
      await store.leases.deleteCursor(id)()
      return E.right(undefined)
    })()
  }

  const getPool: Ipam['getPool'] = (id) => async () => {
    const got = await store.pools.get(id)()
    if (E.isLeft(got)) return got
    return O.isSome(got.right) ? E.right(got.right.value) : E.left(notFound('pool', id))
  }

  return {
    requestPool,
    releasePool,
    getPool,
    allocate,
    release,
    leases: (space, pool) => store.leases.list(space, pool)
  }
}
