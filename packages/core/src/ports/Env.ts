/** The environment every flow reads: one record of ports, built by a bin or by an integrator. */
import type * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import type { CoreError } from '../errors.js'
import type { Agent } from './Agent.js'
import type { Clock } from './Clock.js'
import type { ControlPlane } from './ControlPlane.js'
import type { Dataplane } from './Dataplane.js'
import type { Logger } from './Logger.js'
import type { Store } from './Store.js'

/** @category ports */
export interface Env {
  readonly store: Store
  readonly dataplane: Dataplane
  readonly controlPlane: ControlPlane
  readonly agent: Agent
  readonly log: Logger
  readonly clock: Clock
  /**
   * The store locks the running flow holds (their names): a flow run under one does not take it
   * again (flows/records.ts `locked`), so a caller may hold an endpoint's lock across several flows.
   */
  readonly held?: ReadonlySet<string>
}

/** A flow: a computation over the ports that fails with a `CoreError`. @category flows */
export type Flow<A> = RTE.ReaderTaskEither<Env, CoreError, A>
