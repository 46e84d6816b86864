/**
 * The daemon's side of the hand-off: a unix socket (mode 0600: only root runs CNI plugins) on
 * which each connection carries one call, answered by the caller's handler (the daemon runs the
 * same CNI envelope as the plugin process, over sessions kept open between calls).
 *
 * A connection is bounded: its request must arrive whole within `requestTimeoutMs` and within
 * `maxRequestBytes`, and at most `maxConnections` are open at once (one more is refused, and its
 * plugin runs the call itself). Every call is answered with a reply (the handler answers its own
 * bugs), never by dropping the connection, which the plugin would read as "try again" (code 11).
 */
import { chmod, mkdir } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { dirname } from 'node:path'
import * as E from 'fp-ts/lib/Either.js'
import { causeText, decodeWith, describe, jsonRefusalText, parseJsonWithin, type Logger } from '@isthmus/core'
import { HandoffRequest, type HandoffRefusal, type HandoffReply } from './protocol.js'

/**
 * Runs one call. Must answer every call, its own bugs included; a rejection is answered as a
 * refusal (the plugin then runs the call itself).
 *
 * @category model
 */
export type HandoffHandler = (request: HandoffRequest) => Promise<HandledCall>

/**
 * The handler's answer: the reply, and optionally where the call's time went (milliseconds per
 * step), which goes into the daemon's log line of the call, not to the plugin.
 *
 * @category model
 */
export interface HandledCall extends HandoffReply {
  readonly steps?: Readonly<Record<string, number>>
}

/** @category model */
export interface HandoffServerOptions {
  readonly socket: string
  readonly handle: HandoffHandler
  /** The daemon's own log: one line per call (the call's own logging goes where its netconf says). */
  readonly log: Logger
  /** Largest request accepted (bytes); default 8 MiB (a 1 MiB netconf, JSON-escaped, and its variables). */
  readonly maxRequestBytes?: number
  /** A request must have arrived whole this long after the connection opened; default 5 s. */
  readonly requestTimeoutMs?: number
  /** Connections open at once; one more is refused (its plugin runs the call itself). Default 128. */
  readonly maxConnections?: number
}

/** @category model */
export interface HandoffServer {
  readonly server: Server
  /**
   * Stop accepting, end the connections that carry no call, let the calls in flight answer. An
   * idle client does not hold it up.
   */
  readonly close: () => Promise<void>
}

/** @category constants */
export const HANDOFF_LIMITS = { maxRequestBytes: 8 << 20, requestTimeoutMs: 5_000, maxConnections: 128 } as const

// A reply still unread this long after the call ended is given up (the plugin went away).
const REPLY_GRACE_MS = 5_000
// On close, how long the last replies may take to be read.
const CLOSE_GRACE_MS = 1_000

/**
 * Listen on `options.socket` (a stale socket file must have been removed by the caller: see
 * cnm-server's `listen`, which refuses to take one a live process serves).
 *
 * @category constructors
 */
export const handoffServer = async (options: HandoffServerOptions): Promise<HandoffServer> => {
  const limit = options.maxRequestBytes ?? HANDOFF_LIMITS.maxRequestBytes
  const requestTimeoutMs = options.requestTimeoutMs ?? HANDOFF_LIMITS.requestTimeoutMs
  const maxConnections = options.maxConnections ?? HANDOFF_LIMITS.maxConnections
  const inFlight = new Set<Promise<void>>()
  // Open connections, and whether each carries a call being run.
  const open = new Map<Socket, { busy: boolean }>()
  let closing = false

  // The reply, then the end of the connection; a plugin that does not read it is dropped.
  const reply = (conn: Socket, doc: HandoffReply | HandoffRefusal): void => {
    conn.end(JSON.stringify(doc))
    const timer = setTimeout(() => conn.destroy(), REPLY_GRACE_MS)
    conn.on('close', () => clearTimeout(timer))
  }

  const run = async (text: string): Promise<HandoffReply | HandoffRefusal> => {
    const parsed = parseJsonWithin(text, { maxBytes: limit, maxDepth: 8 })
    if (E.isLeft(parsed)) return { refused: `request is not JSON: ${jsonRefusalText(parsed.left)}` }
    const req = decodeWith(HandoffRequest, 'hand-off request')(parsed.right)
    if (E.isLeft(req)) return { refused: describe(req.left) }
    const { env } = req.right
    const started = process.hrtime.bigint()
    const { steps, ...out } = await options.handle(req.right)
    options.log.info('cni', {
      command: env['CNI_COMMAND'],
      containerId: env['CNI_CONTAINERID'],
      ifName: env['CNI_IFNAME'],
      exitCode: out.exitCode,
      durationMs: Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100,
      ...(steps === undefined ? {} : { steps })
    })
    return { stdout: out.stdout, stderr: out.stderr, exitCode: out.exitCode }
  }

  // allowHalfOpen: the client half-closes after its request, and the reply still has to go out.
  const server = createServer({ allowHalfOpen: true }, (conn) => {
    conn.on('error', () => undefined)
    const state = { busy: false }
    open.set(conn, state)
    conn.on('close', () => open.delete(conn))
    if (closing || open.size > maxConnections) {
      // Refused before reading: the plugin runs the call itself. Its request is read and dropped,
      // so that its write does not fail and read as a lost call.
      state.busy = true
      conn.resume()
      reply(conn, { refused: closing ? 'the daemon is stopping' : `too many connections (${maxConnections})` })
      return
    }
    const timer = setTimeout(() => conn.destroy(), requestTimeoutMs)
    conn.on('close', () => clearTimeout(timer))
    const chunks: Buffer[] = []
    let size = 0
    conn.on('data', (c: Buffer) => {
      size += c.length
      // Past the limit the rest is read and dropped; the answer is a refusal.
      if (size <= limit) chunks.push(c)
    })
    conn.on('end', () => {
      clearTimeout(timer)
      if (conn.destroyed) return
      state.busy = true
      if (size > limit) return reply(conn, { refused: `request larger than ${limit} bytes` })
      const p = run(Buffer.concat(chunks).toString('utf8'))
        .catch((e: unknown): HandoffRefusal => {
          options.log.error('bug: the hand-off handler failed', { detail: causeText(e) })
          return { refused: 'the daemon failed to run the call' }
        })
        .then((doc) => reply(conn, doc))
      inFlight.add(p)
      void p.finally(() => inFlight.delete(p))
    })
  })
  await mkdir(dirname(options.socket), { recursive: true, mode: 0o755 })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.socket, () => resolve())
  })
  await chmod(options.socket, 0o600)
  return {
    server,
    close: async () => {
      closing = true
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()))
      // Connections that carry no call yet (idle, or half a request) end now.
      for (const [conn, state] of open) if (!state.busy) conn.destroy()
      await Promise.all([...inFlight])
      // Every reply is written; a plugin gets a moment to read its own, then is not waited for.
      const grace = setTimeout(() => {
        for (const conn of open.keys()) conn.destroy()
      }, CLOSE_GRACE_MS)
      await stopped
      clearTimeout(grace)
    }
  }
}
