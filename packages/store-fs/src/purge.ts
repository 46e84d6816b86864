/**
 * `isthmus uninstall --purge`: remove a state directory's records. Only what store-fs writes goes
 * (the layout directory, `v1`); the state directory itself goes when that leaves it empty, so a
 * directory an operator also keeps other files in is never emptied by it.
 */
import { existsSync, readdirSync, rmdirSync, rmSync } from 'node:fs'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import type { CoreError } from '@isthmus/core'
import { attempt } from './fsio.js'
import { layout } from './layout.js'

/** What a purge removed, and what it left in the state directory (not store-fs's). @category model */
export interface Purged {
  /** The paths removed; empty when there was nothing to remove. */
  readonly removed: ReadonlyArray<string>
  /** Entries of the state directory that are not the store's, left in place. */
  readonly kept: ReadonlyArray<string>
}

/** Whether the state directory holds a store (its layout directory). @category utils */
export const hasStore = (stateDir: string): boolean => existsSync(layout(stateDir).root)

/**
 * Remove the store under `stateDir`, then the directory itself if nothing else is in it. A
 * missing directory is success (nothing removed).
 *
 * @category utils
 */
export const purgeStateDir = (stateDir: string): TE.TaskEither<CoreError, Purged> =>
  attempt('remove', stateDir, async () => {
    const removed: string[] = []
    const root = layout(stateDir).root
    if (existsSync(root)) {
      rmSync(root, { recursive: true, force: true })
      removed.push(root)
    }
    if (!existsSync(stateDir)) return { removed, kept: [] }
    const kept = readdirSync(stateDir)
    if (kept.length === 0) {
      rmdirSync(stateDir)
      removed.push(stateDir)
    }
    return { removed, kept }
  })
