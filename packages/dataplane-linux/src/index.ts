/**
 * @isthmus/dataplane-linux: the isthmus Dataplane port on Linux. Bridges, veth pairs, network
 * namespaces and iptables, driven through iproute2 (`ip -json`, `ip -batch -`), `nsenter` and
 * `iptables-save`/`iptables-restore`, all run with `execFile` (no shell, no native addon).
 */
export {
  DEFAULT_CHAIN_PREFIX,
  linuxDataplane,
  type LinuxDataplane,
  type LinuxDataplaneOptions
} from './linuxDataplane.js'
export { batchProcesses, type BatchProcesses, type BatchProcessOptions } from './batchProcess.js'
export { defaultSpawnerBinary, spawnerExec, type KeptSpawner, type SpawnerOptions } from './spawner.js'
export { execFileExec, TIMEOUT_EXIT, type Exec, type ExecOptions, type ExecOutput } from './exec.js'
export { procSysctl, type Sysctl, type SysctlKey } from './sysctl.js'
export { bridgeMac, OWNER_MARK_PREFIX } from './bridge.js'
export { chainNames } from './iptables.js'
export {
  ownLinks,
  removeHostState,
  type HostRemovalOptions,
  type HostRemoved,
  type InstalledRecords
} from './uninstall.js'
export { endpointTag, networkTag } from './nat.js'
// Read-only helpers for frontends that inspect what the dataplane made (CNI CHECK, results).
export { findLink, host, inNetns, ip as runIp, type Tools, type Where } from './ip.js'
export { decodeLinks, IpLink, type IpAddrInfo } from './iproute.js'
export { linuxOverlay, VXLAN_IPV4_OVERHEAD, type LinuxOverlayOptions } from './overlay/linuxOverlay.js'
export { OVERLAY_IF_PREFIX, OVERLAY_MARK_PREFIX, overlayDeviceName, VXLAN_PORT } from './overlay/device.js'
export { vtepMacOf } from './overlay/vtep.js'
