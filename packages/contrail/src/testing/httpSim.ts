/**
 * What both HTTP simulators share: a node:http server on 127.0.0.1 (ephemeral port), JSON
 * bodies, a journal of every request, and failure injection at any call: by method, path
 * pattern and nth matching occurrence, answering a given status, delaying, hanging (never
 * answering, for timeouts), resetting the connection, or committing the request and then
 * failing (so a client's retry meets what its first attempt did).
 */
import { createServer, type IncomingMessage, type Server as NodeServer, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import * as E from 'fp-ts/lib/Either.js'
import { causeText, parseJson } from '@isthmus/core'

/** One request as the simulator saw it. @category testing */
export interface JournalEntry {
  readonly method: string
  readonly path: string
  readonly query: string
  readonly body: unknown
  /** The status answered; 0 for a hang or a reset. */
  status: number
  /** Request headers, lower-case names (tests check auth headers; never logged by isthmus). */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
}

/** A failure to inject. @category testing */
export interface Fault {
  readonly method?: string
  /** Matched against the path (no query); a string must match exactly. */
  readonly path?: RegExp | string
  /** The nth matching request (1-based) fails; every matching request when absent. */
  readonly nth?: number
  /** Answer this status (with `body`) instead of handling the request. */
  readonly status?: number
  readonly body?: string
  /** Wait this long before doing anything else. */
  readonly delayMs?: number
  /** Never answer (until the simulator closes). */
  readonly hang?: boolean
  /** Destroy the connection without an answer. */
  readonly reset?: boolean
  /** Handle the request (so its effect persists), then answer `status` (500 by default). */
  readonly commitThenFail?: boolean
}

/** What a handler sees. @category testing */
export interface SimRequest {
  readonly method: string
  readonly path: string
  readonly query: URLSearchParams
  readonly headers: IncomingMessage['headers']
  /** Parsed JSON, or undefined for an empty or unparsable body (`raw` keeps the text). */
  readonly body: unknown
  readonly raw: string
}

/** What a handler answers. @category testing */
export interface SimResponse {
  readonly status: number
  /** JSON body; `text` wins when both are given. */
  readonly json?: unknown
  readonly text?: string
  readonly headers?: Readonly<Record<string, string>>
}

/** @category testing */
export interface HttpSim {
  readonly url: string
  readonly port: number
  readonly journal: JournalEntry[]
  /** Add a fault; faults stay until `clearFaults`. */
  readonly inject: (f: Fault) => void
  readonly clearFaults: () => void
  /** Resolves with the next request that hits a `hang` fault. */
  readonly nextHang: () => Promise<JournalEntry>
  /** Journal entries of one method and path pattern. */
  readonly calls: (method: string, path: RegExp | string) => ReadonlyArray<JournalEntry>
  readonly close: () => Promise<void>
}

const matches = (p: RegExp | string | undefined, path: string): boolean =>
  p === undefined ? true : typeof p === 'string' ? p === path : p.test(path)

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    let s = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => (s += c))
    req.on('end', () => resolve(s))
    req.on('error', reject)
  })

const parse = (s: string): unknown =>
  s === '' ? undefined : E.getOrElseW(() => undefined)(parseJson('request body')(s))

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const write = (res: ServerResponse, r: SimResponse): void => {
  const text = r.text ?? (r.json === undefined ? '' : JSON.stringify(r.json))
  res.writeHead(r.status, { 'Content-Type': r.text !== undefined ? 'text/plain' : 'application/json', ...r.headers })
  res.end(text)
}

interface Armed {
  readonly fault: Fault
  seen: number
}

/** The fault for this request: every matching fault counts it, the first one due applies. */
const faultFor = (faults: ReadonlyArray<Armed>, entry: JournalEntry): Fault | undefined => {
  let fault: Fault | undefined
  for (const f of faults) {
    if ((f.fault.method === undefined || f.fault.method === entry.method) && matches(f.fault.path, entry.path)) {
      f.seen++
      if (fault === undefined && (f.fault.nth === undefined || f.fault.nth === f.seen)) fault = f.fault
    }
  }
  return fault
}

/** The handler's answer, or a simulator error; a commit-then-fail fault replaces it after the fact. */
const answer = (handle: (req: SimRequest) => SimResponse, req: SimRequest, fault: Fault | undefined): SimResponse => {
  let r: SimResponse
  try {
    r = handle(req)
  } catch (e) {
    r = { status: 500, text: `simulator error: ${causeText(e)}` }
  }
  return fault?.commitThenFail === true
    ? { status: fault.status ?? 500, text: fault.body ?? 'injected failure after commit' }
    : r
}

interface Server {
  readonly handle: (req: SimRequest) => SimResponse
  readonly journal: JournalEntry[]
  readonly faults: ReadonlyArray<Armed>
  readonly hangWaiters: Array<(e: JournalEntry) => void>
}

// The process edge of the simulator: one request, journaled, faulted or handled.
const serve = async (s: Server, req: IncomingMessage, res: ServerResponse): Promise<void> => {
  const raw = await readBody(req)
  const u = new URL(req.url ?? '/', 'http://127.0.0.1')
  const entry: JournalEntry = {
    method: req.method ?? 'GET',
    path: u.pathname,
    query: u.search,
    body: parse(raw),
    status: 0,
    headers: { ...req.headers }
  }
  s.journal.push(entry)
  const fault = faultFor(s.faults, entry)
  if (fault?.delayMs !== undefined) await sleep(fault.delayMs)
  if (fault?.hang === true) {
    for (const w of s.hangWaiters.splice(0)) w(entry)
    return
  }
  if (fault?.reset === true) {
    req.socket.destroy()
    return
  }
  const r: SimResponse =
    fault?.status !== undefined && fault.commitThenFail !== true
      ? { status: fault.status, text: fault.body ?? `injected failure ${fault.status}` }
      : answer(
          s.handle,
          {
            method: entry.method,
            path: entry.path,
            query: u.searchParams,
            headers: req.headers,
            body: entry.body,
            raw
          },
          fault
        )
  entry.status = r.status
  write(res, r)
}

/**
 * Serve `handle` on 127.0.0.1 at an ephemeral port (or `port`, to come back on the same one).
 *
 * @category testing
 */
export const startHttpSim = async (handle: (req: SimRequest) => SimResponse, port = 0): Promise<HttpSim> => {
  const journal: JournalEntry[] = []
  const faults: Armed[] = []
  const hangWaiters: Array<(e: JournalEntry) => void> = []
  const sockets = new Set<Socket>()
  const server: NodeServer = createServer((req, res) => void serve({ handle, journal, faults, hangWaiters }, req, res))
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  const actual = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    journal,
    inject: (fault) => {
      faults.push({ fault, seen: 0 })
    },
    clearFaults: () => {
      faults.length = 0
    },
    nextHang: () => new Promise((resolve) => hangWaiters.push(resolve)),
    calls: (method, path) => journal.filter((e) => e.method === method && matches(path, e.path)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      })
  }
}
