/**
 * Steps that know how to undo themselves: the rollback discipline of the creating flows.
 *
 * A flow starts with `begin(op)`; each `bindStep`/`doStep` names one step, runs it, and may
 * register how to undo it. When a step fails, the steps already finished are undone in reverse
 * order, then the flow fails with the failing step's ORIGINAL error. An undo that fails is logged
 * (warn) and the remaining undos still run: the caller must learn why the operation failed, not
 * why the cleanup did (plugins/bridge's deferred `ipam.ExecDel`, made explicit and typed).
 */
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { describe, isNotFound, type CoreError } from '../errors.js'
import type { LogFields } from '../ports/Logger.js'
import type { Flow } from '../ports/Env.js'

/** How to undo one finished step. */
export interface Undo {
  readonly step: string
  readonly run: Flow<unknown>
}

/** The state threaded through a flow: its name (for logs) and the undos of the steps done so far. */
export interface Saga {
  readonly op: string
  readonly undo: ReadonlyArray<Undo>
}

type With<S, N extends string, A> = S & { readonly [K in N]: A }

/** Start a flow named `op` (the name is what rollback warnings carry). */
export const begin = (op: string): Flow<Saga> => RTE.of({ op, undo: [] })

/** Log a warning from inside a flow. */
export const warn =
  (msg: string, fields: LogFields): Flow<void> =>
  (env) =>
    TE.fromIO(() => env.log.warn(msg, fields))

// An undo of something already gone has nothing to do: NotFound is success here as in every delete.
const undoQuietly = (op: string, failedStep: string, u: Undo): Flow<void> =>
  pipe(
    u.run,
    RTE.map(() => undefined),
    RTE.orElse((e) =>
      isNotFound(e)
        ? RTE.right(undefined)
        : warn(`${op}: could not undo ${u.step} after ${failedStep} failed`, {
            op,
            step: u.step,
            failedStep,
            error: describe(e)
          })
    )
  )

/** Undo the finished steps in reverse, then fail with `error`. */
const rollback = <A>(s: Saga, failedStep: string, error: CoreError): Flow<A> =>
  pipe(
    [...s.undo].reverse(),
    RTE.traverseSeqArray((u) => undoQuietly(s.op, failedStep, u)),
    RTE.chain(() => RTE.left(error))
  )

/**
 * Run a step and bind its result under `name`, as `RTE.bind` does; on failure, roll back. `undo`
 * (given the state including this step's result) is how to take this step back if a later one fails.
 */
export const bindStep =
  <N extends string, S extends Saga, A>(
    name: Exclude<N, keyof S>,
    run: (s: S) => Flow<A>,
    undo?: (s: With<S, N, A>) => Flow<unknown>
  ) =>
  (flow: Flow<S>): Flow<With<S, N, A>> =>
    pipe(
      flow,
      RTE.chain((s) =>
        pipe(
          run(s),
          RTE.orElse((e) => rollback<A>(s, name, e)),
          RTE.map((a): With<S, N, A> => {
            const next = { ...s, [name]: a } as With<S, N, A>
            return undo === undefined ? next : { ...next, undo: [...s.undo, { step: name, run: undo(next) }] }
          })
        )
      )
    )

/** Run a step whose result is not needed; on failure, roll back. */
export const doStep =
  <S extends Saga>(name: string, run: (s: S) => Flow<unknown>, undo?: (s: S) => Flow<unknown>) =>
  (flow: Flow<S>): Flow<S> =>
    pipe(
      flow,
      RTE.chain((s) =>
        pipe(
          run(s),
          RTE.orElse((e) => rollback<unknown>(s, name, e)),
          RTE.map((): S => (undo === undefined ? s : { ...s, undo: [...s.undo, { step: name, run: undo(s) }] }))
        )
      )
    )
