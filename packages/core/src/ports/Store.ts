/**
 * The Store port: where networks, endpoints, sandboxes, pools and leases live. Adapters: the
 * in-memory store (`@isthmus/core/testing`), files under a state directory (`@isthmus/store-fs`,
 * the default), etcd. Every operation is safe under concurrent use by several processes.
 */
import type * as O from 'fp-ts/lib/Option.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import type { CoreError } from '../errors.js'
import type { AddressSpace, EndpointId, NetworkId, PoolId, SandboxKey } from '../ids.js'
import type { IpAddress } from '../model/Address.js'
import type { Endpoint } from '../model/Endpoint.js'
import type { Lease, LeaseOwner, Pool } from '../model/Ipam.js'
import type { Network } from '../model/Network.js'
import type { Sandbox } from '../model/Sandbox.js'

/**
 * How a write (a `put`, a lease's `reserve` or `transfer`) must last. Every write is atomic and
 * survives the death of the process (kill -9); `durable: false` lets it be lost with the machine
 * (power loss: the old state stays, or the new record is absent), for facts that die with the
 * machine anyway: a Docker container's endpoint, its address, its sandbox. After a power loss
 * dockerd itself deletes the endpoints it had and releases their addresses (cnm-protocol.md), so
 * losing their creation costs nothing; their removals stay durable, since a lost removal would
 * keep an address that nobody releases again. Default durable.
 *
 * @category ports
 */
export interface PutOptions {
  readonly durable?: boolean
}

/**
 * Who a lock excludes: `host` (default) every process on the host; `process` only callers in this
 * process, for names no other process ever takes (a Docker endpoint: only the daemon that serves
 * dockerd touches it). One name must always be taken with the same scope.
 *
 * @category ports
 */
export type LockScope = 'host' | 'process'

/**
 * A keyed collection of records. `put` replaces the whole record atomically; `delete` of an
 * absent key succeeds.
 *
 * @category ports
 */
export interface Collection<K extends string, A> {
  readonly get: (id: K) => TE.TaskEither<CoreError, O.Option<A>>
  readonly put: (record: A, options?: PutOptions) => TE.TaskEither<CoreError, void>
  readonly delete: (id: K) => TE.TaskEither<CoreError, void>
  readonly list: () => TE.TaskEither<CoreError, ReadonlyArray<A>>
}

/**
 * Address reservations. `reserve` is the one atomic create-if-absent that makes an address
 * unique in its space across processes; everything else in IPAM is a hint.
 *
 * @category ports
 */
export interface LeaseStore {
  /** Take `lease.address` in `lease.addressSpace`: `true` if taken now, `false` if someone holds it. */
  readonly reserve: (lease: Lease, options?: PutOptions) => TE.TaskEither<CoreError, boolean>
  /** Give an address back; absent succeeds. With `owner`, only a lease held by that owner is removed. */
  readonly release: (space: AddressSpace, address: IpAddress, owner?: LeaseOwner) => TE.TaskEither<CoreError, void>
  /** Hand a lease from one owner to another atomically (Docker: RequestAddress, then CreateEndpoint). */
  readonly transfer: (
    space: AddressSpace,
    address: IpAddress,
    from: LeaseOwner,
    to: LeaseOwner,
    options?: PutOptions
  ) => TE.TaskEither<CoreError, boolean>
  readonly get: (space: AddressSpace, address: IpAddress) => TE.TaskEither<CoreError, O.Option<Lease>>
  /** Every lease of a space, or of one pool of it. */
  readonly list: (space: AddressSpace, pool?: PoolId) => TE.TaskEither<CoreError, ReadonlyArray<Lease>>
  /** The round-robin cursor of a pool: the address handed out last (a hint, not a lock). */
  readonly getCursor: (pool: PoolId) => TE.TaskEither<CoreError, O.Option<IpAddress>>
  readonly setCursor: (pool: PoolId, address: IpAddress) => TE.TaskEither<CoreError, void>
  /** Forget a pool's cursor (the pool is gone); absent succeeds. */
  readonly deleteCursor: (pool: PoolId) => TE.TaskEither<CoreError, void>
}

/** @category ports */
export interface Store {
  readonly networks: Collection<NetworkId, Network>
  readonly endpoints: Collection<EndpointId, Endpoint>
  readonly sandboxes: Collection<SandboxKey, Sandbox>
  readonly pools: Collection<PoolId, Pool>
  readonly leases: LeaseStore
  /**
   * Run `task` while holding the named lock, across processes (pool creation checks overlaps in
   * a space under `space:<name>`). The lock is released whatever `task` returns.
   */
  readonly withLock: <A>(name: string, task: TE.TaskEither<CoreError, A>, scope?: LockScope) => TE.TaskEither<CoreError, A>
  /** Whether the store is usable now (CNI STATUS, readiness). */
  readonly ping: () => TE.TaskEither<CoreError, void>
  readonly close: () => Promise<void>
}
