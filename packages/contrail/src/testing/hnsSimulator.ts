/**
 * HNS in-process: an `HnsTransport` answering HNSCall envelopes,
 * so that the Hns client's real JSON encoding, decoding and error mapping are exercised on Linux.
 * Networks need a Type; endpoints need an existing network (`Element not found.`), an IP inside
 * one of its subnets and unique in it, and an HNS-syntax MAC (assigned from 00-15-5D-… when
 * absent; duplicates allowed, as HNS allows them). Names are not unique.
 */
import { randomUUID } from 'node:crypto'
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { contains, IpAddress, parseJson, Subnet } from '@isthmus/core'
import type { HnsTransport } from '../hns/client.js'
import * as H from '../hns/Hns.js'

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

/** @category testing */
export const hnsSimulator = (options: HnsSimulatorOptions = {}): HnsSimulator => {
  const networks = new Map<string, H.HnsNetwork>()
  const endpoints = new Map<string, H.HnsEndpoint>()
  const journal: HnsCall[] = []
  let failCreates = 0
  let macSeq = 1

  const answer = (method: string, path: string, request: string): H.HnsEnvelope => {
    const parsed = request === '' ? E.right(undefined) : parseJson('HNS request')(request)
    if (E.isLeft(parsed)) return err('The parameter is incorrect. ')
    const body = parsed.right
    if (path === '/networks/' && method === 'GET') return ok([...networks.values()])
    if (path === '/endpoints/' && method === 'GET') return ok([...endpoints.values()])
    if (path === '/networks/' && method === 'POST') {
      const d = H.HnsNetworkRequest.decode(body)
      if (E.isLeft(d) || d.right.Type === '') return err('The parameter is incorrect. ')
      if (failCreates > 0) {
        failCreates--
        return err('Unspecified error')
      }
      const n: H.HnsNetwork = { ...d.right, ID: randomUUID().toUpperCase() }
      networks.set(n.ID, n)
      return ok(n)
    }
    if (path === '/endpoints/' && method === 'POST') {
      const d = H.HnsEndpointRequest.decode(body)
      if (E.isLeft(d)) return err('The parameter is incorrect. ')
      const req = d.right
      const n = networks.get(req.VirtualNetwork)
      if (n === undefined) return err(NOT_FOUND)
      if (req.MacAddress !== undefined && !H.isHnsMac(req.MacAddress)) return err('The parameter is incorrect. ')
      if (req.IPAddress !== undefined) {
        const ip = IpAddress.decode(req.IPAddress)
        const inside = E.isRight(ip) && (n.Subnets ?? []).some((s) => {
          const sub = Subnet.decode(s.AddressPrefix)
          return E.isRight(sub) && contains(sub.right, ip.right)
        })
        if (!inside) return err('The IP address is not in the network subnets. ')
        if ([...endpoints.values()].some((e) => e.VirtualNetwork === n.ID && e.IPAddress === req.IPAddress)) {
          return err('The IP address is already in use. ')
        }
      }
      const mac = req.MacAddress ?? `00-15-5D-00-${(macSeq >> 8).toString(16).padStart(2, '0').toUpperCase()}-${(macSeq++ & 0xff).toString(16).padStart(2, '0').toUpperCase()}`
      const e: H.HnsEndpoint = { ...req, ID: randomUUID().toUpperCase(), VirtualNetworkName: n.Name, MacAddress: mac }
      endpoints.set(e.ID, e)
      return ok(e)
    }
    const one = /^\/(networks|endpoints)\/([^/]+)$/.exec(path)
    if (one !== null) {
      const [, kind, id] = one as unknown as [string, string, string]
      const map: Map<string, unknown> = kind === 'networks' ? networks : endpoints
      const found = map.get(id)
      if (found === undefined) return err(NOT_FOUND)
      if (method === 'GET') return ok(found)
      if (method === 'DELETE') {
        if (kind === 'networks' && options.rejectDeleteWithEndpoints === true && [...endpoints.values()].some((e) => e.VirtualNetwork === id)) {
          return err('The network has active endpoints. ')
        }
        map.delete(id)
        return ok()
      }
    }
    return err('The parameter is incorrect. ')
  }

  return {
    transport: {
      call: (method, path, request) => async () => {
        journal.push({ method, path, request })
        return E.right(JSON.stringify(t.unknown.encode(answer(method, path, request))))
      }
    },
    networks: () => [...networks.values()],
    endpoints: () => [...endpoints.values()],
    journal,
    failNextNetworkCreates: (n) => {
      failCreates = n
    }
  }
}
