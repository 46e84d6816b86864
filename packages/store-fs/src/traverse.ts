/**
 * Running one TaskEither per item with a bound on how many run at once: a directory of thousands
 * of leases read all at once would open as many files and can hit the descriptor limit (EMFILE).
 */
import * as E from 'fp-ts/lib/Either.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import type { CoreError } from '@isthmus/core'

/**
 * `f` over every item, at most `limit` at a time, results in item order; the first failure wins
 * and stops further items from starting.
 *
 * @category utils
 */
export const traverseLimited =
  <A, B>(limit: number, f: (a: A) => TE.TaskEither<CoreError, B>) =>
  (items: ReadonlyArray<A>): TE.TaskEither<CoreError, ReadonlyArray<B>> =>
  async () => {
    const out: B[] = []
    let next = 0
    let failed: CoreError | undefined
    const worker = async (): Promise<void> => {
      while (failed === undefined && next < items.length) {
        const i = next++
        const r = await f(items[i] as A)()
        if (E.isLeft(r)) failed ??= r.left
        else out[i] = r.right
      }
    }
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
    return failed === undefined ? E.right(out) : E.left(failed)
  }
