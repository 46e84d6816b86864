/**
 * leave: take an endpoint out of its sandbox in the records (Docker Leave; the first half of CNI DEL).
 */
import * as O from 'fp-ts/lib/Option.js'
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type { EndpointId } from '../ids.js'
import type { Endpoint } from '../model/Endpoint.js'
import type { Flow } from '../ports/Env.js'
import { ATTACHMENT_WRITE } from '../ports/Store.js'
import { getEndpoint, lockedEndpoint, putEndpoint } from './records.js'

/**
 * Forget the endpoint's sandbox. An absent endpoint, or one in no sandbox, succeeds.
 *
 * No dataplane call: when Docker sends Leave the link is still inside the container, and it is
 * back in the host namespace only at DeleteEndpoint (docs/cnm.md), which deletes it; CNI
 * DEL runs leave and then deleteEndpoint. The links live exactly as long as the endpoint.
 *
 * One step: the endpoint record drops the sandbox (and the interface's name in it).
 *
 * @category flows
 */
export const leave = (endpointId: EndpointId): Flow<void> =>
  pipe(
    getEndpoint(endpointId),
    RTE.chain(O.match((): Flow<void> => RTE.right(undefined), detach)),
    lockedEndpoint(endpointId)
  )

const detach = (endpoint: Endpoint): Flow<void> => {
  const { sandbox, sandboxIfName, ...rest } = endpoint
  if (sandbox === undefined && sandboxIfName === undefined) return RTE.right(undefined)
  // A sandbox dies with the machine: the record need not outlive a power loss (PutOptions), and a
  // DEL retried after one finds the sandbox and leaves again.
  return putEndpoint(rest, ATTACHMENT_WRITE)
}
