/**
 * @isthmus/cnm-server: Docker's remote network driver and IPAM driver over the isthmus core.
 * `createPluginApp` builds the express app from the core's ports; `listen` serves it on the
 * plugin socket; `embeddedEnv` and `startPluginServer` run it inside an integrator's process
 * (docs/embedding.md). The wire protocol is exported on its own as `@isthmus/cnm-server/protocol`.
 */
export {
  clearStaleSocket,
  createPluginApp,
  listen,
  pluginRoutes,
  DEFAULT_SOCKET,
  type ListenOn,
  type PluginDeps,
  type PluginServer
} from './server.js'
export { bugReply, bugText, errorReply, failureReply, type Api, type Reply } from './reply.js'
export { boundedServer, SOCKET_LIMITS, type BoundedServer, type SocketLimits } from './sockets.js'
export { BODY_LIMITS, type BodyLimits } from './body.js'
export { networkOptions, portMappings, OPT, type NetworkOptions } from './options.js'
export {
  embeddedEnv,
  startPluginServer,
  PluginName,
  PLUGIN_SOCKET_DIR,
  PLUGIN_SPEC_DIR,
  type EmbeddedEnv,
  type EmbeddedPlugin,
  type EmbeddedPorts,
  type SocketListen,
  type StartPluginServerOptions,
  type TcpListen
} from './embed.js'
export { ADDRESS_SPACE_OPTION } from './protocol/IpamDriver.js'
export { shutdownRoute } from './shutdown.js'
export { inspectRoutes, leasesAnswer, metricsAnswer, networksAnswer, type DaemonInfo } from './inspect.js'
export {
  METRIC_PREFIX,
  pluginMetrics,
  registerBuildInfo,
  registerProcessMetrics,
  registerStoreMetrics,
  type CniCallObservation,
  type PluginMetrics
} from './metrics.js'
export {
  listenMetrics,
  metricsApp,
  isRemoteMetricsAddress,
  parseMetricsAddr,
  type MetricsAddress,
  type MetricsServer
} from './metricsServer.js'
