/**
 * @isthmus/cni-plugin: the CNI executable (src/bin; `scripts/build.mjs` makes the Node SEA at
 * dist/sea/isthmus). Exported: which calls it hands to a running daemon, and what it sends.
 */
export { daemonSocketOf, handoffEnv, planHandoff, type HandoffPlan } from './plan.js'
