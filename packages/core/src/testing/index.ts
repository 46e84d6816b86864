/**
 * @isthmus/core/testing: in-memory fakes of every port, for isthmus's own tests and for
 * integrators testing their code against the core. Each fake records its calls and can be told
 * to fail at a given call (see `instrument`). The store contract (`storeContract`, property tests
 * on fast-check, an optional peer) is `@isthmus/core/testing/store-contract`.
 */
export * from './instrument.js'
export * from './memoryStore.js'
export * from './fakes.js'
export * from './assertions.js'
export * from './samples.js'
export * from './memoryCluster.js'
export * from './clusterContract.js'
