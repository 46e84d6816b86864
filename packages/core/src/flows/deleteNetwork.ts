/**
 * deleteNetwork: remove a network (Docker DeleteNetwork). An absent network counts as deleted,
 * because Docker only logs DeleteNetwork errors and may send it again after a restart.
 */
import * as O from 'fp-ts/lib/Option.js'
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { alreadyExists, type CoreError } from '../errors.js'
import type { NetworkId } from '../ids.js'
import { splitCidr } from '../model/Address.js'
import type { Endpoint } from '../model/Endpoint.js'
import { DOCKER_RUNTIME_OWNER } from '../model/Ipam.js'
import type { Network } from '../model/Network.js'
import type { Flow } from '../ports/Env.js'
import { deleteEndpoint } from './deleteEndpoint.js'
import { absentOk, getNetwork, listEndpoints, locked } from './records.js'

/**
 * Delete the network. Refused with AlreadyExists (kind 'network', detail "has N endpoints: …")
 * while endpoints of it are stored: their links hang on its device and their addresses come from
 * its pools, so removing it would strand them (Docker refuses `network rm` the same way, "has
 * active endpoints"). AlreadyExists is the existing variant meaning "a conflicting object is
 * there"; a new variant would break every frontend's exhaustive error mapping for one message.
 *
 * Steps: 0. with `endpointsGoneOf`, the lost teardowns of that runtime's endpoints are finished,
 * 1. refuse while in use, 2. dataplane, 3. control plane, 4. the record, last, so a failed step
 * leaves the record in place and a retry finishes the job.
 *
 * @category flows
 */
export const deleteNetwork = (id: NetworkId, options: DeleteNetworkOptions = {}): Flow<void> =>
  pipe(
    options.endpointsGoneOf === undefined ? RTE.right(undefined) : finishLostTeardowns(id, options.endpointsGoneOf),
    RTE.chain(() =>
      pipe(getNetwork(id), RTE.chain(O.match((): Flow<void> => RTE.right(undefined), remove)), locked(`network:${id}`))
    )
  )

/** @category flows */
export interface DeleteNetworkOptions {
  /**
   * The caller's runtime has no endpoint of this owner kind left on the network (Docker sends
   * DeleteNetwork only once it has deleted its own: `docker network rm` refuses while containers
   * are attached). Endpoints of that kind still stored are ones whose teardown was lost while the
   * plugin was down (Leave answered, DeleteEndpoint and ReleaseAddress never arrived): they are
   * deleted first, their addresses released as those calls would have, instead of refusing.
   */
  readonly endpointsGoneOf?: 'docker'
}

// Outside the network's lock: deleteEndpoint takes each endpoint's (locks are never nested with
// a network's). dockerd creates no endpoint on a network it is deleting.
const finishLostTeardowns = (id: NetworkId, kind: 'docker'): Flow<void> =>
  pipe(
    listEndpoints,
    RTE.map((all) => all.filter((e) => e.networkId === id && e.owner.kind === kind)),
    RTE.chain(
      RTE.traverseSeqArray((e) =>
        pipe(
          deleteEndpoint(e.id),
          RTE.chain(() => releaseHandedBack(e))
        )
      )
    ),
    RTE.map(() => undefined)
  )

// What the lost ReleaseAddress would have freed: the addresses DeleteEndpoint handed back to Docker.
const releaseHandedBack =
  (e: Endpoint): Flow<void> =>
  (env) =>
    pipe(
      getNetwork(e.networkId)(env),
      TE.chain(
        O.match(
          () => TE.right<CoreError, void>(undefined),
          (network) =>
            pipe(
              e.addresses.filter((a) => a.poolId !== undefined && a.fromRuntime === true),
              TE.traverseSeqArray((a) =>
                env.store.leases.release(network.addressSpace, splitCidr(a.cidr).address, DOCKER_RUNTIME_OWNER)
              ),
              TE.map(() => undefined)
            )
        )
      )
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
