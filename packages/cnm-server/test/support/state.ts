/**
 * What the end-to-end tests read back: the plugin's state directory through the file store (as
 * a second process would), the endpoints the plugin heard of from its log, and the host links
 * those endpoints would have. Other runs may create isthmus links on this host at the same time,
 * so "no link left" is asserted for this run's endpoints by name, never for every `istv*` link.
 */
import { strict as assert } from 'node:assert'
import { readdir } from 'node:fs/promises'
import * as E from 'fp-ts/lib/Either.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import {
  describe as describeError,
  hostIfName,
  peerIfName,
  type AddressSpace,
  type CoreError,
  type Endpoint,
  type EndpointId,
  type Lease,
  type Network,
  type NetworkId,
  type Pool
} from '@isthmus/core'
import { decodeName, fileStore, layout } from '@isthmus/store-fs'
import { hostLinks } from '@isthmus/testkit'

export interface PluginState {
  readonly networks: ReadonlyArray<Network>
  readonly endpoints: ReadonlyArray<Endpoint>
  readonly pools: ReadonlyArray<Pool>
  readonly leases: ReadonlyArray<Lease>
}

const must = async <A>(what: string, te: TE.TaskEither<CoreError, A>): Promise<A> => {
  const r = await te()
  if (E.isLeft(r)) assert.fail(`${what}: ${describeError(r.left)}`)
  return r.right
}

/** Every record of a state directory, read while the daemon may be running (no sweep, no lock). */
export const readState = async (stateDir: string): Promise<PluginState> => {
  const store = await must('open the state directory', fileStore({ stateDir, sweepOnOpen: false }))
  try {
    const spaces = await readdir(layout(stateDir).leaseSpaces).catch(() => [] as string[])
    const leases: Lease[] = []
    for (const s of spaces) {
      leases.push(...(await must(`leases of ${s}`, store.leases.list(decodeName(s) as AddressSpace))))
    }
    return {
      networks: await must('networks', store.networks.list()),
      endpoints: await must('endpoints', store.endpoints.list()),
      pools: await must('pools', store.pools.list()),
      leases
    }
  } finally {
    await store.close()
  }
}

/** The addresses held in a state, sorted: a compact thing to compare before and after. */
export const leasedAddresses = (s: PluginState): ReadonlyArray<string> => s.leases.map((l) => l.address).sort()

/** A state without timestamps and cursors' side effects: what "nothing changed" compares. */
export const summary = (s: PluginState) => ({
  networks: s.networks.map((n) => n.id).sort(),
  endpoints: s.endpoints.map((e) => e.id).sort(),
  pools: s.pools.map((p) => `${p.id} refs=${p.refs} gw=${p.gateway ?? ''}`).sort(),
  leases: s.leases.map((l) => `${l.address} ${JSON.stringify(l.owner)}`).sort()
})

interface RequestLine {
  readonly op?: string
  readonly message?: string
  readonly outcome?: string
  readonly error?: string
  readonly endpointId?: string
  readonly networkId?: string
}

// The one info line the plugin logs per request (router.ts).
const requestLines = (log: string): ReadonlyArray<RequestLine> =>
  log
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as RequestLine)
    .filter((o) => o.message === 'request')

/** The EndpointIDs of every CreateEndpoint the plugin logged, of one network when given. */
export const endpointIdsInLog = (log: string, networkId?: string): ReadonlyArray<EndpointId> => [
  ...new Set(
    requestLines(log)
      .filter((o) => o.op === 'NetworkDriver.CreateEndpoint' && (networkId === undefined || o.networkId === networkId))
      .flatMap((o) => (o.endpointId === undefined ? [] : [o.endpointId as EndpointId]))
  )
]

/** The NetworkIDs of every CreateNetwork the plugin logged, with its outcome. */
export const createdNetworksInLog = (log: string): ReadonlyArray<{ readonly id: NetworkId; readonly ok: boolean }> =>
  requestLines(log)
    .filter((o) => o.op === 'NetworkDriver.CreateNetwork' && o.networkId !== undefined)
    .map((o) => ({ id: o.networkId as NetworkId, ok: o.outcome === 'ok' }))

/** The host-side and container-side veth names of these endpoints that exist on the host now. */
export const linksLeftOf = async (ids: ReadonlyArray<string>): Promise<ReadonlyArray<string>> => {
  const names = new Set<string>(ids.flatMap((id) => [hostIfName(id as EndpointId), peerIfName(id as EndpointId)]))
  return (await hostLinks()).filter((l) => names.has(l))
}

/** Every request the plugin answered with an error: method and CoreError tag. */
export const failedRequestsInLog = (log: string): ReadonlyArray<{ readonly op: string; readonly error: string }> =>
  requestLines(log)
    .filter((o) => o.outcome === 'error')
    .map((o) => ({ op: o.op ?? '', error: o.error ?? '' }))
