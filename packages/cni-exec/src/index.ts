/**
 * @isthmus/cni-exec: the CNI frontend over the isthmus core. The envelope (`runSkel`), the
 * translator, the commands and the ports they need (Runtime); the wire codecs are in
 * `./protocol`. The real ports are wired in @isthmus/wiring; the executable is @isthmus/cni-plugin.
 */
export { runSkel, decodeNetConf, bugOutput, ABOUT, type SkelOutput, type Stdin } from './skel.js'
export * from './runtime.js'
export * from './translate.js'
export { recordOnlyDataplane } from './recordOnly.js'
export { noController } from './noController.js'
export { add } from './commands/add.js'
export { del } from './commands/del.js'
export { check } from './commands/check.js'
export { gc, validOf } from './commands/gc.js'
export { status } from './commands/status.js'
export type { CommandContext, CommandOutcome } from './commands/context.js'
export * as Cni from './protocol/index.js'
