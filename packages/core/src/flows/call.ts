/**
 * Lifting a port call into a Flow. A bare `(env) => env.dataplane.place(…)` at the head of a
 * `pipe` has no contextual type; `call` gives it one, so every step reads the same way.
 */
import type * as TE from 'fp-ts/lib/TaskEither.js'
import type { CoreError } from '../errors.js'
import type { Env, Flow } from '../ports/Env.js'

/** A Flow of one call on the ports of the environment. */
export const call = <A>(f: (env: Env) => TE.TaskEither<CoreError, A>): Flow<A> => f
