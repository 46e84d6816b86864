/**
 * Handing a CNI call to a running isthmus daemon (`isthmus serve`), over a unix socket: the
 * plugin process then only starts node, sends the call (the variables it needs and its stdin),
 * and prints what the daemon answered. The daemon has its store, locks and dataplane warm, and
 * runs the same CNI envelope over them, so the answer is the one the process would have given.
 *
 * Wire: the client writes one JSON request and half-closes; the daemon writes one JSON reply and
 * closes. `v` lets a newer plugin notice an older daemon and the other way round (the one that
 * does not speak the other's version runs the call in the plugin process).
 *
 * Which calls go to a daemon, and over which socket, is the CNI executable's choice (it reads
 * the netconf); this module is the wire between the two.
 */
import * as t from 'io-ts'
import { OS_CREDENTIAL_KEYS } from '@isthmus/core'

/** Where `isthmus serve` listens for CNI calls unless told otherwise. @category constants */
export const DEFAULT_DAEMON_SOCKET = '/run/isthmus/cni.sock'

/**
 * The protocol version this build speaks. 2: the request carries only the variables of
 * HANDOFF_ENV_KEYS (1 carried the plugin's whole environment; a daemon refuses it).
 *
 * @category constants
 */
export const HANDOFF_VERSION = 2

/**
 * The Node fallback's file name beside the native client (`isthmus cni install --fallback`), and
 * the variables the client sets when it runs it: the name the runtime ran the client under (the
 * netconf's `type`, which the fallback answers to as well), and `1` for "the hand-off was tried".
 *
 * @category constants
 */
export const FALLBACK_FILE = 'isthmus-node'
/** @category constants */
export const CLIENT_NAME_VAR = 'ISTHMUS_CNI_NAME'
/** @category constants */
export const FALLBACK_VAR = 'ISTHMUS_CNI_FALLBACK'

/** The commands worth handing off: the ones that touch the store or the host. VERSION never is. @category constants */
export const HANDOFF_COMMANDS: ReadonlyArray<string> = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS']

/**
 * The CNI variables of a call (https://github.com/containernetworking/cni/blob/main/SPEC.md,
 * "Parameters"): always sent.
 *
 * @category constants
 */
export const CNI_ENV_KEYS = [
  'CNI_COMMAND',
  'CNI_CONTAINERID',
  'CNI_NETNS',
  'CNI_IFNAME',
  'CNI_ARGS',
  'CNI_PATH'
] as const

/** Every variable a request may carry; the daemon drops any other. @category constants */
export const HANDOFF_ENV_KEYS: ReadonlyArray<string> = [...CNI_ENV_KEYS, ...OS_CREDENTIAL_KEYS]

/** The variables of a request: those of HANDOFF_ENV_KEYS, others stripped when decoded. @category codecs */
export const HandoffEnv = t.exact(
  t.partial(Object.fromEntries(HANDOFF_ENV_KEYS.map((k) => [k, t.string])) as Record<string, t.StringC>),
  'HandoffEnv'
)

/** @category codecs */
export const HandoffRequest = t.type(
  {
    v: t.literal(HANDOFF_VERSION),
    /** The call's variables: CNI_*, and OS_* only for a netconf whose controller needs them. */
    env: HandoffEnv,
    stdin: t.string,
    /** The `type` names the executable answers to (its own file name among them). */
    selfNames: t.array(t.string)
  },
  'HandoffRequest'
)
/** @category model */
export type HandoffRequest = t.TypeOf<typeof HandoffRequest>

/** What the process prints and how it exits: the CNI envelope's output. @category codecs */
export const HandoffReply = t.type({ stdout: t.string, stderr: t.string, exitCode: t.number }, 'HandoffReply')
/** @category model */
export type HandoffReply = t.TypeOf<typeof HandoffReply>

/**
 * The daemon's answer to a request it cannot take (a version it does not speak, bad JSON, too
 * busy).
 *
 * @category codecs
 */
export const HandoffRefusal = t.type({ refused: t.string }, 'HandoffRefusal')
/** @category model */
export type HandoffRefusal = t.TypeOf<typeof HandoffRefusal>
