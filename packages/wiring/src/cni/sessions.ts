/**
 * Core sessions kept open across the calls a daemon serves: a CNI process opens the store and
 * builds the dataplane for each call, the daemon once per (state directory, chain prefix). The
 * store's in-process lock queues then order concurrent calls without polling lock directories.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type { ClosableLogger, CoreError, LogSettings, Logger } from '@isthmus/core'
import { DEFAULT_CHAIN_PREFIX } from '@isthmus/dataplane-linux'
import type { CoreSession, CoreSettings, Runtime } from '@isthmus/cni-exec'
import { timedEnv } from './steps.js'

// Loggers kept open at most (each a file transport when the netconf names a logFile).
const MAX_LOGGERS = 32

type Opening = Promise<E.Either<CoreError, CoreSession>>

/** @category model */
export interface SessionCache {
  /** `runtime` with `open` answered from the cache; its sessions' `close` does nothing. */
  readonly around: (runtime: Runtime) => Runtime
  /** Close every cached session (the daemon stops). */
  readonly closeAll: () => Promise<void>
}

/** A session the daemon opened itself, for the netconfs that name its state directory. @category model */
export interface SeedSession {
  readonly settings: CoreSettings
  readonly session: CoreSession
}

/**
 * `seeds`: sessions to answer from as they are (the daemon's own store and dataplane, so CNI and
 * Docker calls on one state directory share one lock queue, one set of spare links and deferred
 * removals). Their `close` is the owner's business: closeAll leaves them.
 *
 * @category constructors
 */
export const sessionCache = (seeds: ReadonlyArray<SeedSession> = []): SessionCache => {
  const open = new Map<string, Opening>()
  // A netconf without chainPrefix gets the default one: the same dataplane as one that names it.
  const keyOf = (s: CoreSettings): string => `${s.stateDir}\0${s.chainPrefix ?? DEFAULT_CHAIN_PREFIX}`
  const seeded = new Map(
    seeds.map((x) => [keyOf(x.settings), Promise.resolve(E.right<CoreError, CoreSession>(x.session))])
  )
  // The session of `key`: a seed, one being opened or open, or a new one.
  const sessionOf = (key: string, runtime: Runtime, settings: CoreSettings, log: Logger): Opening => {
    const known = seeded.get(key) ?? open.get(key)
    if (known !== undefined) return known
    const opening = runtime.open(settings, log)()
    open.set(key, opening)
    return opening
  }
  // One timed copy of each session's ports.
  const timed = new WeakMap<CoreSession, CoreSession['env']>()
  const timedOf = (s: CoreSession): CoreSession['env'] => {
    const known = timed.get(s)
    if (known !== undefined) return known
    const made = timedEnv(s.env)
    timed.set(s, made)
    return made
  }
  // The loggers of the calls, one per settings (a winston logger per call cost ~1 ms), kept open.
  const loggers = new Map<string, ClosableLogger>()
  const loggerOf =
    (runtime: Runtime) =>
    (settings: LogSettings): ClosableLogger => {
      const key = JSON.stringify([settings.level, settings.stderr, settings.file ?? null])
      const known = loggers.get(key)
      if (known !== undefined) return { logger: known.logger, close: () => Promise.resolve() }
      const made = runtime.logger(settings)
      // Netconfs naming ever new log files do not pile up open files: past the bound, per call.
      if (loggers.size >= MAX_LOGGERS) return made
      loggers.set(key, made)
      return { logger: made.logger, close: () => Promise.resolve() }
    }
  return {
    around: (runtime) => ({
      ...runtime,
      logger: loggerOf(runtime),
      open:
        (settings, log): TE.TaskEither<CoreError, CoreSession> =>
        () => {
          const key = keyOf(settings)
          const opening = sessionOf(key, runtime, settings, log)
          return pipe(
            () => opening,
            // A store that could not be opened is tried again by the next call.
            TE.mapLeft((e) => {
              if (open.get(key) === opening) open.delete(key)
              return e
            }),
            // Each call logs where its own netconf says; its ports are timed (steps.ts).
            TE.map((s) => ({ env: { ...timedOf(s), log }, close: () => Promise.resolve() }))
          )()
        }
    }),
    closeAll: async () => {
      const all = [...open.values()]
      open.clear()
      const logs = [...loggers.values()]
      loggers.clear()
      await Promise.all(logs.map((l) => l.close().catch(() => undefined)))
      await Promise.all(
        all.map(async (p) => {
          const s = await p
          if (E.isRight(s)) await s.right.close()
        })
      )
    }
  }
}
