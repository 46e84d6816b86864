/**
 * @isthmus/contrail/testing: simulators of the Contrail config API (with keystone), the vRouter
 * agent (both real HTTP servers on 127.0.0.1) and HNS (an in-process transport), each with
 * failure injection and a journal, for isthmus's tests and for integrators'.
 */
export * from './httpSim.js'
export * from './contrailSimulator.js'
export * from './agentSimulator.js'
export * from './hnsSimulator.js'
