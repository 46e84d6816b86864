/**
 * deleteNetwork: remove a network (Docker DeleteNetwork). An absent network counts as deleted,
 * because Docker only logs DeleteNetwork errors and may send it again after a restart.
 */
import * as O from 'fp-ts/lib/Option.js'
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { alreadyExists } from '../errors.js'
import type { NetworkId } from '../ids.js'
import type { Endpoint } from '../model/Endpoint.js'
import type { Network } from '../model/Network.js'
import type { Flow } from '../ports/Env.js'
import { absentOk, getNetwork, listEndpoints, locked } from './records.js'

/**
 * Delete the network. Refused with AlreadyExists (kind 'network', detail "has N endpoints: …")
 * while endpoints of it are stored: their links hang on its device and their addresses come from
 * its pools, so removing it would strand them (Docker refuses `network rm` the same way, "has
 * active endpoints"). AlreadyExists is the existing variant meaning "a conflicting object is
 * there"; a new variant would break every frontend's exhaustive error mapping for one message.
 *
 * Steps: 1. refuse while in use, 2. dataplane, 3. control plane, 4. the record, last, so a failed
 * step leaves the record in place and a retry finishes the job.
 *
 * @category flows
 */
export const deleteNetwork = (id: NetworkId): Flow<void> =>
  pipe(
    getNetwork(id),
    RTE.chain(O.match((): Flow<void> => RTE.right(undefined), remove)),
    locked(`network:${id}`)
  )

const remove = (network: Network): Flow<void> =>
  pipe(
    // 1. Refuse while endpoints are on it.
    listEndpoints,
    RTE.map((all) => all.filter((e) => e.networkId === network.id)),
    RTE.chain((endpoints) => (endpoints.length === 0 ? RTE.right(undefined) : RTE.left(inUse(network, endpoints)))),
    // 2. The host device.
    RTE.chain(() => absentOk((env) => env.dataplane.deleteNetwork(network))),
    // 3. The pools and the controller's objects.
    RTE.chain(() => absentOk((env) => env.controlPlane.deleteNetwork(network))),
    // 4. The record.
    RTE.chain(() => absentOk((env) => env.store.networks.delete(network.id)))
  )

const inUse = (network: Network, endpoints: ReadonlyArray<Endpoint>) => {
  const shown = endpoints.slice(0, 3).map((e) => e.id)
  const more = endpoints.length > shown.length ? `, and ${endpoints.length - shown.length} more` : ''
  return alreadyExists(
    'network',
    network.id,
    `has ${endpoints.length} endpoint${endpoints.length === 1 ? '' : 's'}: ${shown.join(', ')}${more}`
  )
}
