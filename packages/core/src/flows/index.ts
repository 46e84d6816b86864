/**
 * The flows both frontends drive: each one a `Flow<A>` over the ports of an `Env`. CNI ADD is
 * ensureNetwork, createEndpoint, join (PluginMoves); CNI DEL is leave, deleteEndpoint; CNI GC is
 * gc. Docker's CreateNetwork, CreateEndpoint, Join (RuntimeMoves), Leave, DeleteEndpoint and
 * DeleteNetwork map one to one.
 */
export * from './ensureNetwork.js'
export * from './deleteNetwork.js'
export * from './createEndpoint.js'
export * from './join.js'
export * from './leave.js'
export * from './deleteEndpoint.js'
export * from './gc.js'
export { getEndpoint, getNetwork, listEndpoints, loadEndpoint, loadNetwork, locked, lockedEndpoint } from './records.js'
export * from './inspect.js'
export * from './readiness.js'
// The rollback mechanism, for every operation of several steps outside the core too.
export {
  begin,
  bindEach,
  bindStep,
  coreStepErrors,
  doStep,
  type Saga,
  type SagaEnv,
  type Step,
  type StepErrors,
  type Undo
} from './saga.js'
