/**
 * JSON from outside the process (the netconf on stdin, a hand-off request) is parsed within
 * bounds (core `parseJsonWithin`): no netconf needs more than a handful of levels.
 */
import type { JsonLimits } from '@isthmus/core'

/** Largest netconf read from stdin (bytes). A netconf with a long prevResult is a few KiB. @category constants */
export const MAX_STDIN_BYTES = 1 << 20

/** Deepest nesting of arrays and objects accepted in a netconf. @category constants */
export const MAX_JSON_DEPTH = 64

/** The bounds of a netconf on stdin. @category constants */
export const STDIN_LIMITS: JsonLimits = { maxBytes: MAX_STDIN_BYTES, maxDepth: MAX_JSON_DEPTH }

/**
 * A value from the input as an error's `details` may show it: a string as it is, anything else as
 * JSON, cut to `max` characters with the full length said, so that a 100 KiB value does not come
 * back as a 100 KiB error document. Never throws (any value, any depth).
 *
 * @category utils
 */
export const excerpt = (value: unknown, max = 64): string => {
  let s: string
  try {
    s = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value))
  } catch {
    s = Object.prototype.toString.call(value)
  }
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length} characters)`
}
