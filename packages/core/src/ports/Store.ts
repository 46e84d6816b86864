/**
 * The Store port: where networks, endpoints, pools and leases live. Adapters: the
 * in-memory store (`@isthmus/core/testing`), files under a state directory (`@isthmus/store-fs`,
 * the default), etcd. Every operation is safe under concurrent use by several processes.
 *
 * What every implementation promises about bad data (the contract suite checks decode before
 * store and an empty quarantine; an adapter's own tests check how it quarantines what it stores):
 * - Decode before store: every write (`put`, `reserve`, `transfer`) first checks that the record
 *   would decode back with its codec; one that would not is refused with a `DecodeFailure` whose
 *   `what` names the object (`endpoint <id>`, `lease of 10.1.0.5 in isthmus-local`) and whose
 *   errors name the field, and nothing is written.
 * - Quarantine on read: a stored record found undecodable never fails an operation on another
 *   object. It is moved aside (see `Quarantine`), `get` of it answers none and `list` skips it;
 *   an unreadable lease is the exception that keeps its address held (see `LeaseStore`).
 * - Errors name the object, never where or how it is stored: the sentence reaches the Docker user.
 */
import type * as O from 'fp-ts/lib/Option.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import type { CoreError } from '../errors.js'
import type { AddressSpace, EndpointId, NetworkId, PoolId } from '../ids.js'
import type { IpAddress } from '../model/Address.js'
import type { Endpoint } from '../model/Endpoint.js'
import type { Lease, LeaseOwner, Pool } from '../model/Ipam.js'
import type { Network } from '../model/Network.js'

/**
 * Where isthmus keeps its state on a host unless told otherwise: the daemon and the CNI plugin share it.
 *
 * @category constants
 */
export const DEFAULT_STATE_DIR = '/var/lib/isthmus'

/**
 * How a write (a `put`, a lease's `reserve` or `transfer`) must last. Every write is atomic and
 * survives the death of the process (kill -9); `durable: false` lets it be lost with the machine
 * (power loss: the old state stays, or the new record is absent), for facts that die with the
 * machine anyway: an attachment (a Docker or CNI endpoint, its addresses, its sandbox) describes
 * links and namespaces that no power loss leaves behind. After one, dockerd deletes the endpoints
 * it had (docs/cnm.md, Running the daemon), a CNI runtime sends DEL or GC for its sandboxes, and
 * the daemon's start collects leases whose endpoint record was lost (core's gc: orphans), so
 * losing their creation costs nothing, where an fsync per write costs every ADD and `docker run`
 * (the reference host-local plugin writes none either). Removals stay durable, since a lost
 * removal would keep an address that nobody releases again. Default durable.
 *
 * @category ports
 */
export interface PutOptions {
  readonly durable?: boolean
}

/** How an attachment's records and leases are written (see PutOptions). @category constants */
export const ATTACHMENT_WRITE: PutOptions = { durable: false }

/**
 * Who a lock excludes: `host` (default) every process on the host; `process` only callers in this
 * process, for names no other process ever takes (a Docker endpoint: only the daemon that serves
 * dockerd touches it). One name must always be taken with the same scope.
 *
 * @category ports
 */
export type LockScope = 'host' | 'process'

/**
 * A keyed collection of records. `put` replaces the whole record atomically, after checking that
 * it decodes back (else `DecodeFailure` and no write); `delete` of an absent key succeeds. A
 * stored record that cannot be decoded is quarantined when read: `get` answers none, `list`
 * leaves it out.
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
 * An unreadable lease is quarantined without ever freeing its address (no address is given
 * twice): its place is taken, atomically, by a hold lease owned by
 * `quarantineHolder(<quarantine entry id>)` (a `runtime` owner that no caller uses), in the same
 * pool when that can be told. The hold is an ordinary lease: `get` and `list` show it, a
 * `reserve` of the address answers `false` (a static request is refused as in use, a dynamic
 * allocation moves on), `release` or `transfer` by any other owner leaves it, and gc keeps it.
 * Only `quarantine.drop` of its entry (an operator's decision) gives the address back.
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

/**
 * One record moved aside because it could not be decoded: what it was, when and why, and where
 * its bytes are now, for the operator (`isthmus quarantine`) and the metrics.
 *
 * @category ports
 */
export interface QuarantinedRecord {
  /** The entry's id, for `drop`. */
  readonly id: string
  /** `network`, `endpoint`, `sandbox`, `pool`, `lease`; `unknown` when even that is lost. */
  readonly kind: string
  /** The record's key (a lease: its address), when it could be told. */
  readonly key?: string
  /** The object in words: `endpoint <id>`, `lease of 10.1.0.5 in isthmus-local`. */
  readonly object: string
  /** When it was moved aside (ISO 8601). */
  readonly at: string
  /** Why it could not be read: the decoder's sentence (`not JSON (...)`, `portMappings.0.hostIp: ...`). */
  readonly reason: string
  /** Where its bytes are now (store-fs: a file), and where they were. */
  readonly location: string
  readonly formerLocation?: string
  /** A lease: the address its hold keeps from being handed out until the entry is dropped. */
  readonly holds?: { readonly addressSpace: AddressSpace; readonly address: IpAddress }
}

/**
 * Records moved aside because they could not be decoded.
 *
 * @category ports
 */
export interface Quarantine {
  /** Every entry, oldest first. */
  readonly list: () => TE.TaskEither<CoreError, ReadonlyArray<QuarantinedRecord>>
  /**
   * Forget an entry and its bytes; a lease's hold is released with it (its address becomes free:
   * drop it only once no container uses the address). `false` when there is no such entry.
   */
  readonly drop: (id: string) => TE.TaskEither<CoreError, boolean>
}

/**
 * How errors and the quarantine name a stored object: `endpoint <id>`, `pool <id>`, ...
 *
 * @category utils
 */
export const recordObject = (kind: 'network' | 'endpoint' | 'sandbox' | 'pool', key: string): string => `${kind} ${key}`

/** How errors and the quarantine name a lease. @category utils */
export const leaseObject = (space: string, address: string): string => `lease of ${address} in ${space}`

/**
 * The owner of the hold lease that keeps a quarantined lease's address taken.
 *
 * @category ports
 */
export const quarantineHolder = (entryId: string): LeaseOwner => ({
  kind: 'runtime',
  ref: `quarantined record ${entryId}`
})

/** @category ports */
export interface Store {
  readonly networks: Collection<NetworkId, Network>
  readonly endpoints: Collection<EndpointId, Endpoint>
  readonly pools: Collection<PoolId, Pool>
  readonly leases: LeaseStore
  /** Records found undecodable and moved aside. */
  readonly quarantine: Quarantine
  /**
   * Run `task` while holding the named lock, across processes (pool creation checks overlaps in
   * a space under `space:<name>`). The lock is released whatever `task` returns.
   */
  readonly withLock: <A>(
    name: string,
    task: TE.TaskEither<CoreError, A>,
    scope?: LockScope
  ) => TE.TaskEither<CoreError, A>
  /** Whether the store is usable now (CNI STATUS, readiness). */
  readonly ping: () => TE.TaskEither<CoreError, void>
  readonly close: () => Promise<void>
}
