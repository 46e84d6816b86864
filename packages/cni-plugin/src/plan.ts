/**
 * Which CNI calls the executable hands to a running daemon, and what it sends: this reads the
 * netconf, so it is CNI logic, kept here beside the entry point (the hand-off adapter only
 * carries the request).
 *
 * The netconf chooses the socket with a top-level `daemon` key: a path, or `false` to never hand
 * off; absent means DEFAULT_DAEMON_SOCKET, used only when a daemon listens there.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { isOwnIpamType, MAX_STDIN_BYTES, type RawEnv } from '@isthmus/cni-exec/protocol'
import { parseJson } from '@isthmus/core'
import {
  CNI_ENV_KEYS,
  DEFAULT_DAEMON_SOCKET,
  HANDOFF_COMMANDS,
  HANDOFF_ENV_KEYS,
  HANDOFF_VERSION,
  type HandoffRequest
} from '@isthmus/handoff'

const DaemonKey = t.partial({ daemon: t.union([t.string, t.literal(false)]) })

const parseObject = (stdin: string): Record<string, unknown> | undefined => {
  const doc = parseJson('netconf')(stdin)
  return E.isRight(doc) && typeof doc.right === 'object' && doc.right !== null && !Array.isArray(doc.right)
    ? (doc.right as Record<string, unknown>)
    : undefined
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
  const keystone =
    typeof contrail === 'object' && contrail !== null && (contrail as Record<string, unknown>)['keystone'] !== undefined
  const out: Record<string, string> = {}
  for (const k of keystone ? HANDOFF_ENV_KEYS : CNI_ENV_KEYS) {
    const v = env[k]
    if (v !== undefined) out[k] = v
  }
  return out
}

/**
 * The cluster a netconf names (top-level `cluster`), when it is a string: such a call is served
 * only by a daemon in cluster mode (the executable alone has no etcd, no agent, no overlay).
 *
 * @category utils
 */
export const clusterOf = (doc: Readonly<Record<string, unknown>>): string | undefined =>
  typeof doc['cluster'] === 'string' ? doc['cluster'] : undefined

/**
 * A call goes to the daemon (`HandOff`, with `cluster` when the netconf names one: no daemon
 * there is then an error, never a local run), or runs in this process.
 *
 * @category model
 */
export type HandoffPlan =
  | {
      readonly _tag: 'HandOff'
      readonly socket: string
      readonly request: HandoffRequest
      readonly cluster?: string
    }
  | { readonly _tag: 'Local' }

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
  const delegated =
    typeof ipam === 'object' && ipam !== null && !isOwnIpamType((ipam as Record<string, unknown>)['type'], selfNames)
  if (delegated) return local
  const request: HandoffRequest = { v: HANDOFF_VERSION, env: handoffEnv(env, doc), stdin, selfNames: [...selfNames] }
  const cluster = clusterOf(doc)
  return { _tag: 'HandOff', socket, request, ...(cluster === undefined ? {} : { cluster }) }
}
