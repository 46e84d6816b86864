/**
 * @isthmus/cni-exec: the CNI plugin over the isthmus core. The envelope (`runSkel`), the
 * translator, the commands and the ports they need; the wire codecs are in `./protocol`.
 */
export { runSkel, decodeNetConf, bugOutput, ABOUT, type SkelOutput, type Stdin } from './skel.js'
export * from './runtime.js'
export * from './translate.js'
export { linuxRuntime, ipProbe, execDelegate, findExecutable, systemCommand, type LinuxRuntimeOptions } from './linux.js'
export { recordOnlyDataplane } from './recordOnly.js'
export { contrailController, noController, type ContrailDeps } from './controller.js'
export { add } from './commands/add.js'
export { del } from './commands/del.js'
export { check } from './commands/check.js'
export { gc, validOf } from './commands/gc.js'
export { status } from './commands/status.js'
export type { CommandContext, CommandOutcome } from './commands/context.js'
export * as Cni from './protocol/index.js'
export { handoffServer, HANDOFF_LIMITS, type HandoffServer, type HandoffServerOptions } from './handoff/server.js'
export { handOff, trustedSocket, HANDOFF_TIMEOUT_MS, type HandoffOutcome, type SocketCheck } from './handoff/client.js'
export {
  DEFAULT_DAEMON_SOCKET,
  daemonSocketOf,
  handoffEnv,
  planHandoff,
  HandoffReply,
  HandoffRequest,
  HANDOFF_ENV_KEYS,
  HANDOFF_VERSION,
  type HandoffPlan
} from './handoff/protocol.js'
export { sessionCache, type SeedSession, type SessionCache } from './handoff/sessions.js'
