/** Pools as the built-in control plane binds them to networks (shared by its local and cluster networks). */
import * as E from 'fp-ts/lib/Either.js'
import { invalidConfig, type CoreError } from '../errors.js'
import type { AddressSpace } from '../ids.js'
import type { Pool } from '../model/Ipam.js'
import type { NetworkSubnet } from '../model/Network.js'
import type { SubnetRequest } from '../ports/ControlPlane.js'

/** A network's subnet on a pool; `ownedPool` when the control plane requested it (and releases it). */
export const fromPool = (pool: Pool, ownedPool: boolean): NetworkSubnet => ({
  subnet: pool.subnet,
  poolId: pool.id,
  ...(pool.gateway === undefined ? {} : { gateway: pool.gateway }),
  ownedPool
})

/** A pool the runtime requested, checked against the network's request for it. */
export const checkGiven = (
  req: SubnetRequest,
  pool: Pool,
  space: AddressSpace | undefined
): E.Either<CoreError, Pool> => {
  if (pool.family !== req.family) return E.left(invalidConfig(`pool ${pool.id} is not an IPv${req.family} pool`))
  if (req.subnet !== undefined && req.subnet !== pool.subnet) {
    return E.left(invalidConfig(`pool ${pool.id} is ${pool.subnet}, not ${req.subnet}`))
  }
  const inSpace = space ?? pool.addressSpace
  return pool.addressSpace === inSpace
    ? E.right(pool)
    : E.left(invalidConfig(`pool ${pool.id} is not in address space ${inSpace}`))
}
