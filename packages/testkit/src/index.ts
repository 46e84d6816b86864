/** @isthmus/testkit: support for isthmus's own end-to-end tests (not published). */
export * from './proc.js'
export * from './names.js'
export * from './docker.js'
export * from './host.js'
export * from './plugin.js'
export * from './tmpfs.js'
export * from './etcd.js'
export * from './underlay.js'
