/**
 * The IPAM engine: pools in address spaces, and leases handed out from them through the Store.
 * The Store's `reserve` (atomic create-if-absent per (space, address)) is the only authority;
 * what a process keeps in memory per pool (the used-address hint, hint.ts) makes the usual
 * allocation one `reserve` whatever the number of addresses in use, and is corrected whenever
 * the store disagrees, since other processes may allocate in the same space. The parts: pool
 * requests (poolRequests.ts), allocation (allocation.ts), release (release.ts), the one way an
 * address is claimed (lease.ts).
 */
import type * as TE from 'fp-ts/lib/TaskEither.js'
import type { CoreError } from '../errors.js'
import type { AddressSpace, PoolId } from '../ids.js'
import type { IpAddress } from '../model/Address.js'
import type { Lease, LeaseOwner, Pool } from '../model/Ipam.js'
import type { ClusterNetworkName, HostName } from '../model/Cluster.js'
import type { Clock } from '../ports/Clock.js'
import type { Logger } from '../ports/Logger.js'
import type { Store } from '../ports/Store.js'
import { allocate, type AllocateOptions } from './allocation.js'
import { clusterLease, clusterRelease } from './clusterAllocation.js'
import { syncBlocks, type BlockSync } from './clusterBlocks.js'
import { DEFAULT_CLUSTER_SETTINGS, type ClusterIpamDeps, type ClusterSettings } from './clusterNetworks.js'
import { adoptPool } from './clusterPools.js'
import { makeHints } from './hint.js'
import { getPool, releasePool, requestPool } from './poolRequests.js'
import type { PoolRequest } from './Pools.js'
import { release } from './release.js'

export type { AllocateOptions } from './allocation.js'
export { missLimit } from './hint.js'
export type { BlockSync } from './clusterBlocks.js'
export {
  clusterNetworkFor,
  clusterOption,
  clusterOptions,
  DEFAULT_CLUSTER_SETTINGS,
  type ClusterIpamDeps,
  type ClusterRequest,
  type ClusterSettings
} from './clusterNetworks.js'
export { releaseEmptyBlocks, syncBlocks } from './clusterBlocks.js'

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
  /** The cluster side, when the IPAM was made with a cluster (IpamDeps.cluster). */
  readonly cluster?: ClusterIpam
}

/**
 * What a cluster adds to the IPAM. A pool is a cluster pool when its options carry CLUSTER_OPTION
 * (`requestPool` with it, or `adopt`): it hands out addresses only inside the blocks of the
 * cluster network's subnet that this host holds (its `ranges`), claims another block when they
 * are full, and gives a block back when its last lease goes.
 *
 * @category model
 */
export interface ClusterIpam {
  readonly host: HostName
  readonly settings: Required<ClusterSettings>
  /**
   * Make a pool Docker requested without the cluster option (it sees only `--ipam-opt`) a pool of
   * cluster network `name` (Docker CreateNetwork with `-o isthmus.cluster=<name>`); `options` may
   * choose the block size, VNI and MTU of a network this host defines now.
   */
  readonly adopt: (
    poolId: PoolId,
    name: ClusterNetworkName,
    options: Readonly<Record<string, string>>,
    mtu?: number
  ) => TE.TaskEither<CoreError, Pool>
  /** Reconcile every cluster pool's blocks with the cluster (a host's start): see `syncBlocks`. */
  readonly sync: () => TE.TaskEither<CoreError, ReadonlyArray<BlockSync>>
}

/** @category model */
export interface IpamDeps {
  readonly store: Store
  readonly clock: Clock
  /** Hears of a give-back that failed while a pool creation was undone; silent when absent. */
  readonly log?: Logger
  /** The cluster this host is part of: cluster pools need it to claim and give back blocks. */
  readonly cluster?: ClusterIpamDeps
}

/**
 * The built-in IPAM over a Store. Pool creation and changes are serialised per address space
 * with `store.withLock('space:<name>')`; allocation takes no lock.
 *
 * @category constructors
 */
export const makeIpam = (deps: IpamDeps): Ipam => {
  const hints = makeHints(deps.store)
  const c = deps.cluster
  const base: Ipam = {
    requestPool: requestPool(deps, hints),
    releasePool: releasePool(deps, hints),
    getPool: getPool(deps),
    // A cluster pool is guarded even without a cluster: it hands out nothing outside its blocks.
    allocate: allocate(deps, hints, clusterLease(deps, hints)),
    release: c === undefined ? release(deps, hints) : clusterRelease(deps, hints),
    leases: (space, pool) => deps.store.leases.list(space, pool)
  }
  if (c === undefined) return base
  const cluster: ClusterIpam = {
    host: c.host,
    settings: { ...DEFAULT_CLUSTER_SETTINGS, ...c.settings },
    adopt: adoptPool(deps, hints),
    sync: () => syncBlocks({ store: deps.store, cluster: c, clock: deps.clock, ...(deps.log ? { log: deps.log } : {}) })
  }
  return { ...base, cluster }
}
