/**
 * Reading a request body within bounds, before anything else looks at it. A body is at most
 * `maxBytes` long and nests at most `maxDepth` arrays and objects: deeper input would make any
 * recursive walk over it (JSON.stringify in a log line, a codec, an error message) overflow the
 * stack, and bigger input would only cost memory. Both are checked on the raw bytes, before the
 * JSON is parsed.
 */
import express, { type NextFunction, type Request, type Response } from 'express'
import * as E from 'fp-ts/lib/Either.js'
import { parseJsonWithin, type JsonLimits } from '@isthmus/core'

/** How big and how deep a body may be (core JsonLimits). @category model */
export type BodyLimits = JsonLimits

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

/** The JSON value of a body within `limits`; undefined for an empty body (argument-less calls). */
export const parseBody = (buf: Uint8Array, limits: BodyLimits): unknown => {
  const text = Buffer.from(buf.buffer, buf.byteOffset, buf.length).toString('utf8')
  if (text.trim() === '') return undefined
  const parsed = parseJsonWithin(text, limits)
  if (E.isRight(parsed)) return parsed.right
  const r = parsed.left
  throw new BodyError(
    r._tag === 'TooLarge'
      ? `the request body is larger than ${r.maxBytes} bytes (the limit)`
      : r._tag === 'TooDeep'
        ? `the request body nests arrays and objects deeper than ${r.maxDepth} levels (the limit)`
        : `the request body is not JSON (${r.detail})`
  )
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
