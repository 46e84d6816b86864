/**
 * Where a handed-off call's time goes: the daemon times the ports a call uses (the store's reads
 * and writes, taking locks, the control plane's address work, the dataplane's kernel work) and
 * logs the sums with the call's line, so an operator (and `pnpm bench:cni`) can see which step
 * costs what. Calls run concurrently, so each call's sums live in its own async context
 * (AsyncLocalStorage), and each step counts its own time only: the control plane's store writes
 * are `store`, not `controlPlane`. What no port took is `envelope` (decoding, flows, the result).
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import type { Collection, ControlPlane, CoreError, Dataplane, LeaseStore, Store } from '@isthmus/core'

/** Milliseconds per step of one call. @category model */
export type StepTimes = Record<string, number>

interface Frame {
  readonly steps: StepTimes
  /** Time spent in timed steps started inside this one. */
  inner: number
}

const frames = new AsyncLocalStorage<Frame>()

const now = (): number => Number(process.hrtime.bigint()) / 1e6

const add = (steps: StepTimes, step: string, ms: number): void => {
  steps[step] = (steps[step] ?? 0) + ms
}

/**
 * Run `call`, timing the steps of the ports it uses (those wrapped by timedSession); resolves its
 * value and its steps, rounded to 0.01 ms, with `envelope` for the rest of `totalMs`.
 *
 * @category utils
 */
export const timeCall = async <A>(call: () => Promise<A>): Promise<{ value: A; steps: StepTimes }> => {
  const root: Frame = { steps: {}, inner: 0 }
  const t0 = now()
  const value = await frames.run(root, call)
  add(root.steps, 'envelope', now() - t0 - root.inner)
  const steps = Object.fromEntries(Object.entries(root.steps).map(([k, v]) => [k, Math.round(v * 100) / 100]))
  return { value, steps }
}

/** `task`, its own time (less its timed inner steps) added to `step` of the running call. */
const timed =
  <A>(step: string, task: TE.TaskEither<CoreError, A>): TE.TaskEither<CoreError, A> =>
  async () => {
    const parent = frames.getStore()
    if (parent === undefined) return task()
    const frame: Frame = { steps: parent.steps, inner: 0 }
    const t0 = now()
    try {
      return await frames.run(frame, task)
    } finally {
      const took = now() - t0
      parent.inner += took
      add(parent.steps, step, took - frame.inner)
    }
  }

// Every member that returns a TaskEither, wrapped; the others as they are.
const wrapAll = <T extends object>(step: string, target: T, members: ReadonlyArray<keyof T>): T => {
  const out = { ...target } as Record<string, unknown>
  for (const m of members) {
    const f = target[m] as unknown as (...a: unknown[]) => TE.TaskEither<CoreError, unknown>
    out[m as string] = (...a: unknown[]) => timed(step, f(...a))
  }
  return out as T
}

const COLLECTION: ReadonlyArray<keyof Collection<string, unknown>> = ['get', 'put', 'delete', 'list']
const LEASES: ReadonlyArray<keyof LeaseStore> = [
  'reserve',
  'release',
  'transfer',
  'get',
  'list',
  'getCursor',
  'setCursor',
  'deleteCursor'
]

/**
 * The store with its records and leases timed as `store`, and taking a lock (until the task under
 * it starts) as `locks`.
 *
 * @category utils
 */
export const timedStore = (store: Store): Store => ({
  ...store,
  networks: wrapAll('store', store.networks, COLLECTION),
  endpoints: wrapAll('store', store.endpoints, COLLECTION),
  pools: wrapAll('store', store.pools, COLLECTION),
  leases: wrapAll('store', store.leases, LEASES),
  withLock: (name, task, scope) => () => {
    // The lock's time: taking it (and waiting for a holder) until the task starts, and releasing
    // it after the task ends.
    const parent = frames.getStore()
    if (parent === undefined) return store.withLock(name, task, scope)()
    const lockTime = (since: number): void => {
      const took = now() - since
      parent.inner += took
      add(parent.steps, 'locks', took)
    }
    const t0 = now()
    let ended: number | undefined
    const held: typeof task = () => {
      lockTime(t0)
      return task().finally(() => {
        ended = now()
      })
    }
    return store
      .withLock(name, held, scope)()
      .finally(() => {
        if (ended !== undefined) lockTime(ended)
      })
  }
})

const DATAPLANE: ReadonlyArray<keyof Dataplane> = [
  'ensureNetwork',
  'deleteNetwork',
  'ensureEndpoint',
  'place',
  'deleteEndpoint',
  'publishPorts',
  'unpublishPorts',
  'inventory',
  'removeLink'
]

/** @category utils */
export const timedDataplane = <D extends Dataplane>(dataplane: D): D => wrapAll('dataplane', dataplane, DATAPLANE)

/** @category utils */
export const timedControlPlane = (cp: ControlPlane): ControlPlane =>
  wrapAll('controlPlane', cp, ['ensureNetwork', 'deleteNetwork', 'createEndpoint', 'deleteEndpoint'])

/**
 * A session's ports, timed (see timeCall); outside a timed call they cost one lookup.
 *
 * @category utils
 */
export const timedEnv = <E extends { store: Store; dataplane: Dataplane; controlPlane: ControlPlane }>(env: E): E => ({
  ...env,
  store: timedStore(env.store),
  dataplane: timedDataplane(env.dataplane),
  controlPlane: timedControlPlane(env.controlPlane)
})
