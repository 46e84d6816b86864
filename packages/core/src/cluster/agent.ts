/**
 * The cluster agent of one host: it registers the host in the cluster (under a lease kept alive
 * while it runs), brings the host's blocks in line with the cluster once (taking in those the
 * cluster says are its own, giving back those left empty), and then follows the
 * cluster's views to keep the overlay of every local cluster network pointing at the other live
 * hosts that hold blocks of it. A host whose registration expired is forgotten (its routes go);
 * when it registers again it is back. No I/O of its own: only the ports.
 *
 * One reconciliation runs at a time, and the dataplane decorator's own overlay work
 * (`attach`/`detach`) takes the same turn, so a network being removed is never made again behind
 * its removal. A failure is logged and tried again at the next view or after `retryMs`.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { describe, type CoreError } from '../errors.js'
import type { NetworkId } from '../ids.js'
import { releaseEmptyBlocks, syncBlocks } from '../ipam/clusterBlocks.js'
import { CLUSTER_VNI_OPTION, clusterNameOf, type HostRecord } from '../model/Cluster.js'
import type { Network } from '../model/Network.js'
import { systemClock, type Clock } from '../ports/Clock.js'
import type { Closable, Cluster, ClusterView } from '../ports/Cluster.js'
import type { Logger } from '../ports/Logger.js'
import type { Overlay, OverlayPeer, OverlaySpec, Vtep } from '../ports/Overlay.js'
import type { Store } from '../ports/Store.js'

/** @category model */
export interface ClusterAgentDeps {
  readonly cluster: Cluster
  readonly overlay: Overlay
  readonly store: Store
  /** This host as it registers: its name, underlay address and VTEP MAC. */
  readonly self: HostRecord
  readonly ttlSeconds: number
  readonly log: Logger
  readonly clock?: Clock
  /** How soon a failed reconciliation is tried again without a new view (default 1000 ms). */
  readonly retryMs?: number
}

/** @category model */
export interface ClusterAgent {
  /** The latest view of the cluster, once one arrived. */
  readonly view: () => ClusterView | undefined
  /** Reconcile every local cluster network now; resolves when done (errors are logged). */
  readonly refresh: () => Promise<void>
  /** Stop following the cluster and revoke the registration (the overlays stay as they are). */
  readonly close: () => Promise<void>
  /** The other live hosts holding blocks of a local cluster network, in the current view. */
  readonly peersOf: (network: Network) => ReadonlyArray<OverlayPeer>
  /**
   * Make (or repair) the overlay of a local cluster network and point it at its peers now, in the
   * agent's turn; reconciling manages the network from then on.
   */
  readonly attach: (network: Network) => TE.TaskEither<CoreError, void>
  /** Remove the overlay of a network being deleted, in the agent's turn; reconciling leaves it alone from then on. */
  readonly detach: (network: Network) => TE.TaskEither<CoreError, void>
}

/** The VXLAN id a local cluster network's record carries, if it is one. @category utils */
export const vniOf = (network: Network): number | undefined => {
  if (clusterNameOf(network.options) === undefined) return undefined
  const v = Number(network.options[CLUSTER_VNI_OPTION])
  return Number.isInteger(v) && v > 0 ? v : undefined
}

/** The other live hosts of `view` holding blocks of `network`'s cluster network. @category utils */
export const peersIn = (view: ClusterView | undefined, self: string, network: Network): ReadonlyArray<OverlayPeer> => {
  const name = clusterNameOf(network.options)
  if (view === undefined || name === undefined) return []
  return view.hosts
    .filter((h) => h.name !== self)
    .map((h): OverlayPeer => ({
      host: h.name,
      underlay: h.underlay,
      vtepMac: h.vtepMac,
      blocks: view.blocks
        .filter((b) => b.network === name && b.host === h.name)
        .map((b) => b.cidr)
        .sort()
    }))
    .filter((p) => p.blocks.length > 0)
    .sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0))
}

const run = async <A>(te: TE.TaskEither<CoreError, A>): Promise<E.Either<CoreError, A>> => te()

/**
 * Start the agent: register, reconcile the host's blocks with the cluster (failures logged), then
 * watch. Fails when the registration or the watch cannot be made (the cluster store is down).
 *
 * @category constructors
 */
export const startClusterAgent = (deps: ClusterAgentDeps): TE.TaskEither<CoreError, ClusterAgent> => {
  const { cluster, overlay, store, self, log } = deps
  const retryMs = deps.retryMs ?? 1000
  const vtep: Vtep = { underlay: self.underlay, mac: self.vtepMac }

  let current: ClusterView | undefined
  let registration: Closable | undefined
  let closed = false
  let retry: ReturnType<typeof setTimeout> | undefined
  // One turn at a time: reconciliations and the decorator's attach/detach.
  let turn: Promise<unknown> = Promise.resolve()
  let pending: Promise<void> | undefined
  const retired = new Set<NetworkId>()
  // What this agent last made of each network's overlay: ensured, and the peers last set.
  const applied = new Map<NetworkId, string>()

  const inTurn = <A>(f: () => Promise<A>): Promise<A> => {
    const next = turn.then(f, f)
    turn = next.then(
      () => undefined,
      () => undefined
    )
    return next
  }

  const specOf = (network: Network, vni: number): OverlaySpec => ({ network, vni, vtep })

  const scheduleRetry = (): void => {
    if (closed || retry !== undefined) return
    retry = setTimeout(() => {
      retry = undefined
      void refresh()
    }, retryMs)
  }

  // Ensure once, set peers when they changed: a view that changes nothing of a network costs nothing.
  const apply = async (network: Network): Promise<boolean> => {
    const vni = vniOf(network)
    if (vni === undefined) return true
    const peers = peersIn(current, self.name, network)
    const key = JSON.stringify([network.bridge, vni, peers])
    if (applied.get(network.id) === key) return true
    const spec = specOf(network, vni)
    const ensured = applied.has(network.id) ? E.right(undefined) : await run(overlay.ensure(spec))
    const r = E.isLeft(ensured) ? ensured : await run(overlay.setPeers(spec, peers))
    if (E.isLeft(r)) {
      applied.delete(network.id)
      log.warn(`cannot set up the overlay of cluster network ${clusterNameOf(network.options)}: ${describe(r.left)}`, {
        networkId: network.id,
        error: r.left._tag
      })
      return false
    }
    applied.set(network.id, key)
    log.debug('overlay reconciled', { networkId: network.id, peers: peers.map((p) => p.host) })
    return true
  }

  // A registration lost while the host was cut off from the cluster for longer than its TTL: the
  // host registers again as soon as a view shows it missing.
  const stillRegistered = async (): Promise<void> => {
    if (closed || current === undefined || current.hosts.some((h) => h.name === self.name)) return
    const r = await run(cluster.hosts.register(self, deps.ttlSeconds))
    if (E.isLeft(r)) {
      log.warn(`this host's registration is gone and cannot be made again: ${describe(r.left)}`)
      scheduleRetry()
      return
    }
    const old = registration
    registration = r.right
    log.info('this host registered again after its registration expired', { host: self.name })
    await old?.close()
  }

  const reconcile = async (): Promise<void> => {
    if (closed || current === undefined) return
    await stillRegistered()
    const listed = await run(store.networks.list())
    if (E.isLeft(listed)) {
      log.warn(`cannot read the local networks to reconcile overlays: ${describe(listed.left)}`)
      scheduleRetry()
      return
    }
    const local = listed.right.filter((n) => vniOf(n) !== undefined)
    const ids = new Set(local.map((n) => n.id))
    for (const id of [...applied.keys()]) if (!ids.has(id)) applied.delete(id)
    for (const id of [...retired]) if (!ids.has(id)) retired.delete(id)
    let ok = true
    for (const n of local) {
      if (retired.has(n.id)) continue
      ok = (await apply(n)) && ok
    }
    if (!ok) scheduleRetry()
  }

  // Views coalesce: while one reconciliation runs, the next waits and reads the latest view.
  const refresh = (): Promise<void> => {
    if (pending !== undefined) return pending
    const p = inTurn(async () => {
      pending = undefined
      try {
        await reconcile()
      } catch (e) {
        log.error('overlay reconciliation failed', { cause: String(e) })
        scheduleRetry()
      }
    })
    pending = p
    return p
  }

  const onView = (view: ClusterView): void => {
    current = view
    void refresh()
  }

  const onError = (e: CoreError): void => {
    log.warn(`the cluster store is unreachable; overlays stay as they are until it answers: ${describe(e)}`)
  }

  const attach =
    (network: Network): TE.TaskEither<CoreError, void> =>
    () =>
      inTurn(async () => {
        retired.delete(network.id)
        applied.delete(network.id)
        const vni = vniOf(network)
        if (vni === undefined) return E.right(undefined)
        const spec = specOf(network, vni)
        const peers = peersIn(current, self.name, network)
        const r = await run(
          pipe(
            overlay.ensure(spec),
            TE.chain(() => overlay.setPeers(spec, peers))
          )
        )
        if (E.isRight(r)) applied.set(network.id, JSON.stringify([network.bridge, vni, peers]))
        return r
      })

  const detach =
    (network: Network): TE.TaskEither<CoreError, void> =>
    () =>
      inTurn(async () => {
        retired.add(network.id)
        applied.delete(network.id)
        const vni = vniOf(network)
        return vni === undefined ? E.right(undefined) : run(overlay.remove(specOf(network, vni)))
      })

  const blockDeps = { store, cluster: { cluster, host: self.name }, clock: deps.clock ?? systemClock, log }
  const start = (first: Closable): TE.TaskEither<CoreError, ClusterAgent> => {
    registration = first
    return pipe(
      // The host's blocks as the cluster has them, and those left empty by a gc given back (a
      // failure only costs this check).
      TE.right(blockDeps),
      TE.chain(syncBlocks),
      TE.chain(() => releaseEmptyBlocks(blockDeps)),
      TE.map(() => undefined),
      TE.orElse((e) => {
        log.warn(`cannot check this host's blocks against the cluster: ${describe(e)}`)
        return TE.right(undefined)
      }),
      TE.chain(() => cluster.watch(onView, onError)),
      TE.orElseFirst(() => TE.fromTask(() => first.close())),
      TE.map((watch): ClusterAgent => ({
        view: () => current,
        refresh,
        peersOf: (network) => peersIn(current, self.name, network),
        attach,
        detach,
        close: async () => {
          if (closed) return
          closed = true
          if (retry !== undefined) clearTimeout(retry)
          await watch.close()
          await turn
          await registration?.close()
        }
      }))
    )
  }

  return pipe(cluster.hosts.register(self, deps.ttlSeconds), TE.chain(start))
}
