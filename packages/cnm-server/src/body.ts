/**
 * Reading a request body within bounds, before anything else looks at it. A body is at most
 * `maxBytes` long and nests at most `maxDepth` arrays and objects: deeper input would make any
 * recursive walk over it (JSON.stringify in a log line, a codec, an error message) overflow the
 * stack, and bigger input would only cost memory. Both are checked on the raw bytes, before the
 * JSON is parsed.
 */
import express, { type NextFunction, type Request, type Response } from 'express'

/** @category model */
export interface BodyLimits {
  /** The largest body accepted, in bytes. */
  readonly maxBytes: number
  /** The deepest nesting of arrays and objects accepted (`{}` is 1, `{"a":[1]}` is 2). */
  readonly maxDepth: number
}

/**
 * Room for Docker's largest bodies: `-p 1000-2000:1000-2000` sends 1,001 portmap entries and as
 * many exposed ports in one CreateEndpoint (about 110 KB); its deepest body nests 4 levels.
 *
 * @category constants
 */
export const BODY_LIMITS: BodyLimits = { maxBytes: 256 * 1024, maxDepth: 16 }

/** A body refused before it was parsed: the sentence names the limit or the JSON error. */
export class BodyError extends Error {
  override readonly name = 'BodyError'
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN = new Set([0x5b, 0x7b]) // [ {
const CLOSE = new Set([0x5d, 0x7d]) // ] }

/**
 * Whether `buf`, read as JSON text, nests deeper than `max`: one pass over the bytes, brackets
 * inside strings ignored. Not a validator: JSON.parse still rejects malformed text.
 *
 * @category utils
 */
export const nestsDeeperThan = (buf: Uint8Array, max: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!
    if (inString) {
      if (c === BACKSLASH) i++
      else if (c === QUOTE) inString = false
    } else if (c === QUOTE) inString = true
    else if (OPEN.has(c)) {
      if (++depth > max) return true
    } else if (CLOSE.has(c)) depth--
  }
  return false
}

/** The JSON value of a body within `limits`; undefined for an empty body (argument-less calls). */
export const parseBody = (buf: Uint8Array, limits: BodyLimits): unknown => {
  if (buf.length > limits.maxBytes) throw new BodyError(`the request body is larger than ${limits.maxBytes} bytes (the limit)`)
  if (nestsDeeperThan(buf, limits.maxDepth)) {
    throw new BodyError(`the request body nests arrays and objects deeper than ${limits.maxDepth} levels (the limit)`)
  }
  const text = Buffer.from(buf.buffer, buf.byteOffset, buf.length).toString('utf8')
  if (text.trim() === '') return undefined
  try {
    return JSON.parse(text) as unknown
  } catch (e) {
    // V8's messages quote at most a few characters of the input around the error
    throw new BodyError(`the request body is not JSON (${e instanceof Error ? e.message : 'unreadable'})`)
  }
}

/**
 * Express middleware: the raw body (body-parser enforces `maxBytes` while reading, also after a
 * Content-Encoding is undone), then `parseBody`. dockerd sends no Content-Type, so every body
 * is read as JSON. Failures go to the error handler (`bodyErrorText` words them).
 */
export const boundedJson = (limits: BodyLimits) => {
  const raw = express.raw({ type: () => true, limit: limits.maxBytes })
  return (req: Request, res: Response, next: NextFunction): void => {
    raw(req, res, (err?: unknown) => {
      if (err !== undefined) return next(err)
      const body: unknown = req.body
      try {
        req.body = Buffer.isBuffer(body) ? parseBody(body, limits) : undefined
      } catch (e) {
        return next(e)
      }
      next()
    })
  }
}

// body-parser's errors carry a `type`; their messages are fixed sentences without input in them.
interface ParserError {
  readonly type?: unknown
  readonly message?: unknown
  readonly limit?: unknown
  readonly length?: unknown
}

/**
 * The sentence for an error raised while reading a body, or undefined when `err` is none of
 * those (then it is a bug).
 */
export const bodyErrorText = (err: unknown, limits: BodyLimits): string | undefined => {
  if (err instanceof BodyError) return err.message
  if (typeof err !== 'object' || err === null) return undefined
  const e = err as ParserError
  if (typeof e.type !== 'string') return undefined
  if (e.type === 'entity.too.large') {
    const length = typeof e.length === 'number' ? ` of ${e.length} bytes` : ''
    return `the request body${length} is larger than ${limits.maxBytes} bytes (the limit)`
  }
  return `the request body cannot be read (${typeof e.message === 'string' ? e.message : e.type})`
}
