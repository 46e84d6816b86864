/**
 * Crash hygiene. A process killed between writing a temp file and renaming or linking it leaves
 * `.tmp-*` (or `.tomb-*`) behind; a holder killed inside a lock leaves its lock directory. None of
 * them is ever read as a record (names starting with '.' are skipped), so they are only litter:
 * removed once old enough that no live writer can still be using them.
 *
 * Guarantee chosen: a temp file older than `tempMaxAgeMs` (default one minute) belongs to a dead
 * or hopelessly stalled writer. If a stalled writer wakes up after its temp was removed, its
 * rename or link fails with ENOENT and it reports an Io error: never a wrong answer.
 */
import { promises as fs } from 'node:fs'
import { join } from 'node:path'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type { CoreError } from '@isthmus/core'
import { isTempName } from './layout.js'
import { attempt, readNames } from './fsio.js'

const olderThan = async (path: string, cutoff: number): Promise<boolean> => {
  try {
    return (await fs.lstat(path)).mtimeMs < cutoff
  } catch {
    return false
  }
}

/**
 * Remove the stale temp files among `names` (entries of `dir`). Failures are ignored: another
 * process may be sweeping the same files, and litter left now is swept next time.
 *
 * @category utils
 */
export const sweepTemps = (
  dir: string,
  names: ReadonlyArray<string>,
  maxAgeMs: number
): TE.TaskEither<CoreError, void> => {
  const temps = names.filter(isTempName)
  if (temps.length === 0) return TE.right(undefined)
  const cutoff = Date.now() - maxAgeMs
  return TE.fromTask<void, CoreError>(async () => {
    for (const name of temps) {
      const path = join(dir, name)
      if (await olderThan(path, cutoff)) await fs.unlink(path).catch(() => undefined)
    }
  })
}

/** Sweep the temp files of one directory (`what` names it in errors). @category utils */
export const sweepDir = (what: string, dir: string, maxAgeMs: number): TE.TaskEither<CoreError, void> =>
  pipe(
    readNames(what, dir),
    TE.chain((names) => sweepTemps(dir, names, maxAgeMs))
  )

/**
 * Remove locks (directories, or files: locks.ts) nobody has refreshed for `maxAgeMs`. A live holder refreshes its lock
 * every `staleMs / 2`, so with `maxAgeMs` well above `staleMs` only dead holders' locks go (and
 * proper-lockfile would take those over anyway; this only keeps `locks/` from growing).
 *
 * @category utils
 */
export const sweepLocks = (dir: string, maxAgeMs: number): TE.TaskEither<CoreError, void> =>
  pipe(
    readNames('the lock directories', dir),
    TE.chain((names) =>
      attempt('sweep', 'the lock directories', async () => {
        const cutoff = Date.now() - maxAgeMs
        for (const name of names.filter((n) => n.endsWith('.lock'))) {
          const path = join(dir, name)
          // A lock is a directory, or a file linked to its name (locks.ts).
          if (await olderThan(path, cutoff)) {
            await fs.unlink(path).catch(() => fs.rmdir(path).catch(() => undefined))
          }
        }
      })
    )
  )
