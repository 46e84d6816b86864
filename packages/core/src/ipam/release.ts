/** Release: an address given back, and the hint told it is free (never the gateway or an aux). */
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type { CoreError } from '../errors.js'
import type { AddressSpace } from '../ids.js'
import type { IpAddress } from '../model/Address.js'
import { sameOwner, type Lease, type LeaseOwner } from '../model/Ipam.js'
import type { Hints } from './hint.js'
import type { LeaseDeps } from './lease.js'
import { indexOf } from './Range.js'

/** Give an address back; the lease released, if one was (absent, or another owner's, is none). */
export const releaseLease =
  ({ store }: LeaseDeps, hints: Hints) =>
  (space: AddressSpace, address: IpAddress, owner?: LeaseOwner): TE.TaskEither<CoreError, O.Option<Lease>> =>
    pipe(
      store.leases.get(space, address),
      TE.chain(
        O.fold(
          () => TE.right(O.none),
          (lease) =>
            owner !== undefined && !sameOwner(lease.owner, owner)
              ? TE.right(O.none)
              : pipe(
                  store.leases.release(space, address, owner),
                  TE.map(() => {
                    const st = hints.known(lease.poolId)
                    if (st?.pool.addressSpace === space) {
                      const i = indexOf(st.span, address)
                      if (i !== undefined && !st.never.has(i)) st.free.markFree(i)
                    }
                    return O.some(lease)
                  })
                )
        )
      )
    )

/** Give an address back; absent, or held by another owner than `owner`, succeeds (Ipam.release). */
export const release =
  (deps: LeaseDeps, hints: Hints) =>
  (space: AddressSpace, address: IpAddress, owner?: LeaseOwner): TE.TaskEither<CoreError, void> =>
    pipe(
      releaseLease(deps, hints)(space, address, owner),
      TE.map(() => undefined)
    )
