/**
 * A vRouter agent port API as a real HTTP server on 127.0.0.1 (docs/contrail.md, "The vRouter
 * agent"): `POST /port` with the agent's own validation (including the non-nil `vm-project-id` for
 * type 0), `GET` and `DELETE /port/<uuid>` (lower-case uuid or 404 "Unknown Request"),
 * `/syncports` with a stale cleaner run on demand, port files that survive `restart()`, failure
 * injection and a journal.
 */
import { startHttpSim, type HttpSim, type SimRequest, type SimResponse } from './httpSim.js'
import { AgentPort } from '../agent/Port.js'
import * as E from 'fp-ts/lib/Either.js'

/** @category testing */
export interface AgentSimulatorOptions {
  /** Reject a nil or empty `vm-project-id` for type 0 (every agent version read does). Default true. */
  readonly strictProjectId?: boolean
  /** Answer 500 after a successful DELETE, as one agent version does. */
  readonly deleteAnswers500?: boolean
}

/** @category testing */
export interface AgentSimulator extends HttpSim {
  readonly ports: () => ReadonlyMap<string, AgentPort>
  readonly has: (id: string) => boolean
  /** The persisted port files (what a restart reloads). */
  readonly files: () => ReadonlyMap<string, AgentPort>
  /** Drop the in-memory ports and reload the files, as an agent restart does. */
  readonly restart: () => void
  /** Remove the ports /syncports marked stale and that nobody posted since. */
  readonly runStaleCleaner: () => ReadonlyArray<string>
  readonly waitForPort: (id: string, timeoutMs: number) => Promise<boolean>
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const NIL = '00000000-0000-0000-0000-000000000000'
const isUuid = (s: unknown): s is string => typeof s === 'string' && UUID.test(s.toLowerCase()) && s !== NIL
const fail = (message: string): SimResponse => ({ status: 500, json: { error: `{ ${message} }` } })
const unknown: SimResponse = { status: 404, json: { error: 'Unknown Request' } }

const ipv4 = /^(\d{1,3})(\.\d{1,3}){3}$/

/** The agent's checks of one port; undefined when it is acceptable. */
const invalid = (p: Record<string, unknown>, strict: boolean): string | undefined => {
  for (const f of [
    'id',
    'instance-id',
    'vn-id',
    'vm-project-id',
    'display-name',
    'system-name',
    'ip-address',
    'ip6-address',
    'mac-address',
    'type',
    'rx-vlan-id',
    'tx-vlan-id'
  ]) {
    if (!(f in p)) return `Missing data for <${f}>`
  }
  if (!isUuid(p['id'])) return 'Invalid data for <id>'
  if (!isUuid(p['instance-id'])) return 'Invalid data for <instance-id>'
  if (typeof p['type'] !== 'number' || !Number.isInteger(p['type'])) return 'Invalid data for <type>'
  if (p['type'] === 0 && !isUuid(p['vn-id'])) return 'Invalid data for <vn-id>'
  if (p['type'] === 0 && strict && !isUuid(p['vm-project-id'])) return 'Invalid data for <vm-project-id>'
  if (typeof p['display-name'] !== 'string' || typeof p['system-name'] !== 'string') {
    return 'Invalid data for <system-name>'
  }
  const v4 = p['ip-address']
  const v6 = p['ip6-address']
  const v4ok = typeof v4 === 'string' && ipv4.test(v4) && v4 !== '0.0.0.0'
  const v6ok = typeof v6 === 'string' && v6.includes(':')
  if (!v4ok && !v6ok) return 'Invalid data for <ip-address>'
  const mac = p['mac-address']
  if (typeof mac !== 'string' || mac.split(':').length !== 6) return 'Invalid data for <mac-address>'
  const rx = p['rx-vlan-id']
  const tx = p['tx-vlan-id']
  if (typeof rx !== 'number' || typeof tx !== 'number') return 'Invalid data for <rx-vlan-id>'
  if (rx !== -1 && tx === -1) return 'Invalid vlan configuration: rx-vlan-id set without tx-vlan-id'
  return undefined
}

/** The agent's ports: live ones, their files, and what /syncports marked. */
interface Ports {
  readonly live: Map<string, AgentPort>
  readonly files: Map<string, AgentPort>
  touched: Set<string>
  stale: Set<string>
}

/** `POST /port`: one port or a list of them, all or nothing. */
const postPorts = (p: Ports, body: unknown, strict: boolean): SimResponse => {
  const list = Array.isArray(body) ? (body as unknown[]) : [body]
  const decoded: AgentPort[] = []
  for (const item of list) {
    if (typeof item !== 'object' || item === null) return fail('Invalid JSON')
    const why = invalid(item as Record<string, unknown>, strict)
    if (why !== undefined) return fail(why)
    const d = AgentPort.decode(item)
    if (E.isLeft(d)) return fail('Invalid JSON')
    decoded.push(d.right)
  }
  for (const port of decoded) {
    const id = port.id.toLowerCase()
    p.live.set(id, port)
    if (!p.files.has(id)) p.files.set(id, port)
    p.touched.add(id)
  }
  return { status: 200, json: {} }
}

/** `GET` and `DELETE /port/<id>`. */
const onePort = (p: Ports, method: string, id: string, options: AgentSimulatorOptions): SimResponse => {
  if (method === 'GET') {
    const port = p.live.get(id)
    return port === undefined ? { status: 404, json: { error: '{ Not Found }' } } : { status: 200, json: port }
  }
  if (method !== 'DELETE' || !UUID.test(id)) return unknown
  const existed = p.files.delete(id)
  p.live.delete(id)
  p.touched.delete(id)
  return options.deleteAnswers500 === true && existed
    ? fail('Error deleting interface file')
    : { status: 200, json: {} }
}

/** @category testing */
export const startAgentSimulator = async (options: AgentSimulatorOptions = {}, port = 0): Promise<AgentSimulator> => {
  const strict = options.strictProjectId ?? true
  const p: Ports = { live: new Map(), files: new Map(), touched: new Set(), stale: new Set() }
  const ports = p.live
  const files = p.files

  const handle = (req: SimRequest): SimResponse => {
    if (req.method === 'POST' && req.path === '/port') return postPorts(p, req.body, strict)
    if (req.method === 'POST' && req.path === '/syncports') {
      p.stale = new Set([...ports.keys()].filter((id) => !p.touched.has(id)))
      p.touched = new Set()
      return { status: 200, json: {} }
    }
    const m = /^\/port\/([^/]+)$/.exec(req.path)
    return m === null ? unknown : onePort(p, req.method, m[1]!, options)
  }

  const sim = await startHttpSim(handle, port)
  return {
    ...sim,
    ports: () => ports,
    has: (id) => ports.has(id.toLowerCase()),
    files: () => files,
    restart: () => {
      ports.clear()
      for (const [id, port] of files) ports.set(id, port)
      p.touched = new Set()
      p.stale = new Set()
    },
    runStaleCleaner: () => {
      const removed = [...p.stale].filter((id) => !p.touched.has(id) && ports.has(id))
      for (const id of removed) {
        ports.delete(id)
        files.delete(id)
      }
      p.stale = new Set()
      return removed
    },
    waitForPort: async (id, timeoutMs) => {
      const end = Date.now() + timeoutMs
      while (Date.now() < end) {
        if (ports.has(id.toLowerCase())) return true
        await new Promise((r) => setTimeout(r, 20))
      }
      return ports.has(id.toLowerCase())
    }
  }
}
