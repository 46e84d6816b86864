/**
 * The host as end-to-end tests see it: which links exist, and TCP requests from the host to a
 * published port. Everything here only reads, or talks to the address it is given.
 */
import { connect } from 'node:net'
import { mustParseJson } from './json.js'
import { mustRun, run } from './proc.js'

/** The names of every link in the host's network namespace (`ip -j link`). */
export const hostLinks = async (): Promise<ReadonlyArray<string>> => {
  const out = (await mustRun(['ip', '-j', 'link', 'show'])).stdout
  const parsed = mustParseJson('ip -j link show', out)
  if (!Array.isArray(parsed)) throw new Error(`ip -j link printed no list: ${out.slice(0, 200)}`)
  return parsed.flatMap((l: unknown) =>
    typeof l === 'object' && l !== null && typeof (l as { ifname?: unknown }).ifname === 'string'
      ? [(l as { ifname: string }).ifname]
      : []
  )
}

/** Whether a link of that name exists in the host namespace. */
/** The ports of a bridge with their aliases (none when the bridge is gone). */
export const bridgePorts = async (
  bridge: string
): Promise<ReadonlyArray<{ readonly name: string; readonly alias?: string }>> => {
  const r = await run(['ip', '-j', 'link', 'show', 'master', bridge])
  if (r.code !== 0) return []
  const links = mustParseJson('ip -j link show master', r.stdout) as Array<{ ifname: string; ifalias?: string }>
  return links.map((l) => ({
    name: l.ifname,
    ...(l.ifalias === undefined ? {} : { alias: l.ifalias })
  }))
}

export const linkExists = async (name: string): Promise<boolean> =>
  (await run(['ip', 'link', 'show', 'dev', name])).code === 0

/** A link's MTU and addresses (`ip -j addr show dev`), or undefined when it does not exist. */
export const linkInfo = async (
  name: string
): Promise<{ readonly mtu: number; readonly addresses: ReadonlyArray<string> } | undefined> => {
  const r = await run(['ip', '-j', 'addr', 'show', 'dev', name])
  if (r.code !== 0) return undefined
  const [l] = mustParseJson('ip -j addr show', r.stdout) as Array<{
    mtu: number
    addr_info?: Array<{ local: string; prefixlen: number }>
  }>
  if (l === undefined) return undefined
  return { mtu: l.mtu, addresses: (l.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`) }
}

/** The outcome of one plain HTTP/1.0 GET: the whole response text, or the socket error's code. */
export type HttpOutcome = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly error: string }

/**
 * GET `path` from `host:port` over a raw TCP connection (no proxy, no keep-alive), giving up
 * after `timeoutMs`. Never rejects: a refused or timed-out connection is an outcome to assert on.
 */
export const httpGet = (host: string, port: number, path = '/', timeoutMs = 3_000): Promise<HttpOutcome> =>
  new Promise((resolve) => {
    let text = ''
    let settled = false
    const done = (o: HttpOutcome) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      sock.destroy()
      resolve(o)
    }
    const sock = connect({ host, port })
    const timer = setTimeout(() => done({ ok: false, error: 'ETIMEDOUT' }), timeoutMs)
    sock.setEncoding('utf8')
    sock.on('connect', () => sock.write(`GET ${path} HTTP/1.0\r\nHost: ${host}\r\n\r\n`))
    sock.on('data', (c: string) => (text += c))
    sock.on('end', () => done({ ok: true, text }))
    sock.on('error', (e: NodeJS.ErrnoException) => done({ ok: false, error: e.code ?? e.message }))
  })
