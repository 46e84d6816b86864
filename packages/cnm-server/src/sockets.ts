/**
 * The HTTP server under the plugin's app, with bounds on what a client may hold: how long a
 * connection may stay without a request, how long receiving one request may take, how many
 * connections may be open, and a shutdown that lets calls in flight finish and then closes every
 * connection, so that an idle client cannot keep the daemon from stopping.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type express from 'express'

/** @category model */
export interface SocketLimits {
  /** Connections open at once; one more is closed as soon as it is accepted. */
  readonly maxConnections: number
  /** A kept-alive connection with no request for this long is closed (dockerd reuses its connections). */
  readonly idleTimeoutMs: number
  /**
   * Receiving one request, headers and body, may take this long; it also bounds a new connection
   * that sends nothing. Not the time a handler takes: a call being answered is never cut.
   */
  readonly requestTimeoutMs: number
  /** At shutdown, calls in flight get this long to be answered before every connection is closed. */
  readonly shutdownGraceMs: number
}

/**
 * dockerd waits for a call as long as it takes and keeps a few connections open; 256 is far
 * more than it opens (one per call in flight), and far below the daemon's file descriptors.
 *
 * @category constants
 */
export const SOCKET_LIMITS: SocketLimits = {
  maxConnections: 256,
  idleTimeoutMs: 60_000,
  requestTimeoutMs: 30_000,
  shutdownGraceMs: 20_000
}

/** A server built by `boundedServer`. */
export interface BoundedServer {
  readonly server: Server
  /**
   * Stop accepting; close idle connections at once; let the calls in flight be answered (for at
   * most `shutdownGraceMs`), then close every connection. Resolves once the server is closed.
   */
  readonly close: () => Promise<void>
}

/** The http.Server for `app` within `limits`; the caller makes it listen. */
export const boundedServer = (app: express.Express, limits: SocketLimits = SOCKET_LIMITS): BoundedServer => {
  const server = createServer(
    {
      requestTimeout: limits.requestTimeoutMs,
      // Node measures headersTimeout from the connection's start too: a client that connects and
      // sends nothing is closed after it
      headersTimeout: limits.requestTimeoutMs,
      // how often Node looks for connections past those two timeouts
      connectionsCheckingInterval: Math.min(1_000, limits.requestTimeoutMs)
    },
    app
  )
  server.keepAliveTimeout = limits.idleTimeoutMs
  server.maxConnections = limits.maxConnections

  const inFlight = new Set<ServerResponse>()
  let closing = false
  const settled: Array<() => void> = []
  // once stopping, answers end their connection rather than keep it for another call
  const lastOnItsConnection = (res: ServerResponse): void => {
    if (!res.headersSent) res.setHeader('Connection', 'close')
  }
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    inFlight.add(res)
    if (closing) lastOnItsConnection(res)
    res.once('close', () => {
      inFlight.delete(res)
      if (inFlight.size === 0) for (const f of settled.splice(0)) f()
    })
  })
  // a socket error is the client's business (reset, gone): never the process's
  server.on('clientError', (_err: Error, socket: Socket) => socket.destroy())

  const drained = (ms: number): Promise<void> =>
    inFlight.size === 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms)
          settled.push(() => {
            clearTimeout(timer)
            resolve()
          })
        })

  const close = async (): Promise<void> => {
    closing = true
    for (const res of inFlight) lastOnItsConnection(res)
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    server.closeIdleConnections()
    await drained(limits.shutdownGraceMs)
    server.closeAllConnections()
    await closed
  }
  return { server, close }
}
