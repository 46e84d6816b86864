/**
 * The daemon's CNI hand-off: the hand-off listener with a handler that runs each call through the
 * CNI envelope (`runSkel`) over sessions kept open between calls, so the answer is the one the
 * plugin process would have given.
 */
import { CURRENT_VERSION, type RawEnv } from '@isthmus/cni-exec/protocol'
import { bugOutput, runSkel, type Runtime } from '@isthmus/cni-exec'
import type { Logger } from '@isthmus/core'
import { handoffServer, type HandoffServer, type HandoffServerOptions } from '@isthmus/handoff'
import { sessionCache, type SeedSession } from './sessions.js'
import { timeCall } from './steps.js'

/** @category model */
export interface CniHandoffServerOptions extends Omit<HandoffServerOptions, 'handle'> {
  /** The runtime of one call, from its variables (the request's, over `baseEnv`) and names. */
  readonly runtime: (env: RawEnv, selfNames: ReadonlyArray<string>) => Runtime
  /** The daemon's own log: one line per call, and the bugs of a call. */
  readonly log: Logger
  /** Sessions the caller opened and keeps (see sessionCache). */
  readonly seeds?: ReadonlyArray<SeedSession>
  /**
   * Variables of the daemon's own under each call's: PATH, where the daemon finds `ip` and
   * iptables (a request never carries it). Default: this process's PATH.
   */
  readonly baseEnv?: RawEnv
  /**
   * Told of every call once it is answered (the daemon's metrics count them); the composition
   * root passes it, so this package needs no metrics library.
   */
  readonly onCall?: (call: CniCallRecord) => void
}

/** One handed-off call, as `onCall` is told of it. @category model */
export interface CniCallRecord {
  /** CNI_COMMAND as sent (ADD, DEL, CHECK, …); `other` for a missing or unknown one. */
  readonly command: string
  /** `ok` (exit code 0), `error` (a CNI error answered), `bug` (the call threw; code 999). */
  readonly outcome: 'ok' | 'error' | 'bug'
  readonly durationMs: number
}

const COMMANDS = new Set(['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'])

/**
 * Listen on `options.socket` (a stale socket file must have been removed by the caller: see
 * cnm-server's `clearStaleSocket`, which refuses to take one a live process serves). `close`
 * stops the listener, then closes the sessions it opened.
 *
 * @category constructors
 */
export const cniHandoffServer = async (options: CniHandoffServerOptions): Promise<HandoffServer> => {
  const { runtime, seeds, baseEnv: base, onCall, ...listen } = options
  const sessions = sessionCache(seeds)
  const baseEnv: RawEnv = base ?? { PATH: process.env['PATH'] }
  const server = await handoffServer({
    ...listen,
    // A bug is answered as the process would answer it (code 999), never by dropping the call.
    // (A runtime that throws while being built is a bug too, hence the async function.)
    // Each call's log line says where its time went (steps.ts).
    handle: async ({ env, stdin, selfNames }) => {
      const started = process.hrtime.bigint()
      const told = (outcome: CniCallRecord['outcome']): void => {
        const command = env['CNI_COMMAND'] ?? ''
        const durationMs = Number(process.hrtime.bigint() - started) / 1e6
        try {
          onCall?.({ command: COMMANDS.has(command) ? command : 'other', outcome, durationMs })
        } catch (e) {
          options.log.error('bug: the CNI call observer failed', { detail: String(e) })
        }
      }
      try {
        const { value, steps } = await timeCall(() =>
          runSkel(sessions.around(runtime({ ...baseEnv, ...env }, selfNames)))(env, stdin)
        )
        told(value.exitCode === 0 ? 'ok' : 'error')
        return { ...value, steps }
      } catch (e) {
        told('bug')
        return bugOutput(e, CURRENT_VERSION, options.log)
      }
    }
  })
  return {
    server: server.server,
    close: async () => {
      await server.close()
      await sessions.closeAll()
    }
  }
}
