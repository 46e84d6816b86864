/** A lease record, and the one way an address is reserved for an owner in the Store. */
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { addressInUse, transient, type CoreError } from '../errors.js'
import type { IpAddress, MacAddress } from '../model/Address.js'
import { ownerText, sameOwner, type Lease, type LeaseOwner, type Pool } from '../model/Ipam.js'
import type { Clock } from '../ports/Clock.js'
import type { Logger } from '../ports/Logger.js'
import type { Store } from '../ports/Store.js'
import type { ClusterIpamDeps } from './clusterNetworks.js'

/** What the lease modules need: the Store, the authority, and a clock for `since`. */
export interface LeaseDeps {
  readonly store: Store
  readonly clock: Clock
  /** Hears of a give-back that failed while a pool creation was undone; silent when absent. */
  readonly log?: Logger
  /** The cluster this host is part of, for cluster pools (blocks are claimed there). */
  readonly cluster?: ClusterIpamDeps
}

/** A lease of `pool` for `owner`, dated now. */
export const leaseOf =
  (clock: Clock) =>
  (pool: Pool, address: IpAddress, owner: LeaseOwner, mac?: MacAddress): Lease => ({
    address,
    addressSpace: pool.addressSpace,
    poolId: pool.id,
    owner,
    since: clock.now().toISOString(),
    ...(mac === undefined ? {} : { mac })
  })

/** How a claim is made: the Store's PutOptions and whether the owner's own lease counts as taken. */
export interface ClaimOptions {
  readonly mac?: MacAddress
  readonly durable?: boolean
  readonly exclusive?: boolean
}

// An address released between `reserve` and `get` is tried again, this many times in all.
const ATTEMPTS = 3

/**
 * Reserve `address` for `owner`; a lease the owner already holds is returned as is (a retried
 * CNI ADD), unless the claim is `exclusive` (AllocateOptions).
 */
export const claim =
  ({ store, clock }: LeaseDeps) =>
  (pool: Pool, address: IpAddress, owner: LeaseOwner, opts: ClaimOptions = {}): TE.TaskEither<CoreError, Lease> => {
    const space = pool.addressSpace
    const attempt = (left: number): TE.TaskEither<CoreError, Lease> => {
      if (left === 0) {
        return TE.left(transient(`address ${address} in ${space} changed hands while it was being reserved`))
      }
      const lease = leaseOf(clock)(pool, address, owner, opts.mac)
      return pipe(
        store.leases.reserve(lease, { durable: opts.durable ?? true }),
        TE.chain((reserved) =>
          reserved
            ? TE.right(lease)
            : pipe(
                store.leases.get(space, address),
                TE.chain(
                  O.fold(
                    // released between reserve and get: try again
                    () => attempt(left - 1),
                    (l) =>
                      sameOwner(l.owner, owner) && opts.exclusive !== true
                        ? TE.right(l)
                        : TE.left(addressInUse(address, space, ownerText(l.owner)))
                  )
                )
              )
        )
      )
    }
    return attempt(ATTEMPTS)
  }
