/**
 * Handing a CNI call to a running isthmus daemon (`isthmus serve`), over a unix socket: the
 * plugin process then only starts node, sends its environment and stdin, and prints what the
 * daemon's envelope answered. The daemon has its store, locks and dataplane warm, and runs the
 * same envelope (`runSkel`) over them, so the answer is the one the process would have given.
 *
 * Wire: the client writes one JSON request and half-closes; the daemon writes one JSON reply and
 * closes. `v` lets a newer plugin notice an older daemon (it then runs the call itself).
 *
 * The netconf chooses the socket with a top-level `daemon` key: a path, or `false` to never hand
 * off; absent means DEFAULT_DAEMON_SOCKET, used only when a daemon listens there.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'

/** Where `isthmus serve` listens for CNI calls unless told otherwise. @category constants */
export const DEFAULT_DAEMON_SOCKET = '/run/isthmus/cni.sock'

/** The protocol version this build speaks. @category constants */
export const HANDOFF_VERSION = 1

/** The commands worth handing off: the ones that touch the store or the host. VERSION never is. @category constants */
export const HANDOFF_COMMANDS: ReadonlyArray<string> = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS']

/** @category codecs */
export const HandoffRequest = t.type(
  {
    v: t.literal(HANDOFF_VERSION),
    /** The plugin's whole environment: CNI_*, PATH for the commands, OS_* for a controller. */
    env: t.record(t.string, t.string),
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

/** The daemon's answer to a request it cannot take (a version it does not speak, bad JSON). @category codecs */
export const HandoffRefusal = t.type({ refused: t.string }, 'HandoffRefusal')

const DaemonKey = t.partial({ daemon: t.union([t.string, t.literal(false)]) })

/**
 * The socket a netconf hands its calls to, or undefined when it opts out. A netconf that is not
 * JSON, or a `daemon` that is neither a path nor false, is left to the envelope to report: the
 * call then runs in the process, which gives the protocol's own error.
 *
 * @category utils
 */
export const daemonSocketOf = (stdin: string): string | undefined => {
  let doc: unknown
  try {
    doc = JSON.parse(stdin)
  } catch {
    return undefined
  }
  const d = DaemonKey.decode(doc)
  if (E.isLeft(d)) return undefined
  const v = d.right.daemon
  return v === undefined ? DEFAULT_DAEMON_SOCKET : v === false || v === '' ? undefined : v
}
