/** The Docker plugin wire protocol as io-ts codecs, importable on its own (`@isthmus/cnm-server/protocol`). */
export * as Plugin from './Plugin.js'
export * as NetworkDriver from './NetworkDriver.js'
export * as IpamDriver from './IpamDriver.js'
export * from './common.js'
export * as Inspect from './Inspect.js'
