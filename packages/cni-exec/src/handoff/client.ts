/**
 * The plugin's side of the hand-off: one request over the daemon's socket.
 *
 * - No daemon there (the socket is missing or nobody accepts), or the daemon refused the request
 *   before running it: `NotHandled`, and the caller runs the call itself.
 * - The request went out but no proper answer came back: `Lost`. The daemon may have run the call,
 *   so running it again here could answer differently (a second ADD of one attachment is refused);
 *   the caller reports a try-again error instead, and the runtime's retry or DEL sorts it out.
 */
import { createConnection } from 'node:net'
import * as E from 'fp-ts/lib/Either.js'
import { HandoffRefusal, HandoffReply, type HandoffRequest } from './protocol.js'

/** @category model */
export type HandoffOutcome =
  | { readonly _tag: 'Answered'; readonly reply: HandoffReply }
  | { readonly _tag: 'NotHandled'; readonly why: string }
  | { readonly _tag: 'Lost'; readonly why: string }

/** How long to wait for the daemon's answer; an ADD may wait up to 15 s for a lock. @category constants */
export const HANDOFF_TIMEOUT_MS = 60_000

/** @category utils */
export const handOff = (socket: string, request: HandoffRequest, timeoutMs = HANDOFF_TIMEOUT_MS): Promise<HandoffOutcome> =>
  new Promise((resolve) => {
    const chunks: Buffer[] = []
    let connected = false
    let done = false
    const finish = (r: HandoffOutcome) => {
      if (done) return
      done = true
      conn.destroy()
      resolve(r)
    }
    const conn = createConnection(socket)
    conn.setTimeout(timeoutMs, () => finish({ _tag: 'Lost', why: `no answer within ${timeoutMs} ms` }))
    conn.on('connect', () => {
      connected = true
      conn.end(JSON.stringify(request))
    })
    conn.on('error', (e) =>
      finish(connected ? { _tag: 'Lost', why: e.message } : { _tag: 'NotHandled', why: e.message })
    )
    conn.on('data', (c: Buffer) => chunks.push(c))
    conn.on('end', () => {
      let doc: unknown
      try {
        doc = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      } catch {
        return finish({ _tag: 'Lost', why: 'the daemon closed the connection without an answer' })
      }
      const reply = HandoffReply.decode(doc)
      if (E.isRight(reply)) return finish({ _tag: 'Answered', reply: reply.right })
      const refusal = HandoffRefusal.decode(doc)
      finish(E.isRight(refusal) ? { _tag: 'NotHandled', why: refusal.right.refused } : { _tag: 'Lost', why: 'the daemon answered something else' })
    })
  })
