/**
 * Cluster settings → the Cluster port on etcd: everything the hosts of a cluster share sits under
 * `/isthmus/<cluster>/cluster/` (hosts, cluster networks, blocks), each host's own records, with
 * the `etcd` store kind, under `/isthmus/<cluster>/hosts/<host>/`.
 */
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import type { Cluster, CoreError, Logger } from '@isthmus/core'
import type { ClusterSettings } from './clusterSettings.js'
import { loadEtcd } from './etcd.js'
import type { StoreSettings } from './stores.js'

/**
 * The Cluster port of `settings` (nothing is asked of etcd before the first call).
 *
 * @category constructors
 */
export const openCluster = (settings: ClusterSettings, log?: Logger): TE.TaskEither<CoreError, Cluster> =>
  pipe(
    loadEtcd(),
    TE.chain((m) =>
      m.etcdCluster({
        ...settings.etcd,
        prefix: m.clusterPrefix(settings.name),
        ...(log === undefined ? {} : { log })
      })
    )
  )

/** The `etcd` store's part of StoreSettings: this host's records in this cluster. @category utils */
export const etcdStoreOf = (settings: ClusterSettings): NonNullable<StoreSettings['etcd']> => ({
  connection: settings.etcd,
  cluster: settings.name,
  host: settings.host
})
