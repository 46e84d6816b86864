/**
 * Handing a CNI call to a running isthmus daemon (`isthmus serve`), over a unix socket: the
 * plugin process then only starts node, sends the call (the variables it needs and its stdin),
 * and prints what the daemon's envelope answered. The daemon has its store, locks and dataplane
 * warm, and runs the same envelope (`runSkel`) over them, so the answer is the one the process
 * would have given.
 *
 * Wire: the client writes one JSON request and half-closes; the daemon writes one JSON reply and
 * closes. `v` lets a newer plugin notice an older daemon and the other way round (the one that
 * does not speak the other's version runs the call in the plugin process).
 *
 * The netconf chooses the socket with a top-level `daemon` key: a path, or `false` to never hand
 * off; absent means DEFAULT_DAEMON_SOCKET, used only when a daemon listens there.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { OS_CREDENTIAL_KEYS } from '@isthmus/core'
import type { RawEnv } from '../protocol/Env.js'
import { isOwnIpamType } from '../protocol/IpamType.js'
import { MAX_STDIN_BYTES } from '../protocol/Json.js'

/** Where `isthmus serve` listens for CNI calls unless told otherwise. @category constants */
export const DEFAULT_DAEMON_SOCKET = '/run/isthmus/cni.sock'

/**
 * The protocol version this build speaks. 2: the request carries only the variables of
 * HANDOFF_ENV_KEYS (1 carried the plugin's whole environment; a daemon refuses it).
 *
 * @category constants
 */
export const HANDOFF_VERSION = 2

/** The commands worth handing off: the ones that touch the store or the host. VERSION never is. @category constants */
export const HANDOFF_COMMANDS: ReadonlyArray<string> = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS']

/** The CNI variables of a call (CNI SPEC §Parameters): always sent. @category constants */
export const CNI_ENV_KEYS = ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH'] as const

/** Every variable a request may carry; the daemon drops any other. @category constants */
export const HANDOFF_ENV_KEYS: ReadonlyArray<string> = [...CNI_ENV_KEYS, ...OS_CREDENTIAL_KEYS]

/** The variables of a request: those of HANDOFF_ENV_KEYS, others stripped when decoded. @category codecs */
export const HandoffEnv = t.exact(t.partial(Object.fromEntries(HANDOFF_ENV_KEYS.map((k) => [k, t.string])) as Record<string, t.StringC>), 'HandoffEnv')

/** @category codecs */
export const HandoffRequest = t.type(
  {
    v: t.literal(HANDOFF_VERSION),
    /** The call's variables (handoffEnv): CNI_*, and OS_* only for a netconf whose controller needs them. */
    env: HandoffEnv,
    stdin: t.string,
    /** The `type` names the executable answers to (its own file name among them). */
    selfNames: t.array(t.string)
  },
  'HandoffRequest'
)
/** @category model */
export type HandoffRequest = t.TypeOf<typeof HandoffRequest>

/** What the process prints and how it exits: the envelope's output. @category codecs */
export const HandoffReply = t.type({ stdout: t.string, stderr: t.string, exitCode: t.number }, 'HandoffReply')
/** @category model */
export type HandoffReply = t.TypeOf<typeof HandoffReply>

/** The daemon's answer to a request it cannot take (a version it does not speak, bad JSON, too busy). @category codecs */
export const HandoffRefusal = t.type({ refused: t.string }, 'HandoffRefusal')

const DaemonKey = t.partial({ daemon: t.union([t.string, t.literal(false)]) })

const parseObject = (stdin: string): Record<string, unknown> | undefined => {
  try {
    const doc = JSON.parse(stdin) as unknown
    return typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

const socketOfDoc = (doc: Record<string, unknown>): string | undefined => {
  const d = DaemonKey.decode(doc)
  if (E.isLeft(d)) return undefined
  const v = d.right.daemon
  return v === undefined ? DEFAULT_DAEMON_SOCKET : v === false || v === '' ? undefined : v
}

/**
 * The socket a netconf hands its calls to, or undefined when it opts out. A netconf that is not
 * JSON, or a `daemon` that is neither a path nor false, is left to the envelope to report: the
 * call then runs in the process, which gives the protocol's own error.
 *
 * @category utils
 */
export const daemonSocketOf = (stdin: string): string | undefined => {
  const doc = parseObject(stdin)
  return doc === undefined ? undefined : socketOfDoc(doc)
}

/**
 * The variables a daemon needs to run the call: the CNI ones, and the `OS_*` keystone
 * credentials only when the netconf's `contrail` section has a `keystone` (the only reader of
 * them). Nothing else of the plugin's environment leaves the process.
 *
 * @category utils
 */
export const handoffEnv = (env: RawEnv, netconf: Readonly<Record<string, unknown>>): Record<string, string> => {
  const contrail = netconf['contrail']
  const keystone = typeof contrail === 'object' && contrail !== null && (contrail as Record<string, unknown>)['keystone'] !== undefined
  const out: Record<string, string> = {}
  for (const k of keystone ? HANDOFF_ENV_KEYS : CNI_ENV_KEYS) {
    const v = env[k]
    if (v !== undefined) out[k] = v
  }
  return out
}

/** @category model */
export type HandoffPlan = { readonly _tag: 'HandOff'; readonly socket: string; readonly request: HandoffRequest } | { readonly _tag: 'Local' }

/**
 * Whether a call goes to a daemon, and what it sends. It stays in the process when the command
 * touches nothing (VERSION) or the netconf opts out, and when its answer does not need the
 * daemon and could differ through it: a netconf the envelope refuses anyway (not a JSON object,
 * over the size limit: the process gives the same error), and a delegated IPAM plugin, which
 * gets the runtime's whole environment as CNI delegation does (the daemon never has it).
 *
 * @category utils
 */
export const planHandoff = (env: RawEnv, stdin: string, selfNames: ReadonlyArray<string>): HandoffPlan => {
  const local: HandoffPlan = { _tag: 'Local' }
  if (!HANDOFF_COMMANDS.includes(env['CNI_COMMAND'] ?? '')) return local
  if (stdin.length > MAX_STDIN_BYTES) return local
  const doc = parseObject(stdin)
  if (doc === undefined) return local
  const socket = socketOfDoc(doc)
  if (socket === undefined) return local
  const ipam = doc['ipam']
  if (typeof ipam === 'object' && ipam !== null && !isOwnIpamType((ipam as Record<string, unknown>)['type'], selfNames)) return local
  return { _tag: 'HandOff', socket, request: { v: HANDOFF_VERSION, env: handoffEnv(env, doc), stdin, selfNames: [...selfNames] } }
}
