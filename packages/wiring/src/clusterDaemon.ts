/**
 * The daemon's cluster mode (`isthmus serve --cluster`): the Cluster port on etcd, this host's
 * store (files, or etcd under its own prefix), the VXLAN overlay, the IPAM with its cluster (a
 * cluster pool allocates inside this host's blocks, claims and gives back blocks in etcd), the
 * dataplane wrapped so that a cluster network's bridge gets its VXLAN device and MTU, and the agent
 * that registers this host and keeps the overlay's kernel entries in line with the cluster.
 * Opened as a saga (a step that fails closes what the earlier ones opened); closed in reverse.
 */
import { pipe } from 'fp-ts/lib/function.js'
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import {
  begin,
  bindStep,
  builtinControlPlane,
  clusterDataplane,
  makeIpam,
  noopAgent,
  startClusterAgent,
  systemClock,
  type Cluster,
  type ClusterAgent,
  type CoreError,
  type Env,
  type HostRecord,
  type Logger,
  type Overlay,
  type SagaEnv,
  type Store,
  type Vtep
} from '@isthmus/core'
import { linuxOverlay, type LinuxDataplane } from '@isthmus/dataplane-linux'
import { etcdStoreOf, openCluster } from './cluster.js'
import type { ClusterSettings } from './clusterSettings.js'
import { openStore, type StoreSettings } from './stores.js'

/** What cluster mode adds to the daemon. @category model */
export interface ClusterParts {
  readonly settings: ClusterSettings
  readonly cluster: Cluster
  readonly overlay: Overlay
  readonly vtep: Vtep
  readonly agent: ClusterAgent
}

/** The ports of a cluster daemon (its `Daemon` record is made from them). @category model */
export interface ClusterDaemonPorts {
  readonly store: Store
  readonly env: Env
  readonly ipam: ReturnType<typeof makeIpam>
  readonly builtin: ReturnType<typeof builtinControlPlane>
  readonly parts: ClusterParts
  /** The agent, then the cluster store; the dataplane and this host's store are the caller's to close after. */
  readonly closeCluster: () => Promise<void>
}

const closing =
  (what: string, close: () => Promise<void>) =>
  (r: SagaEnv): TE.TaskEither<CoreError, void> =>
    TE.tryCatch(
      () => close(),
      (e): CoreError => {
        r.log.warn(`cannot close ${what}`, { detail: String(e) })
        return { _tag: 'Io', op: `close ${what}`, cause: String(e) }
      }
    )

/**
 * Open cluster mode on `inner`, the host's Linux dataplane.
 *
 * @category constructors
 */
export const openClusterDaemon = (
  settings: ClusterSettings,
  store: StoreSettings,
  inner: LinuxDataplane,
  version: string | undefined,
  log: Logger
): TE.TaskEither<CoreError, ClusterDaemonPorts> =>
  pipe(
    begin<SagaEnv>('open the cluster'),
    bindStep(
      'cluster',
      () => () => openCluster(settings, log),
      ({ cluster }) => closing('the cluster store', () => cluster.close())
    ),
    bindStep(
      'store',
      () => () => openStore(store.kind === 'etcd' ? { ...store, etcd: etcdStoreOf(settings) } : store, log),
      ({ store: s }) => closing('the store', () => s.close())
    ),
    RTE.let('overlay', () =>
      linuxOverlay({
        underlay: settings.underlay,
        ...(settings.underlayDev === undefined ? {} : { underlayDev: settings.underlayDev }),
        log
      })
    ),
    bindStep(
      'vtep',
      ({ overlay }) =>
        () =>
          overlay.vtep()
    ),
    RTE.let('ipam', ({ cluster, store: s, overlay }) =>
      makeIpam({
        store: s,
        clock: systemClock,
        log,
        cluster: {
          cluster,
          host: settings.host,
          settings: {
            underlayMtu: settings.underlayMtu,
            overhead: overlay.overhead,
            blockPrefix: settings.blockPrefix
          }
        }
      })
    ),
    bindStep(
      'agent',
      ({ cluster, store: s, overlay, vtep }) =>
        () =>
          startClusterAgent({
            cluster,
            overlay,
            store: s,
            self: selfRecord(settings, vtep, version),
            ttlSeconds: settings.ttlSeconds,
            log
          }),
      ({ agent }) => closing('the cluster agent', () => agent.close())
    ),
    RTE.map(({ cluster, store: s, overlay, vtep, ipam, agent }): ClusterDaemonPorts => {
      const builtin = builtinControlPlane(ipam, s, log)
      const dataplane = clusterDataplane(inner, agent)
      const env: Env = { store: s, dataplane, controlPlane: builtin, agent: noopAgent, log, clock: systemClock }
      return {
        store: s,
        env,
        ipam,
        builtin,
        parts: { settings, cluster, overlay, vtep, agent },
        closeCluster: async () => {
          // The agent first: it removes this host's registration, so the others forget it at once.
          await agent.close()
          await cluster.close()
        }
      }
    })
  )({ log })

const selfRecord = (s: ClusterSettings, vtep: Vtep, version: string | undefined): HostRecord => ({
  name: s.host,
  underlay: vtep.underlay,
  vtepMac: vtep.mac,
  since: systemClock.now().toISOString(),
  ...(version === undefined ? {} : { version })
})
