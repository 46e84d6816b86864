/**
 * Store access shared by the flows: loading records (absent = NotFound), deletes where absent
 * counts as success, and the per-object locks.
 */
import * as O from 'fp-ts/lib/Option.js'
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { isNotFound, notFound } from '../errors.js'
import type { EndpointId, NetworkId } from '../ids.js'
import type { Endpoint, EndpointOwner } from '../model/Endpoint.js'
import type { Network } from '../model/Network.js'
import type { Env, Flow } from '../ports/Env.js'
import type { PutOptions } from '../ports/Store.js'

/**
 * Run `flow` holding the store lock `name`, across processes. Creating flows lock the id they
 * create, so concurrent callers (twenty parallel CNI ADDs on one network) see one creation.
 * Network locks are never nested with endpoint locks.
 *
 * The flow is built only once the lock is held: a port may read its state when a method is
 * called rather than when the task runs (memoryStore's `get` does), and such a read must not
 * happen before the lock.
 */
export const locked =
  (name: string) =>
  <A>(flow: Flow<A>): Flow<A> =>
  (env) =>
    env.held?.has(name) === true ? flow(env) : env.store.withLock(name, () => flow(holding(env, name))())

// `env` inside the lock `name`: flows below see it held (Env `held`).
const holding = (env: Env, name: string): Env => ({ ...env, held: new Set([...(env.held ?? []), name]) })

/**
 * `locked` for an endpoint id. A Docker endpoint is only ever changed by the one process that
 * serves dockerd (CNI processes and their gc touch container-owned endpoints only), so its lock
 * is that process's own queue (LockScope `process`): no lock directory on every Docker call.
 * `owner` when the caller knows it (creation); else the stored record says, read before locking
 * (an id is one owner's for its whole life).
 */
export const lockedEndpoint =
  (id: EndpointId, owner?: EndpointOwner['kind']) =>
  <A>(flow: Flow<A>): Flow<A> =>
  (env) =>
  async () => {
    const name = `endpoint:${id}`
    if (env.held?.has(name) === true) return flow(env)()
    const kind =
      owner ??
      (await env.store.endpoints
        .get(id)()
        .then((r) => (r._tag === 'Right' && O.isSome(r.right) ? r.right.value.owner.kind : undefined)))
    return env.store.withLock(name, () => flow(holding(env, name))(), kind === 'docker' ? 'process' : 'host')()
  }

/** Treat NotFound as success, and forget the result (deletes). */
export const absentOk = <A>(flow: Flow<A>): Flow<void> =>
  pipe(
    flow,
    RTE.map(() => undefined),
    RTE.orElse((e) => (isNotFound(e) ? RTE.right(undefined) : RTE.left(e)))
  )

export const getNetwork =
  (id: NetworkId): Flow<O.Option<Network>> =>
  (env) =>
    env.store.networks.get(id)

export const loadNetwork = (id: NetworkId): Flow<Network> =>
  pipe(getNetwork(id), RTE.chain(O.match(() => RTE.left(notFound('network', id)), RTE.right)))

export const getEndpoint =
  (id: EndpointId): Flow<O.Option<Endpoint>> =>
  (env) =>
    env.store.endpoints.get(id)

export const loadEndpoint = (id: EndpointId): Flow<Endpoint> =>
  pipe(getEndpoint(id), RTE.chain(O.match(() => RTE.left(notFound('endpoint', id)), RTE.right)))

export const putEndpoint =
  (endpoint: Endpoint, options?: PutOptions): Flow<void> =>
  (env) =>
    env.store.endpoints.put(endpoint, options)

export const listEndpoints: Flow<ReadonlyArray<Endpoint>> = (env) => env.store.endpoints.list()
