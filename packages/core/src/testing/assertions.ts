/**
 * Test assertions on results: unwrap a success or fail the test with the error's sentence (and
 * the reverse). They take a TaskEither or an already running one (a Promise of an Either).
 */
import { strict as assert } from 'node:assert'
import * as E from 'fp-ts/lib/Either.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import { describe as describeError, type CoreError } from '../errors.js'

/** A TaskEither, or the Promise it gives when run. @category testing */
export type Outcome<A> = TE.TaskEither<CoreError, A> | Promise<E.Either<CoreError, A>>

const settle = <A>(o: Outcome<A>): Promise<E.Either<CoreError, A>> => (typeof o === 'function' ? o() : o)

/** The success, or a test failure naming the error. @category testing */
export const right = async <A>(o: Outcome<A>): Promise<A> => {
  const r = await settle(o)
  if (E.isLeft(r)) assert.fail(`expected success, got ${describeError(r.left)}`)
  return r.right
}

/** The error, or a test failure showing the unexpected success. @category testing */
export const left = async <A>(o: Outcome<A>): Promise<CoreError> => {
  const r = await settle(o)
  if (E.isRight(r)) assert.fail(`expected a failure, got ${JSON.stringify(r.right)}`)
  return r.left
}
