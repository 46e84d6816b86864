/**
 * @isthmus/cnm-server: Docker's remote network driver and IPAM driver over the isthmus core.
 * `createPluginApp` builds the express app from the core's ports; `listen` serves it on the
 * plugin socket. The wire protocol is exported on its own as `@isthmus/cnm-server/protocol`.
 */
export { createPluginApp, listen, pluginRoutes, DEFAULT_SOCKET, type ListenOn, type PluginDeps, type PluginServer } from './server.js'
export { errorReply, type Api, type Reply } from './reply.js'
export { networkOptions, portMappings, OPT, type NetworkOptions } from './options.js'
