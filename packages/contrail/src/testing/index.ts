/**
 * @isthmus/contrail/testing: simulators of the Contrail config API (with keystone) and the vRouter
 * agent (both real HTTP servers on 127.0.0.1), each with failure injection and a journal, for
 * isthmus's tests and for integrators'. The HNS simulator is `@isthmus/dataplane-hns/testing`.
 */
export * from './httpSim.js'
export * from './contrailSimulator.js'
export * from './agentSimulator.js'
