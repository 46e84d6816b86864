/**
 * The CNI wire protocol as codecs: environment, netconf, results per version, errors, versions.
 * Names stay exactly as on the wire (`cniVersion`, `CNI_IFNAME`); translate.ts maps to core terms.
 */
export * from './Version.js'
export * from './Error.js'
export * from './Args.js'
export * from './Env.js'
export * from './NetConf.js'
export * from './Result.js'
export * from './Json.js'
export * from './IpamType.js'
