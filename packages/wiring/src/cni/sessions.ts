/**
 * Core sessions kept open across the calls a daemon serves: a CNI process opens the store and
 * builds the dataplane for each call, the daemon once per (state directory, chain prefix). The
 * store's in-process lock queues then order concurrent calls without polling lock directories.
 */
import * as E from 'fp-ts/lib/Either.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import type { CoreError } from '@isthmus/core'
import { DEFAULT_CHAIN_PREFIX } from '@isthmus/dataplane-linux'
import type { CoreSession, CoreSettings, Runtime } from '@isthmus/cni-exec'

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
  const open = new Map<string, Promise<E.Either<CoreError, CoreSession>>>()
  // A netconf without chainPrefix gets the default one: the same dataplane as one that names it.
  const keyOf = (s: CoreSettings): string => `${s.stateDir}\0${s.chainPrefix ?? DEFAULT_CHAIN_PREFIX}`
  const seeded = new Map(seeds.map((x) => [keyOf(x.settings), Promise.resolve(E.right<CoreError, CoreSession>(x.session))]))
  return {
    around: (runtime) => ({
      ...runtime,
      open:
        (settings, log): TE.TaskEither<CoreError, CoreSession> =>
        async () => {
          const key = keyOf(settings)
          let session = seeded.get(key) ?? open.get(key)
          if (session === undefined) {
            session = runtime.open(settings, log)()
            open.set(key, session)
          }
          const s = await session
          // A store that could not be opened is tried again by the next call.
          if (E.isLeft(s)) {
            if (open.get(key) === session) open.delete(key)
            return s
          }
          // Each call logs where its own netconf says.
          return E.right({ env: { ...s.right.env, log }, close: () => Promise.resolve() })
        }
    }),
    closeAll: async () => {
      const all = [...open.values()]
      open.clear()
      await Promise.all(all.map(async (p) => {
        const s = await p
        if (E.isRight(s)) await s.right.close()
      }))
    }
  }
}
