/**
 * The HNS simulator served over real HTTP, for `httpHnsTransport`: each HNSCall is an HTTP
 * request with the HNS method and path and the request JSON as body, answered with the
 * `{Success, Error, Output}` envelope. It listens on 127.0.0.1 (an ephemeral port) or on a unix
 * socket, keeps a journal of every call, and fails calls on demand: with an HNS error, or by
 * dropping the connection before or after HNS acted (the answer lost, the change made).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { HnsMethod } from '../client.js'
import type * as H from '../Hns.js'
import { emptyHnsState, hnsAnswer, type HnsSimulatorOptions } from './hnsSimulator.js'

/** How an injected failure shows. @category testing */
export type HnsFault =
  /** HNS answers `Success: false` with this text (`Element not found. `, `Unspecified error`, …). */
  | { readonly error: string }
  /** The connection is dropped: `before` HNS acts, or `after` (the change is made, the answer lost). */
  | { readonly drop: 'before' | 'after' }

/** Which calls fail. @category testing */
export interface HnsFaultRule {
  /** The n-th call from now (1 is the next one). */
  readonly nth?: number
  readonly method?: HnsMethod
  /** The exact path, or a pattern (`/^\/endpoints\//`). */
  readonly path?: string | RegExp
  /** How many matching calls fail (default 1). */
  readonly times?: number
  readonly fault: HnsFault
}

/** One call as the server saw it. @category testing */
export interface HnsJournalEntry {
  readonly method: string
  readonly path: string
  readonly request: string
  readonly outcome: 'ok' | 'error' | 'dropped'
  /** The ID of what a successful create made (also when its answer was dropped). */
  readonly created?: string
}

/** @category testing */
export interface HnsSimulatorServer {
  /** `http://127.0.0.1:<port>` (or `http://localhost` on a socket). */
  readonly baseUrl: string
  readonly socketPath?: string
  readonly networks: () => ReadonlyArray<H.HnsNetwork>
  readonly endpoints: () => ReadonlyArray<H.HnsEndpoint>
  readonly journal: ReadonlyArray<HnsJournalEntry>
  readonly fail: (rule: HnsFaultRule) => void
  readonly clearFaults: () => void
  readonly close: () => Promise<void>
}

/** @category testing */
export interface HnsSimulatorServerOptions extends HnsSimulatorOptions {
  /** Listen on this unix socket instead of 127.0.0.1. */
  readonly socketPath?: string
}

interface ArmedRule {
  readonly rule: HnsFaultRule
  /** The journal index the rule's `nth` points at. */
  readonly at: number | undefined
  left: number
}

const pathMatches = (want: string | RegExp | undefined, path: string): boolean =>
  want === undefined || (typeof want === 'string' ? want === path : want.test(path))

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })

const createdId = (method: string, path: string, answer: H.HnsEnvelope): string | undefined => {
  if (method !== 'POST' || !answer.Success || !/^\/(networks|endpoints)\/$/.test(path)) return undefined
  const out = answer.Output as { ID?: unknown } | undefined
  return typeof out?.ID === 'string' ? out.ID : undefined
}

/** @category testing */
export const hnsSimulatorServer = async (options: HnsSimulatorServerOptions = {}): Promise<HnsSimulatorServer> => {
  const hns = emptyHnsState()
  const journal: HnsJournalEntry[] = []
  let rules: ArmedRule[] = []

  // The first armed rule this call matches, used up by it.
  const faultFor = (method: string, path: string): HnsFault | undefined => {
    const index = journal.length
    const hit = rules.find(
      (r) =>
        r.left > 0 &&
        (r.at === undefined || r.at === index) &&
        (r.rule.method === undefined || r.rule.method === method) &&
        pathMatches(r.rule.path, path)
    )
    if (hit === undefined) return undefined
    hit.left--
    return hit.rule.fault
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const request = await readBody(req)
    const method = req.method ?? 'GET'
    const path = req.url ?? '/'
    const fault = faultFor(method, path)
    if (fault !== undefined && 'drop' in fault && fault.drop === 'before') {
      journal.push({ method, path, request, outcome: 'dropped' })
      req.socket.destroy()
      return
    }
    const answer: H.HnsEnvelope =
      fault !== undefined && 'error' in fault
        ? { Success: false, Error: fault.error }
        : hnsAnswer(hns, options, method, path, request)
    const created = createdId(method, path, answer)
    const dropped = fault !== undefined && 'drop' in fault
    journal.push({
      method,
      path,
      request,
      outcome: dropped ? 'dropped' : answer.Success ? 'ok' : 'error',
      ...(created === undefined ? {} : { created })
    })
    if (dropped) {
      req.socket.destroy()
      return
    }
    const body = JSON.stringify(answer)
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => req.socket.destroy())
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    if (options.socketPath !== undefined) server.listen(options.socketPath, resolve)
    else server.listen(0, '127.0.0.1', resolve)
  })
  const address = server.address()
  const baseUrl =
    options.socketPath === undefined ? `http://127.0.0.1:${(address as AddressInfo).port}` : 'http://localhost'

  return {
    baseUrl,
    ...(options.socketPath === undefined ? {} : { socketPath: options.socketPath }),
    networks: () => [...hns.networks.values()],
    endpoints: () => [...hns.endpoints.values()],
    journal,
    fail: (rule) => {
      rules.push({
        rule,
        at: rule.nth === undefined ? undefined : journal.length + rule.nth - 1,
        left: rule.times ?? 1
      })
    },
    clearFaults: () => {
      rules = []
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((e) => (e === undefined ? resolve() : reject(e)))
      })
  }
}
