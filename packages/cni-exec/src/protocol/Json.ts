/**
 * JSON from outside the process (the netconf on stdin, a hand-off request), bounded before it is
 * parsed: a size and a nesting depth. `JSON.parse` itself copes with any depth, but everything
 * after it that walks a value recursively (`JSON.stringify`, `String()` of an array, a codec's
 * error report) overflows the stack on a few thousand levels; no netconf needs more than a handful.
 */

/** Largest netconf read from stdin (bytes). A netconf with a long prevResult is a few KiB. @category constants */
export const MAX_STDIN_BYTES = 1 << 20

/** Deepest nesting of arrays and objects accepted in a netconf. @category constants */
export const MAX_JSON_DEPTH = 64

/**
 * Whether `text` nests arrays and objects deeper than `max` (brackets inside strings do not
 * count). One pass, no recursion, no allocation.
 *
 * @category utils
 */
export const nestedDeeperThan = (text: string, max: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return false
}

/** @category model */
export type Parsed = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly why: string }

/**
 * `JSON.parse` of `text` within `maxBytes` and `maxDepth`; `why` is one phrase for an error
 * message (`more than 1048576 bytes`, `nested deeper than 64 levels`, or the parser's own words).
 *
 * @category utils
 */
export const parseBounded = (text: string, maxBytes = MAX_STDIN_BYTES, maxDepth = MAX_JSON_DEPTH): Parsed => {
  // A UTF-16 length above the limit is over it in bytes too; below, count the bytes.
  if (text.length > maxBytes || Buffer.byteLength(text, 'utf8') > maxBytes) return { ok: false, why: `more than ${maxBytes} bytes` }
  if (nestedDeeperThan(text, maxDepth)) return { ok: false, why: `nested deeper than ${maxDepth} levels` }
  try {
    return { ok: true, value: JSON.parse(text) as unknown }
  } catch (e) {
    return { ok: false, why: e instanceof Error ? e.message : String(e) }
  }
}

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
