/**
 * Call recording and failure injection for any port record: every function returning a
 * TaskEither is wrapped so that calls land in a journal and a chosen call can be made to fail.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import { io, type CoreError } from '../errors.js'

/** One recorded call: `method` is the dotted path inside the port (`networks.put`). @category testing */
export interface Call {
  readonly port: string
  readonly method: string
  readonly args: ReadonlyArray<unknown>
}

/** A failure to inject: the `nth` call (1-based) of `method`, or every call when `nth` is absent. @category testing */
export interface FailurePlan {
  readonly method: string
  readonly nth?: number
  readonly error?: CoreError
}

/** The control handle of an instrumented port. @category testing */
export interface Probe {
  readonly calls: Call[]
  /** Make a call fail; plans stay until `reset`. */
  readonly failAt: (plan: FailurePlan) => void
  /** Calls of one method, in order. */
  readonly callsOf: (method: string) => ReadonlyArray<Call>
  readonly reset: () => void
}

/** A shared journal, so that calls of several ports can be read in one order. @category testing */
export interface Journal {
  readonly calls: Call[]
}

/** @category testing */
export const journal = (): Journal => ({ calls: [] })

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Wrap every function of `port` (recursively through nested records). A wrapped function must
 * return a TaskEither, which every port function does; other values pass through untouched.
 *
 * @category testing
 */
export const instrument = <P extends object>(portName: string, port: P, shared: Journal = journal()): [P, Probe] => {
  const plans: FailurePlan[] = []
  const counts = new Map<string, number>()
  const own: Call[] = []

  const wrap = (target: Record<string, unknown>, prefix: string): Record<string, unknown> => {
    const out: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(target)) {
      const method = prefix === '' ? key : `${prefix}.${key}`
      if (typeof value === 'function') {
        out[key] = (...args: unknown[]) => {
          const result = (value as (...a: unknown[]) => unknown)(...args)
          if (typeof result !== 'function') return result
          return (() => {
            const n = (counts.get(method) ?? 0) + 1
            counts.set(method, n)
            const call: Call = { port: portName, method, args }
            own.push(call)
            shared.calls.push(call)
            const plan = plans.find((p) => p.method === method && (p.nth === undefined || p.nth === n))
            if (plan !== undefined) {
              return TE.left(plan.error ?? io(`${portName}.${method}`, `injected failure at call ${n}`))()
            }
            return (result as TE.TaskEither<CoreError, unknown>)()
          }) as TE.TaskEither<CoreError, unknown>
        }
      } else if (isRecord(value)) {
        out[key] = wrap(value, method)
      } else {
        out[key] = value
      }
    }
    return out
  }

  const probe: Probe = {
    calls: own,
    failAt: (plan) => {
      plans.push(plan)
    },
    callsOf: (method) => own.filter((c) => c.method === method),
    reset: () => {
      plans.length = 0
      own.length = 0
      counts.clear()
    }
  }
  return [wrap(port as Record<string, unknown>, '') as P, probe]
}
