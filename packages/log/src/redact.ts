/**
 * What every log line passes through before it is written: credentials in URLs blanked in any
 * string of it (message, field, nested field, key), whoever wrote the line, and values nested too
 * deep, or referring to themselves, cut short so that writing a line can never overflow the stack.
 */
import { redactUrlCredentials } from '@isthmus/core'

/** Deeper values are written as a marker: no log line needs more, and JSON of more can overflow. */
export const MAX_DEPTH = 32

/** `value` with every string scrubbed (see the module comment); objects are copied, never changed. */
export const scrub = (value: unknown, depth = 0, path: ReadonlySet<object> = new Set()): unknown => {
  if (typeof value === 'string') return redactUrlCredentials(value)
  if (typeof value !== 'object' || value === null) return value
  if (path.has(value)) return '[circular]'
  if (depth >= MAX_DEPTH) return '[nested too deep]'
  const inner = new Set(path).add(value)
  const next = (v: unknown): unknown => scrub(v, depth + 1, inner)
  if (Array.isArray(value)) return value.map(next)
  // an Error's message and name are not enumerable: JSON would write `{}`
  if (value instanceof Error) return { name: value.name, message: next(value.message) }
  const toJSON = (value as { toJSON?: unknown }).toJSON
  // URL, Date, Buffer: what JSON would write of them
  if (typeof toJSON === 'function') return next((toJSON as () => unknown).call(value))
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) out[redactUrlCredentials(k)] = next(v)
  return out
}

/** Scrub the string-keyed properties of a winston info object in place (its symbol keys stay). */
export const scrubInfo = <T extends object>(info: T): T => {
  const rec = info as Record<string, unknown>
  for (const k of Object.keys(rec)) {
    const clean = redactUrlCredentials(k)
    const v = scrub(rec[k], 1)
    if (clean !== k) delete rec[k]
    rec[clean] = v
  }
  return info
}
