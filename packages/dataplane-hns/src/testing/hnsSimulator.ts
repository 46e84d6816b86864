/**
 * HNS simulated: the state and the answers of HNSCall, served in-process (`hnsSimulator`, an
 * `HnsTransport`) or over HTTP (`hnsSimulatorServer`), so that the Hns client's real JSON
 * encoding, decoding and error mapping are exercised on Linux.
 * Networks need a Type; endpoints need an existing network (`Element not found.`), an IP inside
 * one of its subnets and unique in it, and an HNS-syntax MAC (assigned from 00-15-5D-… when
 * absent; duplicates allowed, as HNS allows them). Names are not unique.
 */
import { randomUUID } from 'node:crypto'
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import * as t from 'io-ts'
import { contains, IpAddress, parseJson, Subnet } from '@isthmus/core'
import type { HnsTransport } from '../client.js'
import * as H from '../Hns.js'

/** @category testing */
export interface HnsSimulatorOptions {
  /** Refuse to delete a network that has endpoints (HNS itself allows it: default false). */
  readonly rejectDeleteWithEndpoints?: boolean
}

/** @category testing */
export interface HnsCall {
  readonly method: string
  readonly path: string
  readonly request: string
}

/** @category testing */
export interface HnsSimulator {
  readonly transport: HnsTransport
  readonly networks: () => ReadonlyArray<H.HnsNetwork>
  readonly endpoints: () => ReadonlyArray<H.HnsEndpoint>
  readonly journal: ReadonlyArray<HnsCall>
  /** The next `n` network creates fail with `Unspecified error` (HNS's transient failure). */
  readonly failNextNetworkCreates: (n: number) => void
}

const ok = (output?: unknown): H.HnsEnvelope => ({ Success: true, ...(output === undefined ? {} : { Output: output }) })
const err = (text: string): H.HnsEnvelope => ({ Success: false, Error: text })
const NOT_FOUND = 'Element not found. '

const INCORRECT = 'The parameter is incorrect. '

/** What HNS holds. @category testing */
export interface HnsState {
  readonly networks: Map<string, H.HnsNetwork>
  readonly endpoints: Map<string, H.HnsEndpoint>
  failCreates: number
  macSeq: number
}

const createNetwork = (hns: HnsState, body: unknown): H.HnsEnvelope => {
  const d = H.HnsNetworkRequest.decode(body)
  if (E.isLeft(d) || d.right.Type === '') return err(INCORRECT)
  if (hns.failCreates > 0) {
    hns.failCreates--
    return err('Unspecified error')
  }
  const n: H.HnsNetwork = { ...d.right, ID: randomUUID().toUpperCase() }
  hns.networks.set(n.ID, n)
  return ok(n)
}

/** Why HNS refuses an endpoint's IP on `n`, if it does. */
const ipRefusal = (hns: HnsState, n: H.HnsNetwork, ip: string | undefined): string | undefined => {
  if (ip === undefined) return undefined
  const a = IpAddress.decode(ip)
  const inside =
    E.isRight(a) &&
    (n.Subnets ?? []).some((s) => {
      const sub = Subnet.decode(s.AddressPrefix)
      return E.isRight(sub) && contains(sub.right, a.right)
    })
  if (!inside) return 'The IP address is not in the network subnets. '
  const taken = [...hns.endpoints.values()].some((e) => e.VirtualNetwork === n.ID && e.IPAddress === ip)
  return taken ? 'The IP address is already in use. ' : undefined
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0').toUpperCase()

const createEndpoint = (hns: HnsState, body: unknown): H.HnsEnvelope => {
  const d = H.HnsEndpointRequest.decode(body)
  if (E.isLeft(d)) return err(INCORRECT)
  const req = d.right
  const n = hns.networks.get(req.VirtualNetwork)
  if (n === undefined) return err(NOT_FOUND)
  if (req.MacAddress !== undefined && !H.isHnsMac(req.MacAddress)) return err(INCORRECT)
  const refused = ipRefusal(hns, n, req.IPAddress)
  if (refused !== undefined) return err(refused)
  const mac = req.MacAddress ?? `00-15-5D-00-${hex2(hns.macSeq >> 8)}-${hex2(hns.macSeq++ & 0xff)}`
  const e: H.HnsEndpoint = { ...req, ID: randomUUID().toUpperCase(), VirtualNetworkName: n.Name, MacAddress: mac }
  hns.endpoints.set(e.ID, e)
  return ok(e)
}

/** `GET` and `DELETE /networks/<id>` and `/endpoints/<id>`. */
const byId = (hns: HnsState, method: string, kind: string, id: string, options: HnsSimulatorOptions): H.HnsEnvelope => {
  const map: Map<string, unknown> = kind === 'networks' ? hns.networks : hns.endpoints
  const found = map.get(id)
  if (found === undefined) return err(NOT_FOUND)
  if (method === 'GET') return ok(found)
  if (method !== 'DELETE') return err(INCORRECT)
  const busy = [...hns.endpoints.values()].some((e) => e.VirtualNetwork === id)
  if (kind === 'networks' && options.rejectDeleteWithEndpoints === true && busy) {
    return err('The network has active endpoints. ')
  }
  map.delete(id)
  return ok()
}

/** The envelope HNS answers to one HNSCall; changes `hns`. @category testing */
export const hnsAnswer = (
  hns: HnsState,
  options: HnsSimulatorOptions,
  method: string,
  path: string,
  request: string
): H.HnsEnvelope => {
  const parsed = request === '' ? E.right(undefined) : parseJson('HNS request')(request)
  if (E.isLeft(parsed)) return err(INCORRECT)
  if (path === '/networks/' && method === 'GET') return ok([...hns.networks.values()])
  if (path === '/endpoints/' && method === 'GET') return ok([...hns.endpoints.values()])
  if (path === '/networks/' && method === 'POST') return createNetwork(hns, parsed.right)
  if (path === '/endpoints/' && method === 'POST') return createEndpoint(hns, parsed.right)
  const one = /^\/(networks|endpoints)\/([^/]+)$/.exec(path)
  return one === null ? err(INCORRECT) : byId(hns, method, one[1]!, one[2]!, options)
}

/** @category testing */
export const emptyHnsState = (): HnsState => ({ networks: new Map(), endpoints: new Map(), failCreates: 0, macSeq: 1 })

/** @category testing */
export const hnsSimulator = (options: HnsSimulatorOptions = {}): HnsSimulator => {
  const hns = emptyHnsState()
  const { networks, endpoints } = hns
  const journal: HnsCall[] = []
  return {
    transport: {
      call: (method, path, request) =>
        TE.fromIO(() => {
          journal.push({ method, path, request })
          return JSON.stringify(t.unknown.encode(hnsAnswer(hns, options, method, path, request)))
        })
    },
    networks: () => [...networks.values()],
    endpoints: () => [...endpoints.values()],
    journal,
    failNextNetworkCreates: (n) => {
      hns.failCreates = n
    }
  }
}
