/**
 * Spare files: empty `.tmp-*` files made ahead of time, off the event loop, in the directories a
 * long-running process writes to. Making a file (a new inode) is the dear part of a write on
 * ext4: ~0.8-1 ms measured here, where opening an existing one and writing into it takes ~0.015
 * ms, a rename ~0.15, a link ~0.012. A record write takes a spare instead of making its temp file,
 * and a lock is a spare linked to the lock's name (fsio.ts, locks.ts): a daemon's CNI ADD or
 * `docker run` makes 4-6 of them.
 *
 * Only for a store opened with `spareFiles` (the daemon's): a CNI process writes a few records once
 * and would leave its spares behind. A spare is handed out only while it is young (at most
 * SPARE_MAX_AGE_MS, and a third of the store's temp age), well within the age at which any
 * process's sweep takes a `.tmp-*` file for a dead writer's litter; older ones are removed and
 * made again. A spare that a sweep removed anyway is noticed when it is opened or linked (ENOENT)
 * and the write makes its own file. Each directory's pool is refilled by one chain of
 * asynchronous creations at a time. While they wait, spares are kept young: every half of the age
 * limit their times are set to now (one `utimes` each, off the event loop), so the first call
 * after a quiet minute finds them ready instead of making its files itself. Closing the store
 * removes its spares.
 */
import { promises as fsp } from 'node:fs'
import { sep } from 'node:path'
import { tempPath } from './fsio.js'

/** A spare older than this is never handed out (the sweep's default age is 60 s). @category constants */
export const SPARE_MAX_AGE_MS = 20_000

// How long a directory's pool waits after the last spare taken before it is refilled.
const REFILL_DELAY_MS = 10

interface Spare {
  readonly path: string
  /** When it was made, or last made young again (its times set to now). */
  made: number
}

/** @category model */
export interface Spares {
  /** An empty file in `dir` to write into or link, if one is ready; starts refilling `dir`'s pool. */
  readonly take: (dir: string) => string | undefined
  /** Remove every spare; no more are made. */
  readonly close: () => Promise<void>
}

/**
 * Spares for the directories under `root`, `perDir` each, handed out while younger than
 * `maxAgeMs` (at most SPARE_MAX_AGE_MS).
 *
 * @category constructors
 */
export const makeSpares = (root: string, perDir: number, maxAgeMs = SPARE_MAX_AGE_MS): Spares => {
  const maxAge = Math.min(maxAgeMs, SPARE_MAX_AGE_MS)
  const pools = new Map<string, Spare[]>()
  const refilling = new Map<string, Promise<void>>()
  const prefix = root.endsWith(sep) ? root : `${root}${sep}`
  let closed = false

  // Kept young while they wait (see above); a spare that cannot be touched (swept) leaves its pool.
  let refresher: NodeJS.Timeout | undefined
  const keepYoung = (): void => {
    if (refresher !== undefined || closed) return
    refresher = setInterval(() => {
      for (const pool of pools.values()) {
        for (const spare of pool) {
          const now = new Date()
          fsp.utimes(spare.path, now, now).then(
            () => {
              spare.made = now.getTime()
            },
            () => {
              const at = pool.indexOf(spare)
              if (at >= 0) pool.splice(at, 1)
            }
          )
        }
      }
    }, maxAge / 2)
    refresher.unref()
  }

  const refill = (dir: string, pool: Spare[]): void => {
    if (refilling.has(dir) || closed) return
    const chain = (async () => {
      while (!closed && pool.length < perDir) {
        const path = tempPath(dir)
        try {
          await (await fsp.open(path, 'wx', 0o640)).close()
        } catch {
          // The next write makes its own file; the pool is tried again then.
          return
        }
        if (closed) {
          await fsp.unlink(path).catch(() => undefined)
          return
        }
        pool.push({ path, made: Date.now() })
        keepYoung()
      }
    })().finally(() => refilling.delete(dir))
    refilling.set(dir, chain)
  }

  // The refill waits until the directory has been quiet for REFILL_DELAY_MS: making a file holds
  // its directory's lock for the ~1 ms it takes, which would stall the renames of the calls still
  // writing there, and in a burst of calls (100 parallel ADDs) the files made meanwhile would
  // compete with the ones the burst makes itself once the pool is empty.
  const timers = new Map<string, NodeJS.Timeout>()
  const later = (dir: string, pool: Spare[]): void => {
    clearTimeout(timers.get(dir))
    const timer = setTimeout(() => {
      timers.delete(dir)
      refill(dir, pool)
    }, REFILL_DELAY_MS)
    timer.unref()
    timers.set(dir, timer)
  }

  return {
    take: (dir) => {
      if (closed || perDir <= 0 || !(dir === root || dir.startsWith(prefix))) return undefined
      let pool = pools.get(dir)
      if (pool === undefined) {
        pool = []
        pools.set(dir, pool)
      }
      let got: string | undefined
      const now = Date.now()
      while (got === undefined && pool.length > 0) {
        const s = pool.shift() as Spare
        if (now - s.made < maxAge) got = s.path
        else void fsp.unlink(s.path).catch(() => undefined)
      }
      later(dir, pool)
      return got
    },
    close: async () => {
      closed = true
      clearInterval(refresher)
      for (const t of timers.values()) clearTimeout(t)
      timers.clear()
      await Promise.all([...refilling.values()])
      const all = [...pools.values()].flat()
      pools.clear()
      await Promise.all(all.map((s) => fsp.unlink(s.path).catch(() => undefined)))
    }
  }
}
