/**
 * @isthmus/wiring: the one place where settings become ports. The store table, Contrail, the
 * daemon's ports, and the CNI frontend's Runtime on Linux with the daemon's side of the hand-off.
 */
export { openStore, STORE_KINDS, type StoreKind, type StoreOpener, type StoreSettings } from './stores.js'
export { openLogger } from './logs.js'
export {
  contrailController,
  contrailSettings,
  keystoneOf,
  withContrail,
  type ContrailArgs,
  type ContrailDeps,
  type ContrailSettings,
  type KeystoneSource,
  type WithContrail,
  type Wording
} from './contrail.js'
export {
  DATAPLANE_KINDS,
  dataplaneRefusal,
  defaultDataplane,
  openHnsDataplane,
  type DataplaneChoice,
  type DataplaneKind,
  type DataplaneSettings
} from './dataplanes.js'
export { daemonCni, daemonControlPlane, daemonLogger, openDaemon, type Daemon, type DaemonSettings } from './daemon.js'
export { linuxRuntime, type LinuxRuntimeOptions } from './cni/runtime.js'
export { findExecutable, systemCommand } from './cni/commands.js'
export { execDelegate } from './cni/delegate.js'
export { ipProbe } from './cni/probe.js'
export { linuxDockerPorts } from './cni/dockerPorts.js'
export { sessionCache, type SeedSession, type SessionCache } from './cni/sessions.js'
export { cniHandoffServer, type CniCallRecord, type CniHandoffServerOptions } from './cni/handoffServer.js'
export {
  AbsolutePath,
  CLUSTER_DEFAULTS,
  ClusterName,
  ClusterSettings,
  clusterSettings,
  ETCD_FLAGS,
  ETCD_PASSWORD_VAR,
  EtcdConnection,
  EtcdUrl,
  type ClusterArgs,
  type ClusterNeeds
} from './clusterSettings.js'
export { etcdStoreOf, openCluster } from './cluster.js'
export { loadEtcd, type EtcdAdapter } from './etcd.js'
