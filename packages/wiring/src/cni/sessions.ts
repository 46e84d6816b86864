/**
 * Core sessions kept open across the calls a daemon serves: a CNI process opens the store and
 * builds the dataplane for each call, the daemon once per (state directory, chain prefix). The
 * store's in-process lock queues then order concurrent calls without polling lock directories.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type { CoreError, Logger } from '@isthmus/core'
import { DEFAULT_CHAIN_PREFIX } from '@isthmus/dataplane-linux'
import type { CoreSession, CoreSettings, Runtime } from '@isthmus/cni-exec'

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
  return {
    around: (runtime) => ({
      ...runtime,
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
            // Each call logs where its own netconf says.
            TE.map((s) => ({ env: { ...s.env, log }, close: () => Promise.resolve() }))
          )()
        }
    }),
    closeAll: async () => {
      const all = [...open.values()]
      open.clear()
      await Promise.all(
        all.map(async (p) => {
          const s = await p
          if (E.isRight(s)) await s.right.close()
        })
      )
    }
  }
}
