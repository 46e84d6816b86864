/**
 * The Store adapters isthmus can run on, as one table: a kind names an opener. Everything that
 * opens a store (the daemon, a CNI call, the inspection commands) goes through `openStore`, so a
 * new Store adapter is its package and one entry here (plus, if it has settings of its own, their
 * fields in StoreSettings).
 */
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { DEFAULT_STATE_DIR, invalidConfig, type CoreError, type Logger, type Store } from '@isthmus/core'
import type { EtcdSettings } from '@isthmus/store-etcd'
import { loadEtcd } from './etcd.js'
import { fileStore } from '@isthmus/store-fs'

/** Where and how to open the store; each kind reads the fields it knows. @category model */
export interface StoreSettings {
  /** The adapter; `file` when absent. */
  readonly kind?: StoreKind
  /** `file`: the state directory; DEFAULT_STATE_DIR when absent. */
  readonly stateDir?: string
  /**
   * Sweep what a killed writer left while opening (the daemon does); a short-lived reader or a
   * CNI call does not (listing sweeps what it reads anyway).
   */
  readonly sweepOnOpen?: boolean
  /**
   * `file`: empty files kept ready per directory (store-fs `spareFiles`), so that a write or a lock
   * makes no file: a long-running process's (the daemon's stores). Default none.
   */
  readonly spareFiles?: number
  /**
   * `etcd`: how to reach it, and whose records these are: a host's own records sit under
   * `/isthmus/<cluster>/hosts/<host>/` (the cluster's shared keys are the Cluster port's).
   */
  readonly etcd?: {
    readonly connection: Omit<EtcdSettings, 'prefix'>
    readonly cluster: string
    readonly host: string
  }
}

/**
 * Spare files per directory of a daemon's file store. A CNI ADD writes the endpoint record twice
 * and a lease, and takes one lock, each into a new file; a node starting tens of pods at once
 * would otherwise make most of those files on the daemon's event loop (~0.5 ms each on ext4) once
 * a small pool ran dry. Measured with 100 parallel ADDs (bench:cni): the daemon's main thread
 * used about a fifth less CPU with 64 than with 4. The cost: up to 64 empty files per directory
 * written to, made while the daemon is idle and touched every ten seconds.
 *
 * @category constants
 */
export const DAEMON_SPARE_FILES = 64

/** @category model */
export type StoreOpener = (settings: StoreSettings, log?: Logger) => TE.TaskEither<CoreError, Store>

const STORES = {
  file: (s, log) =>
    fileStore({
      stateDir: s.stateDir ?? DEFAULT_STATE_DIR,
      ...(s.sweepOnOpen === undefined ? {} : { sweepOnOpen: s.sweepOnOpen }),
      ...(s.spareFiles === undefined ? {} : { spareFiles: s.spareFiles }),
      ...(log === undefined ? {} : { log })
    }),
  etcd: (s, log) => {
    const etcd = s.etcd
    return etcd === undefined
      ? TE.left(invalidConfig("the etcd store is a cluster host's: it needs the cluster and host names (--cluster)"))
      : pipe(
          loadEtcd(),
          TE.chain((m) =>
            m.etcdStore({
              ...etcd.connection,
              prefix: m.hostStorePrefix(etcd.cluster, etcd.host),
              ...(log === undefined ? {} : { log })
            })
          )
        )
  }
} satisfies Record<string, StoreOpener>

/** @category model */
export type StoreKind = keyof typeof STORES

/** The kinds `openStore` knows, for a flag's choices. @category constants */
export const STORE_KINDS = Object.keys(STORES) as ReadonlyArray<StoreKind>

/**
 * Open the store `settings` name.
 *
 * @category constructors
 */
export const openStore: StoreOpener = (settings, log) => STORES[settings.kind ?? 'file'](settings, log)
