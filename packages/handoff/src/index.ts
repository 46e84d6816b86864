/**
 * @isthmus/handoff: the transport of a CNI call from the executable to a running daemon (one JSON
 * request and one JSON reply over a unix socket): the codecs, the client and the listener.
 */
export {
  CLIENT_NAME_VAR,
  CNI_ENV_KEYS,
  FALLBACK_FILE,
  FALLBACK_VAR,
  DEFAULT_DAEMON_SOCKET,
  HANDOFF_COMMANDS,
  HANDOFF_ENV_KEYS,
  HANDOFF_VERSION,
  HandoffEnv,
  HandoffRefusal,
  HandoffReply,
  HandoffRequest
} from './protocol.js'
export { handOff, trustedSocket, HANDOFF_TIMEOUT_MS, type HandoffOutcome, type SocketCheck } from './client.js'
export {
  handoffServer,
  HANDOFF_LIMITS,
  type HandledCall,
  type HandoffHandler,
  type HandoffServer,
  type HandoffServerOptions
} from './server.js'
