/**
 * What `isthmus serve` runs on: its logger, the store of its settings, the Linux dataplane with
 * the daemon's options (or HNS on a Windows host), the built-in control plane, Contrail around it
 * when configured, and the runtime of the CNI calls handed to it.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import {
  builtinControlPlane,
  invalidConfig,
  makeIpam,
  noopAgent,
  systemClock,
  type ClosableLogger,
  type ControlPlane,
  type CoreError,
  type Dataplane,
  type Env,
  type Ipam,
  type Logger,
  type LogLevel,
  type Store
} from '@isthmus/core'
import type { Runtime } from '@isthmus/cni-exec'
import type { RawEnv } from '@isthmus/cni-exec/protocol'
import { DEFAULT_CHAIN_PREFIX, linuxDataplane, type LinuxDataplane } from '@isthmus/dataplane-linux'
import { openHnsDataplane, type DataplaneSettings } from './dataplanes.js'
import { withContrail, type ContrailSettings } from './contrail.js'
import { openLogger } from './logs.js'
import { DAEMON_SPARE_FILES, openStore, type StoreSettings } from './stores.js'
import { openClusterDaemon, type ClusterParts } from './clusterDaemon.js'
import type { ClusterSettings } from './clusterSettings.js'
import { linuxRuntime } from './cni/runtime.js'
import type { SeedSession } from './cni/sessions.js'

/** @category model */
export interface DaemonSettings {
  readonly store: StoreSettings
  /** Prefix of the iptables chains; DEFAULT_CHAIN_PREFIX when absent. */
  readonly chainPrefix?: string | undefined
  /** Multi-host: the cluster this host joins (etcd, the overlay, the agent); one host when absent. */
  readonly cluster?: ClusterSettings | undefined
  /** The daemon's version, in its cluster registration. */
  readonly version?: string | undefined
  /** The Linux bridge when absent. */
  readonly dataplane?: DataplaneSettings | undefined
}

/** The daemon's ports on the built-in control plane. @category model */
export interface Daemon {
  readonly store: Store
  readonly dataplane: Dataplane
  /** The Linux dataplane, when it is the one (spares, firewall chains, the CNI hand-off use it). */
  readonly linux?: LinuxDataplane
  readonly builtin: ControlPlane
  readonly ipam: Ipam
  readonly env: Env
  /** Cluster mode's ports (the Cluster, the overlay, this host's VTEP, the agent); absent on one host. */
  readonly cluster?: ClusterParts
  /**
   * The agent and the cluster (so the others forget this host at once), the dataplane's kept
   * processes, spares and deferred removals, then the store.
   */
  readonly close: () => Promise<void>
}

/** The daemon's log: JSON lines on stderr from `level` up. @category constructors */
export const daemonLogger = (level: LogLevel): ClosableLogger => openLogger({ level, stderr: true })

/**
 * Open the store (sweeping what a killed writer left) and build the dataplane. A daemon answers
 * DeleteEndpoint before the kernel's ~20 ms veth removal is over, keeps veth pairs ready so
 * CreateEndpoint starts no process, feeds its host ip work to kept processes, and starts its
 * other commands (in sandboxes, iptables) through a kept spawner.
 *
 * @category constructors
 */
export const openDaemon = (settings: DaemonSettings, log: Logger): TE.TaskEither<CoreError, Daemon> => {
  const dp = settings.dataplane
  if (dp?.kind === 'hns') return openHnsDaemon(settings, dp.hnsUrl, log)
  const dataplane = linuxDataplane({
    deferLinkRemoval: true,
    spareLinks: 2,
    keepIpProcesses: true,
    spawner: true,
    chainPrefix: settings.chainPrefix ?? DEFAULT_CHAIN_PREFIX,
    log
  })
  const closeDataplane = <A>(e: CoreError): TE.TaskEither<CoreError, A> =>
    pipe(
      TE.fromTask(() => dataplane.close()),
      TE.chain(() => TE.left(e))
    )
  return settings.cluster === undefined
    ? pipe(
        openStore({ spareFiles: DAEMON_SPARE_FILES, ...settings.store }, log),
        TE.map((store): Daemon => {
          const ipam = makeIpam({ store, clock: systemClock, log })
          const builtin = builtinControlPlane(ipam, store, log)
          const env: Env = { store, dataplane, controlPlane: builtin, agent: noopAgent, log, clock: systemClock }
          return {
            store,
            dataplane,
            linux: dataplane,
            builtin,
            ipam,
            env,
            close: async () => {
              await dataplane.close()
              await store.close()
            }
          }
        }),
        TE.orElse((e) => closeDataplane<Daemon>(e))
      )
    : pipe(
        openClusterDaemon(settings.cluster, settings.store, dataplane, settings.version, log),
        TE.map((c): Daemon => ({
          store: c.store,
          dataplane,
          linux: dataplane,
          builtin: c.builtin,
          ipam: c.ipam,
          env: c.env,
          cluster: c.parts,
          close: async () => {
            await c.closeCluster()
            await dataplane.close()
            await c.store.close()
          }
        })),
        TE.orElse((e) => closeDataplane<Daemon>(e))
      )
}

/**
 * The daemon on HNS (a Windows host, or an HNS simulator): one host, the file store, no Linux
 * dataplane and so no spare links, firewall chains or CNI hand-off (HNS endpoints are attached by
 * Docker on Windows, never moved into a namespace by a CNI plugin).
 */
const openHnsDaemon = (
  settings: DaemonSettings,
  hnsUrl: string | undefined,
  log: Logger
): TE.TaskEither<CoreError, Daemon> =>
  settings.cluster !== undefined
    ? TE.left(invalidConfig('the HNS dataplane serves one host: a cluster needs the Linux dataplane'))
    : pipe(
        TE.Do,
        TE.bind('dataplane', () => openHnsDataplane(hnsUrl)),
        TE.bind('store', () => openStore({ spareFiles: DAEMON_SPARE_FILES, ...settings.store }, log)),
        TE.map(({ dataplane, store }): Daemon => {
          const ipam = makeIpam({ store, clock: systemClock, log })
          const builtin = builtinControlPlane(ipam, store, log)
          const env: Env = { store, dataplane, controlPlane: builtin, agent: noopAgent, log, clock: systemClock }
          return { store, dataplane, builtin, ipam, env, close: () => store.close() }
        })
      )

/**
 * The daemon's Env and Docker IPAM: the built-in ones, or Contrail around them. `reconcile`
 * brings the controller and the agent in line with the store (nothing without Contrail).
 *
 * @category constructors
 */
export const daemonControlPlane = (
  daemon: Daemon,
  contrail: ContrailSettings | undefined,
  log: Logger
): { readonly env: Env; readonly ipam: Ipam; readonly reconcile: () => Promise<void> } =>
  contrail === undefined
    ? { env: daemon.env, ipam: daemon.ipam, reconcile: () => Promise.resolve() }
    : withContrail(contrail, { env: daemon.env, ipam: daemon.ipam, store: daemon.store, builtin: daemon.builtin, log })

/**
 * The CNI calls handed to the daemon: netconfs on the daemon's state directory and chain prefix
 * share its store, dataplane and built-in control plane (one IPAM, one view of the pools);
 * others get sessions of their own. Only on the Linux dataplane.
 *
 * @category constructors
 */
export const daemonCni = (
  daemon: Daemon,
  stateDir: string,
  log: Logger
): {
  readonly runtime: (env: RawEnv, selfNames: ReadonlyArray<string>) => Runtime
  readonly seeds: ReadonlyArray<SeedSession>
} => ({
  runtime: (env, selfNames) => linuxRuntime({ env, selfNames, deferLinkRemoval: true }),
  seeds: [
    {
      settings: { stateDir, chainPrefix: daemon.linux?.chainPrefix ?? DEFAULT_CHAIN_PREFIX },
      session: {
        env: { ...daemon.env, controlPlane: daemon.builtin, agent: noopAgent, log },
        close: () => Promise.resolve()
      }
    }
  ]
})
