/**
 * Steps that know how to undo themselves: the one rollback mechanism of isthmus, used by the core's
 * creating flows and by every adapter or frontend operation of several steps (a Contrail endpoint,
 * a CNI attachment).
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
import type { LogFields, Logger } from '../ports/Logger.js'

/**
 * What a saga's steps read: at least a logger (undo failures are logged there). The core's flows
 * run on the whole `Env`; an adapter runs its steps on `{ log }` or on its own context.
 *
 * @category model
 */
export interface SagaEnv {
  readonly log: Logger
}

/** A step of a saga: the core's `Flow` when `R` is `Env`. @category model */
export type Step<R, A> = RTE.ReaderTaskEither<R, CoreError, A>

/** How to undo one finished step. */
export interface Undo<R = never> {
  readonly step: string
  readonly run: Step<R, unknown>
}

/** The state threaded through a flow: its name (for logs) and the undos of the steps done so far. */
export interface Saga<R = never> {
  readonly op: string
  readonly undo: ReadonlyArray<Undo<R>>
}

type With<S, N extends string, A> = S & { readonly [K in N]: A }

/** Start a flow named `op` (the name is what rollback warnings carry). */
export const begin = <R extends SagaEnv>(op: string): Step<R, Saga<R>> => RTE.of({ op, undo: [] })

/** Log a warning from inside a flow. */
export const warn =
  <R extends SagaEnv>(msg: string, fields: LogFields): Step<R, void> =>
  (env) =>
    TE.fromIO(() => env.log.warn(msg, fields))

// An undo of something already gone has nothing to do: NotFound is success here as in every delete.
const undoQuietly = <R extends SagaEnv>(op: string, failedStep: string, u: Undo<R>): Step<R, void> =>
  pipe(
    u.run,
    RTE.map(() => undefined),
    RTE.orElse((e) =>
      isNotFound(e)
        ? RTE.right(undefined)
        : warn<R>(`${op}: could not undo ${u.step} after ${failedStep} failed`, {
            op,
            step: u.step,
            failedStep,
            error: describe(e)
          })
    )
  )

/** Undo the finished steps in reverse, then fail with `error`. */
const rollback = <R extends SagaEnv, A>(s: Saga<R>, failedStep: string, error: CoreError): Step<R, A> =>
  pipe(
    [...s.undo].reverse(),
    RTE.traverseSeqArray((u: Undo<R>) => undoQuietly(s.op, failedStep, u)),
    RTE.chain(() => RTE.left(error))
  )

/**
 * Run a step and bind its result under `name`, as `RTE.bind` does; on failure, roll back. `undo`
 * (given the state including this step's result) is how to take this step back if a later one fails.
 */
export const bindStep =
  <N extends string, R extends SagaEnv, S extends Saga<R>, A>(
    name: Exclude<N, keyof S>,
    run: (s: S) => Step<R, A>,
    undo?: (s: With<S, N, A>) => Step<R, unknown>
  ) =>
  (flow: Step<R, S>): Step<R, With<S, N, A>> =>
    pipe(
      flow,
      RTE.chain((s) =>
        pipe(
          run(s),
          RTE.orElse((e) => rollback<R, A>(s, name, e)),
          RTE.map((a): With<S, N, A> => {
            const next = { ...s, [name]: a } as With<S, N, A>
            return undo === undefined ? next : { ...next, undo: [...s.undo, { step: name, run: undo(next) }] }
          })
        )
      )
    )

/** Run a step whose result is not needed; on failure, roll back. */
export const doStep =
  <R extends SagaEnv, S extends Saga<R>>(name: string, run: (s: S) => Step<R, unknown>, undo?: (s: S) => Step<R, unknown>) =>
  (flow: Step<R, S>): Step<R, S> =>
    pipe(
      flow,
      RTE.chain((s) =>
        pipe(
          run(s),
          RTE.orElse((e) => rollback<R, unknown>(s, name, e)),
          RTE.map((): S => (undo === undefined ? s : { ...s, undo: [...s.undo, { step: name, run: undo(s) }] }))
        )
      )
    )
