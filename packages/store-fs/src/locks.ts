/**
 * Cross-process locks: proper-lockfile (a `mkdir` of `<file>.lock`, its mtime refreshed while
 * held, taken over once older than `staleMs`, so a holder killed with SIGKILL blocks others for at
 * most that long), behind an in-process promise chain per lock, so that one process queues its
 * own callers instead of polling against itself.
 *
 * Waiting is bounded: after `timeoutMs` the caller gets `Transient` (CNI code 11, try again).
 * proper-lockfile's own retry schedule is not used, so the bound is exact.
 */
import * as fs from 'node:fs'
import { dirname } from 'node:path'
import * as E from 'fp-ts/lib/Either.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import { lockSync } from 'proper-lockfile'
import { causeText, io, transient, type CoreError } from '@isthmus/core'
import { errnoOf, fsError, spareIn } from './fsio.js'

/** @category model */
export interface LockSettings {
  /** A lock whose holder stopped refreshing it this long ago is taken over (proper-lockfile: at least 2000). */
  readonly staleMs: number
  /** How long a caller waits for a lock before giving up with `Transient`. */
  readonly timeoutMs: number
}

/** @category model */
export interface Locks {
  /**
   * Run `task` holding the lock on `file` (`label` names it in errors); `processOnly`: queued
   * behind this process's other callers only, no lock directory (LockScope `process`).
   */
  readonly withLock: <A>(
    file: string,
    label: string,
    task: TE.TaskEither<CoreError, A>,
    processOnly?: boolean
  ) => TE.TaskEither<CoreError, A>
  /** Release every lock held now and refuse new ones. */
  readonly close: () => Promise<void>
}

interface Held {
  readonly release: () => Promise<void>
  /** Set by proper-lockfile's timer if the lock was taken over or removed while held. */
  readonly state: { compromised: string | undefined }
}

/**
 * Take the lock `path`: link a spare file to its name when the store keeps spares (spares.ts:
 * making a directory costs ~0.85 ms on ext4, a link ~0.012), else make the directory, as
 * proper-lockfile does. Either is atomic and fails with EEXIST while another holds it, so holders
 * of both kinds (an older daemon beside a newer CLI) exclude each other; its mtime says as much
 * about staleness either way.
 */
const makeLock = (path: string): void => {
  const spare = spareIn(dirname(path))
  if (spare !== undefined) {
    try {
      fs.linkSync(spare, path)
      // proper-lockfile sets the lock's mtime next (its precision probe), so the spare's age is lost.
      fs.unlinkSync(spare)
      return
    } catch (e) {
      if (errnoOf(e) !== 'ENOENT') {
        fs.rmSync(spare, { force: true })
        throw e
      }
      // the spare was swept: a directory below
    }
  }
  fs.mkdirSync(path)
}

/** Release or take over the lock `path`, whichever kind it is. */
const removeLock = (path: string): void => {
  try {
    fs.unlinkSync(path)
  } catch (e) {
    const code = errnoOf(e)
    if (code !== 'EISDIR' && code !== 'EPERM') throw e
    fs.rmdirSync(path)
  }
}

// The calls proper-lockfile makes. Its sync variant wraps a shallow copy of the `fs` it is given
// on every lock; the default, all of graceful-fs, costs more to copy than the lock's syscalls.
const LOCK_FS = {
  mkdirSync: makeLock,
  realpathSync: fs.realpathSync,
  statSync: fs.statSync,
  rmdirSync: removeLock,
  utimesSync: fs.utimesSync
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** @category constructors */
export const makeLocks = (settings: LockSettings): Locks => {
  // The tail of each lock's in-process queue; removed when the queue drains, so per-address locks
  // do not accumulate.
  const queues = new Map<string, Promise<void>>()
  const held = new Set<Held>()
  let closed = false

  const acquire = async (file: string, label: string): Promise<E.Either<CoreError, Held>> => {
    const deadline = Date.now() + settings.timeoutMs
    let pause = 4
    for (;;) {
      if (closed) return E.left(io(`lock ${label}`, 'the store is closed'))
      const state: Held['state'] = { compromised: undefined }
      try {
        // The synchronous variant: a lock is a mkdir and a stat, cheaper inline than as two trips
        // through libuv's thread pool (the daemon takes several locks per Docker call).
        const release = lockSync(file, {
          realpath: false,
          fs: LOCK_FS,
          stale: settings.staleMs,
          retries: 0,
          // proper-lockfile's default throws from a timer, which would crash the process; the
          // loss is reported when the task ends instead.
          onCompromised: (err) => {
            state.compromised = causeText(err)
          }
        })
        return E.right({ release: () => Promise.resolve().then(release), state })
      } catch (e) {
        if (errnoOf(e) !== 'ELOCKED') return E.left(fsError('take', `lock ${label}`)(e))
        if (Date.now() >= deadline) {
          return E.left(
            transient(
              `lock ${label} is held by another process (waited ${settings.timeoutMs} ms; ` +
                `a crashed holder's lock expires after ${settings.staleMs} ms)`
            )
          )
        }
        // Jitter keeps many short-lived CNI processes from retrying in step.
        await sleep(Math.min(pause, Math.max(1, deadline - Date.now())) * (0.5 + Math.random()))
        pause = Math.min(pause * 2, 100)
      }
    }
  }

  const exclusive = async <A>(
    file: string,
    label: string,
    task: TE.TaskEither<CoreError, A>
  ): Promise<E.Either<CoreError, A>> => {
    const got = await acquire(file, label)
    if (E.isLeft(got)) return got
    const h = got.right
    held.add(h)
    let out: E.Either<CoreError, A>
    try {
      out = await task()
    } catch (e) {
      // A TaskEither never rejects; this only keeps a broken task from leaking the lock.
      out = E.left(io(`task under lock ${label}`, e))
    }
    if (held.delete(h)) {
      // A failed release (ERELEASED after close or compromise, or an rmdir error) leaves at worst a
      // lock directory that goes stale by itself; the task's own outcome is the answer.
      await h.release().catch(() => undefined)
    }
    if (h.state.compromised !== undefined && E.isRight(out)) {
      return E.left(
        transient(
          `lock ${label} was lost while held (${h.state.compromised}); another process may have run at the same time`
        )
      )
    }
    return out
  }

  return {
    withLock:
      (file, label, task, processOnly = false) =>
      () => {
        const before = queues.get(file) ?? Promise.resolve()
        const result = before.then(() =>
          processOnly
            ? task().catch((e: unknown) => E.left<CoreError>(io(`task under lock ${label}`, e)))
            : exclusive(file, label, task)
        )
        const tail = result.then(() => undefined)
        queues.set(file, tail)
        void tail.then(() => {
          if (queues.get(file) === tail) queues.delete(file)
        })
        return result
      },
    close: async () => {
      closed = true
      const all = [...held]
      held.clear()
      await Promise.all(all.map((h) => h.release().catch(() => undefined)))
    }
  }
}
