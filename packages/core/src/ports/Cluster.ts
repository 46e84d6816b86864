/**
 * The Cluster port: what the hosts of one cluster share (multi-host networks). Adapter:
 * `@isthmus/store-etcd` (etcd v3); an in-memory one in `@isthmus/core/testing`. A host's own
 * records (its networks, endpoints, leases) stay in its Store: a host allocates only inside the
 * blocks it holds here, so an ordinary allocation never asks the cluster anything.
 *
 * Every call either answers within the adapter's deadline or fails with `Transient` (the store
 * cannot be reached now: CNI code 11, a Docker `Err`): a caller never hangs on a lost cluster store.
 */
import type * as O from 'fp-ts/lib/Option.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import type { CoreError } from '../errors.js'
import type { Subnet } from '../model/Address.js'
import type { Block, ClusterNetwork, ClusterNetworkName, HostName, HostRecord } from '../model/Cluster.js'

/** Something that lasts until closed (a registration, a watch). @category ports */
export interface Closable {
  readonly close: () => Promise<void>
}

/** Everything the cluster knows at one revision of its store. @category ports */
export interface ClusterView {
  /** The store's revision of this view: views arrive in increasing order. */
  readonly revision: string
  /** The hosts registered now (leases alive). */
  readonly hosts: ReadonlyArray<HostRecord>
  readonly networks: ReadonlyArray<ClusterNetwork>
  /** Every claimed block, of live hosts and of hosts that are gone alike. */
  readonly blocks: ReadonlyArray<Block>
}

/** @category ports */
export interface ClusterHosts {
  /**
   * Register this host under a lease of `ttlSeconds`, kept alive until the registration is closed
   * (which removes the record) or the process dies (the record expires). A record of the same name
   * is replaced: a restarted daemon registers again.
   */
  readonly register: (host: HostRecord, ttlSeconds: number) => TE.TaskEither<CoreError, Closable>
  /** The hosts registered now. */
  readonly list: () => TE.TaskEither<CoreError, ReadonlyArray<HostRecord>>
}

/** @category ports */
export interface ClusterNetworks {
  /**
   * Create the network if no network of its name exists and answer it; answer the stored one when
   * one exists (the caller checks that it is the same network). Fails with AlreadyExists when
   * another network holds its VNI or overlaps its subnet. Atomic: two hosts defining one name at
   * once get the same record.
   */
  readonly define: (network: ClusterNetwork) => TE.TaskEither<CoreError, ClusterNetwork>
  readonly get: (name: ClusterNetworkName) => TE.TaskEither<CoreError, O.Option<ClusterNetwork>>
  readonly list: () => TE.TaskEither<CoreError, ReadonlyArray<ClusterNetwork>>
  /** Remove a network that has no blocks; `false` when blocks remain. Absent succeeds. */
  readonly remove: (name: ClusterNetworkName) => TE.TaskEither<CoreError, boolean>
}

/** @category ports */
export interface ClusterBlocks {
  /**
   * Take a block for `block.host` if nobody holds it (create-if-absent): `true` if taken now,
   * `false` if held already (by any host, this one included). NotFound when its network is not
   * defined: a block never outlives its network's removal.
   */
  readonly claim: (block: Block) => TE.TaskEither<CoreError, boolean>
  /** Give a block back, only if `host` holds it; absent succeeds. */
  readonly release: (network: ClusterNetworkName, cidr: Subnet, host: HostName) => TE.TaskEither<CoreError, void>
  /** Every claimed block, or those of one network. */
  readonly list: (network?: ClusterNetworkName) => TE.TaskEither<CoreError, ReadonlyArray<Block>>
}

/** @category ports */
export interface Cluster {
  readonly hosts: ClusterHosts
  readonly networks: ClusterNetworks
  readonly blocks: ClusterBlocks
  /**
   * The current view at once, then a new view after every change (coalesced), from the revision
   * of the first: nothing is missed between them. After a lost connection the adapter reconnects
   * and sends a fresh view; `onError` hears of the outage meanwhile.
   */
  readonly watch: (
    onView: (view: ClusterView) => void,
    onError: (e: CoreError) => void
  ) => TE.TaskEither<CoreError, Closable>
  /** Whether the cluster store answers now (within the deadline). */
  readonly ping: () => TE.TaskEither<CoreError, void>
  /**
   * End this client: its watches stop. Registrations not closed before are no longer kept alive
   * and expire after their TTL, as those of a killed daemon (close a registration to remove it now).
   */
  readonly close: () => Promise<void>
}
