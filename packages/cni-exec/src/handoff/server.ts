/**
 * The daemon's side of the hand-off: a unix socket (mode 0600: only root runs CNI plugins) on
 * which each connection carries one call, run by the same envelope as the plugin process, over
 * sessions kept open between calls.
 */
import { chmod, mkdir } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { dirname } from 'node:path'
import * as E from 'fp-ts/lib/Either.js'
import { decodeWith, describe, type Logger } from '@isthmus/core'
import { runSkel } from '../skel.js'
import type { RawEnv } from '../protocol/Env.js'
import type { Runtime } from '../runtime.js'
import { HandoffRequest, type HandoffReply } from './protocol.js'
import { sessionCache, type SeedSession } from './sessions.js'

/** @category model */
export interface HandoffServerOptions {
  readonly socket: string
  /** The runtime of one call, from the plugin's environment and names. */
  readonly runtime: (env: RawEnv, selfNames: ReadonlyArray<string>) => Runtime
  /** The daemon's own log: one line per call (the call's own logging goes where its netconf says). */
  readonly log: Logger
  /** Sessions the caller opened and keeps (see sessionCache). */
  readonly seeds?: ReadonlyArray<SeedSession>
  /** Largest request accepted (bytes). */
  readonly maxRequestBytes?: number
}

/** @category model */
export interface HandoffServer {
  readonly server: Server
  /** Stop accepting, finish the calls in flight, close the sessions. */
  readonly close: () => Promise<void>
}

const reply = (conn: Socket, doc: HandoffReply | { refused: string }): void => {
  conn.end(JSON.stringify(doc))
}

/**
 * Listen on `options.socket` (a stale socket file must have been removed by the caller: see
 * cnm-server's `listen`, which refuses to take one a live process serves).
 *
 * @category constructors
 */
export const handoffServer = async (options: HandoffServerOptions): Promise<HandoffServer> => {
  const sessions = sessionCache(options.seeds)
  const limit = options.maxRequestBytes ?? 4 << 20
  const inFlight = new Set<Promise<void>>()

  const serve = async (text: string, conn: Socket): Promise<void> => {
    let doc: unknown
    try {
      doc = JSON.parse(text)
    } catch (e) {
      return reply(conn, { refused: `request is not JSON: ${e instanceof Error ? e.message : String(e)}` })
    }
    const req = decodeWith(HandoffRequest, 'hand-off request')(doc)
    if (E.isLeft(req)) return reply(conn, { refused: describe(req.left) })
    const { env, stdin, selfNames } = req.right
    const started = process.hrtime.bigint()
    const out = await runSkel(sessions.around(options.runtime(env, selfNames)))(env, stdin)
    options.log.info('cni', {
      command: env['CNI_COMMAND'],
      containerId: env['CNI_CONTAINERID'],
      ifName: env['CNI_IFNAME'],
      exitCode: out.exitCode,
      durationMs: Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100
    })
    reply(conn, out)
  }

  // allowHalfOpen: the client half-closes after its request, and the reply still has to go out.
  const server = createServer({ allowHalfOpen: true }, (conn) => {
    const chunks: Buffer[] = []
    let size = 0
    conn.on('error', () => undefined)
    conn.on('data', (c: Buffer) => {
      size += c.length
      if (size > limit) {
        reply(conn, { refused: `request larger than ${limit} bytes` })
        conn.destroy()
      } else chunks.push(c)
    })
    conn.on('end', () => {
      if (size > limit) return
      const p = serve(Buffer.concat(chunks).toString('utf8'), conn).catch((e: unknown) => {
        // runSkel answers every failure itself; this is a bug, and the plugin runs the call instead.
        options.log.error('cni hand-off failed', { detail: e instanceof Error ? e.message : String(e) })
        conn.destroy()
      })
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
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await Promise.all([...inFlight])
      await sessions.closeAll()
    }
  }
}
