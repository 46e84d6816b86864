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
import * as A from 'fp-ts/lib/ReadonlyArray.js'
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

/** A step of a saga: the core's `Flow` when `R` is `Env` and `E` is `CoreError`. @category model */
export type Step<R, A, E = CoreError> = RTE.ReaderTaskEither<R, E, A>

/**
 * What a saga needs to know of its error type: which failure of an undo means there was nothing
 * left to undo (not worth a warning), and the sentence a warning carries.
 *
 * @category model
 */
export interface StepErrors<E> {
  readonly gone: (e: E) => boolean
  readonly describe: (e: E) => string
}

/** The core's errors: NotFound is "already gone", as in every delete. @category constants */
export const coreStepErrors: StepErrors<CoreError> = { gone: isNotFound, describe }

/** How to undo one finished step. */
export interface Undo<R = never, E = CoreError> {
  readonly step: string
  readonly run: Step<R, unknown, E>
}

/** The state threaded through a flow: its name (for logs), its errors, the undos of the steps done so far. */
export interface Saga<R = never, E = CoreError> {
  readonly op: string
  readonly errors: StepErrors<E>
  readonly undo: ReadonlyArray<Undo<R, E>>
}

type With<S, N extends string, A> = S & { readonly [K in N]: A }

/**
 * Start a flow named `op` (the name is what rollback warnings carry). Its steps fail with
 * `CoreError` unless `errors` describes another error type (a frontend's own, or a union).
 */
export function begin<R extends SagaEnv>(op: string): Step<R, Saga<R>>
export function begin<R extends SagaEnv, E>(op: string, errors: StepErrors<E>): Step<R, Saga<R, E>, E>
export function begin<R extends SagaEnv, E>(
  op: string,
  errors?: StepErrors<E>
): Step<R, Saga<R, E | CoreError>, E | CoreError> {
  return RTE.of({ op, errors: (errors ?? coreStepErrors) as StepErrors<E | CoreError>, undo: [] })
}

/** Log a warning from inside a flow. */
export const warn =
  <R extends SagaEnv, E = CoreError>(msg: string, fields: LogFields): Step<R, void, E> =>
  (env) =>
    TE.fromIO(() => env.log.warn(msg, fields))

// An undo of something already gone has nothing to do: "gone" is success here as in every delete.
const undoQuietly = <R extends SagaEnv, E>(s: Saga<R, E>, failedStep: string, u: Undo<R, E>): Step<R, void, E> =>
  pipe(
    u.run,
    RTE.map(() => undefined),
    RTE.orElse((e) =>
      s.errors.gone(e)
        ? RTE.right(undefined)
        : warn<R, E>(`${s.op}: could not undo ${u.step} after ${failedStep} failed`, {
            op: s.op,
            step: u.step,
            failedStep,
            error: s.errors.describe(e)
          })
    )
  )

/** Undo the finished steps in reverse, then fail with `error`. */
const rollback = <R extends SagaEnv, E, A>(s: Saga<R, E>, failedStep: string, error: E): Step<R, A, E> =>
  pipe(
    [...s.undo].reverse(),
    RTE.traverseSeqArray((u: Undo<R, E>) => undoQuietly(s, failedStep, u)),
    RTE.chain(() => RTE.left(error))
  )

// A step's error type is the saga's (from `begin`), never inferred from one step: a step that fails
// with a narrower error (a core flow in a CNI saga) fits the saga's union.

/**
 * Run a step and bind its result under `name`, as `RTE.bind` does; on failure, roll back. `undo`
 * (given the state including this step's result) is how to take this step back if a later one fails.
 */
export const bindStep =
  <N extends string, R extends SagaEnv, E, S extends Saga<R, E>, A>(
    name: Exclude<N, keyof S>,
    run: (s: S) => Step<R, A, NoInfer<E>>,
    undo?: (s: With<S, N, A>) => Step<R, unknown, NoInfer<E>>
  ) =>
  (flow: Step<R, S, E>): Step<R, With<S, N, A>, E> =>
    pipe(
      flow,
      RTE.chain((s) =>
        pipe(
          run(s),
          RTE.orElse((e) => rollback<R, E, A>(s, name, e)),
          RTE.map((a): With<S, N, A> => {
            const next = { ...s, [name]: a } as With<S, N, A>
            return undo === undefined ? next : { ...next, undo: [...s.undo, { step: name, run: undo(next) }] }
          })
        )
      )
    )

/** Run a step whose result is not needed; on failure, roll back. */
export const doStep =
  <R extends SagaEnv, E, S extends Saga<R, E>>(
    name: string,
    run: (s: S) => Step<R, unknown, NoInfer<E>>,
    undo?: (s: S) => Step<R, unknown, NoInfer<E>>
  ) =>
  (flow: Step<R, S, E>): Step<R, S, E> =>
    pipe(
      flow,
      RTE.chain((s) =>
        pipe(
          run(s),
          RTE.orElse((e) => rollback<R, E, unknown>(s, name, e)),
          RTE.map((): S => (undo === undefined ? s : { ...s, undo: [...s.undo, { step: name, run: undo(s) }] }))
        )
      )
    )

/**
 * Run one step per item, in order, and bind their results under `name`; each finished item
 * registers its own undo, so a failure at item k undoes items k-1 … 0, then the steps before.
 * (A pool per requested subnet, an address per requested address.)
 */
export const bindEach =
  <N extends string, R extends SagaEnv, E, S extends Saga<R, E>, I, A>(
    name: Exclude<N, keyof S>,
    items: (s: S) => ReadonlyArray<I>,
    run: (item: I, s: S) => Step<R, A, NoInfer<E>>,
    undo?: (item: I, a: A) => Step<R, unknown, NoInfer<E>>
  ) =>
  (flow: Step<R, S, E>): Step<R, With<S, N, ReadonlyArray<A>>, E> =>
    pipe(
      flow,
      RTE.chain((s) =>
        pipe(
          items(s),
          A.reduce(
            RTE.of<R, E, { readonly saga: S; readonly done: ReadonlyArray<A> }>({ saga: s, done: [] }),
            (acc, item) =>
              pipe(
                acc,
                RTE.chain(({ saga, done }) =>
                  pipe(
                    run(item, saga),
                    RTE.orElse((e) => rollback<R, E, A>(saga, name, e)),
                    RTE.map((a) => ({
                      saga:
                        undo === undefined
                          ? saga
                          : { ...saga, undo: [...saga.undo, { step: name, run: undo(item, a) }] },
                      done: [...done, a]
                    }))
                  )
                )
              )
          ),
          RTE.map(({ saga, done }) => ({ ...saga, [name]: done }) as With<S, N, ReadonlyArray<A>>)
        )
      )
    )
