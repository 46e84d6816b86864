/**
 * The Agent port: a per-host forwarding agent told about each endpoint (the vRouter agent's
 * port API). The default is a no-op agent.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import type { CoreError } from '../errors.js'
import type { Endpoint } from '../model/Endpoint.js'
import type { Network } from '../model/Network.js'

/** @category ports */
export interface Agent {
  readonly addPort: (network: Network, endpoint: Endpoint) => TE.TaskEither<CoreError, void>
  /** Absent succeeds. */
  readonly deletePort: (network: Network, endpoint: Endpoint) => TE.TaskEither<CoreError, void>
}

/** The default agent: nothing to tell. @category constructors */
export const noopAgent: Agent = {
  addPort: () => TE.right(undefined),
  deletePort: () => TE.right(undefined)
}
