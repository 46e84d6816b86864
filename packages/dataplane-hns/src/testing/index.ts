/**
 * @isthmus/dataplane-hns/testing: HNS simulated, for isthmus's tests and for integrators': an
 * in-process transport (`hnsSimulator`) and the same HNS served over real HTTP
 * (`hnsSimulatorServer`, for `httpHnsTransport`), with a journal of every call and failure
 * injection.
 */
export * from './hnsSimulator.js'
export * from './hnsSimulatorServer.js'
