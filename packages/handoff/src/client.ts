/**
 * The plugin's side of the hand-off: one request over the daemon's socket.
 *
 * - No daemon there (the socket is missing or nobody accepts), a socket this process must not
 *   trust (see trustedSocket), or the daemon refused the request before running it: `NotHandled`,
 *   and the caller runs the call itself.
 * - The request went out but no proper answer came back: `Lost`. The daemon may have run the call,
 *   so running it again here could answer differently (a second ADD of one attachment is refused);
 *   the caller reports a try-again error instead, and the runtime's retry or DEL sorts it out.
 */
import { lstat, realpath } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { dirname } from 'node:path'
import * as E from 'fp-ts/lib/Either.js'
import { causeText } from '@isthmus/core'
import { HandoffRefusal, HandoffReply, type HandoffRequest } from './protocol.js'

/** @category model */
export type HandoffOutcome =
  | { readonly _tag: 'Answered'; readonly reply: HandoffReply }
  /** `untrusted`: the socket failed trustedSocket's checks (worth telling the operator). */
  | { readonly _tag: 'NotHandled'; readonly why: string; readonly untrusted?: true }
  | { readonly _tag: 'Lost'; readonly why: string }

/** How long to wait for the daemon's answer; an ADD may wait up to 15 s for a lock. @category constants */
export const HANDOFF_TIMEOUT_MS = 60_000

/** @category model */
export type SocketCheck =
  { readonly ok: true; readonly path: string } | { readonly ok: false; readonly why: string; readonly absent?: true }

/**
 * Whether the plugin may send a call to `socket`: the path is resolved (symbolic links included)
 * and the result must be a socket owned by root (or by this process's user), writable by nobody
 * else, in directories that only such owners can change: each directory on the way owned by root
 * or this user and not writable by group or others, unless sticky (as /tmp: there nobody but the
 * owner may rename or remove the entries below). Otherwise another user could stand in for the
 * daemon (and read the call's credentials) or swap the socket between this check and the connect.
 * Connect to the returned `path`, the one that was checked.
 *
 * @category utils
 */
export const trustedSocket = async (socket: string, uid: number = process.geteuid?.() ?? 0): Promise<SocketCheck> => {
  let path: string
  try {
    path = await realpath(socket)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    return {
      ok: false,
      why: `${socket}: ${code ?? String(e)}`,
      ...(code === 'ENOENT' || code === 'ENOTDIR' ? { absent: true as const } : {})
    }
  }
  const trustedOwner = (u: number) => u === 0 || u === uid
  try {
    const s = await lstat(path)
    if (!s.isSocket()) return { ok: false, why: `${path} is not a socket` }
    if (!trustedOwner(s.uid)) return { ok: false, why: `${path} is owned by uid ${s.uid}, not root` }
    if ((s.mode & 0o022) !== 0) {
      return { ok: false, why: `${path} is writable by group or others (mode ${(s.mode & 0o777).toString(8)})` }
    }
    for (let dir = dirname(path); ; dir = dirname(dir)) {
      const d = await lstat(dir)
      if (!trustedOwner(d.uid)) return { ok: false, why: `directory ${dir} is owned by uid ${d.uid}, not root` }
      if ((d.mode & 0o022) !== 0 && (d.mode & 0o1000) === 0) {
        return {
          ok: false,
          why: `directory ${dir} is writable by group or others (mode ${(d.mode & 0o777).toString(8)}) and not sticky`
        }
      }
      if (dir === '/') break
    }
  } catch (e) {
    return { ok: false, why: `${path}: ${causeText(e)}` }
  }
  return { ok: true, path }
}

/**
 * Send `request` to the daemon at `socket`, once trustedSocket allows it.
 *
 * @category utils
 */
export const handOff = async (
  socket: string,
  request: HandoffRequest,
  timeoutMs = HANDOFF_TIMEOUT_MS
): Promise<HandoffOutcome> => {
  const checked = await trustedSocket(socket)
  if (!checked.ok) {
    return { _tag: 'NotHandled', why: checked.why, ...(checked.absent === true ? {} : { untrusted: true as const }) }
  }
  return send(checked.path, request, timeoutMs)
}

const send = (socket: string, request: HandoffRequest, timeoutMs: number): Promise<HandoffOutcome> =>
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
      finish(
        E.isRight(refusal)
          ? { _tag: 'NotHandled', why: refusal.right.refused }
          : { _tag: 'Lost', why: 'the daemon answered something else' }
      )
    })
  })
