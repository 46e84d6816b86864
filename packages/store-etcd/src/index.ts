/**
 * @isthmus/store-etcd: isthmus on etcd v3. `etcdStore` is the Store port (a host's records, leases,
 * locks), `etcdCluster` the Cluster port (hosts, cluster networks, blocks, a watch), both on the
 * etcd3 client with a deadline on every call; `EtcdSettings` is how the wiring says where etcd is.
 */
export { etcdStore } from './etcdStore.js'
export {
  EtcdSettings,
  EtcdEndpoint,
  EtcdPrefix,
  resolveSettings,
  clusterRoot,
  clusterPrefix,
  hostStorePrefix,
  DEFAULT_DEADLINE_MS,
  DEFAULT_LOCK_TIMEOUT_MS,
  DEFAULT_LOCK_TTL_SECONDS,
  type EtcdOptions,
  type Resolved as ResolvedEtcdSettings
} from './settings.js'
export { storeKeys, clusterKeys, segment, type StoreKeys, type ClusterKeys } from './keys.js'
export { QuarantineEntry } from './quarantine.js'
export { etcdCluster } from './etcdCluster.js'
export { VniOwner } from './clusterRecords.js'
