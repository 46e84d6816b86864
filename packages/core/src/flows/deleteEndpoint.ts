/**
 * deleteEndpoint: remove an endpoint and everything it holds (Docker DeleteEndpoint; the second
 * half of CNI DEL). Absent counts as deleted: a CNI DEL must succeed when things are gone
 * (https://github.com/containernetworking/cni/blob/main/SPEC.md).
 */
import * as O from 'fp-ts/lib/Option.js'
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { invalidConfig } from '../errors.js'
import type { EndpointId } from '../ids.js'
import type { Endpoint } from '../model/Endpoint.js'
import type { Network } from '../model/Network.js'
import type { Flow } from '../ports/Env.js'
import { absentOk, getEndpoint, getNetwork, lockedEndpoint } from './records.js'

/**
 * Delete the endpoint. Each step treats NotFound as done. Any other failure stops the flow and
 * is returned with the endpoint record still stored, so the record keeps naming what is left
 * and a retry (Docker retries nothing, but CNI DEL is repeated) finishes the job.
 *
 * Steps: 1. the agent forgets the port, 2. published ports are withdrawn, 3. the veth pair is
 * deleted (for Docker it is back in the host namespace by now: docs/cnm.md), 4. the control
 * plane gives the addresses back, 5. the record, last.
 *
 * An endpoint whose network record is gone fails with InvalidConfig rather than NotFound: the
 * ports cannot be told without the network, and a NotFound would let a CNI DEL report success
 * over addresses and links that are still held. deleteNetwork refuses while endpoints exist, so
 * only a hand-edited store gets here.
 *
 * @category flows
 */
export const deleteEndpoint = (endpointId: EndpointId): Flow<void> =>
  pipe(
    getEndpoint(endpointId),
    RTE.chain(O.match((): Flow<void> => RTE.right(undefined), remove)),
    lockedEndpoint(endpointId)
  )

const remove = (endpoint: Endpoint): Flow<void> =>
  pipe(
    RTE.Do,
    RTE.bind('network', () =>
      pipe(
        getNetwork(endpoint.networkId),
        RTE.chain(
          O.match(
            (): Flow<Network> =>
              RTE.left(
                invalidConfig(`endpoint ${endpoint.id} belongs to network ${endpoint.networkId}, which is not stored`)
              ),
            (network) => RTE.right(network)
          )
        )
      )
    ),
    // 1. The agent.
    RTE.tap(({ network }) => absentOk((env) => env.agent.deletePort(network, endpoint))),
    // 2. Published ports, when the record has any (this runs on every `docker run --rm`).
    RTE.tap(({ network }) =>
      endpoint.portMappings.length === 0
        ? RTE.right(undefined)
        : absentOk((env) => env.dataplane.unpublishPorts({ endpoint, network }))
    ),
    // 3. The veth pair.
    RTE.tap(({ network }) => absentOk((env) => env.dataplane.deleteEndpoint({ endpoint, network }))),
    // 4. The addresses.
    RTE.tap(({ network }) => absentOk((env) => env.controlPlane.deleteEndpoint(network, endpoint))),
    // 5. The record.
    RTE.tap(() => absentOk((env) => env.store.endpoints.delete(endpoint.id))),
    RTE.map(() => undefined)
  )
