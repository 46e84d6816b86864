/**
 * The daemon's metrics on prom-client: request counts and durations by method and outcome (fed
 * by the router's per-request observer), and the store's networks, endpoints, leases and pool
 * usage, read from the core's inspection query at each scrape. One registry per app, not
 * prom-client's global one, so several apps (tests, embedders) never clash on metric names.
 */
import * as E from 'fp-ts/lib/Either.js'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { inspectSummary, type CoreError, type Env, type InspectSummary } from '@isthmus/core'
import type { RequestCount } from './protocol/Inspect.js'
import type { RequestRecord } from './router.js'

/** The prefix of every isthmus metric name (Node's process metrics keep their standard names). */
export const METRIC_PREFIX = 'isthmus_'

/** A CNI call the daemon ran for the CNI executable (the hand-off), as wiring's `onCall` tells it. */
export interface CniCallObservation {
  readonly command: string
  readonly outcome: string
  readonly durationMs: number
}

/** What the plugin app counts. @category model */
export interface PluginMetrics {
  readonly registry: Registry
  /** The router's observer (`buildApp`'s `onRequest`). */
  readonly observe: (r: RequestRecord) => void
  /** The CNI hand-off's observer (`cniHandoffServer`'s `onCall`), in the same registry. */
  readonly observeCni: (c: CniCallObservation) => void
  /** The request counters as the `/IpamDriver.Metrics` answer lists them. */
  readonly requests: () => Promise<ReadonlyArray<RequestCount>>
}

// Seconds; plugin calls take from a millisecond (IPAM) to a few seconds (a bridge with iptables).
const BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** A registry with the request metrics. @category constructors */
export const pluginMetrics = (): PluginMetrics => {
  const registry = new Registry()
  const labelNames = ['op', 'outcome'] as const
  const total = new Counter({
    name: `${METRIC_PREFIX}cnm_requests_total`,
    help: 'Calls answered on the plugin socket, by method and outcome (ok, error, not-implemented)',
    labelNames,
    registers: [registry]
  })
  const duration = new Histogram({
    name: `${METRIC_PREFIX}cnm_request_duration_seconds`,
    help: 'Time to answer a call on the plugin socket, by method and outcome',
    labelNames,
    buckets: BUCKETS,
    registers: [registry]
  })
  const cniLabels = ['command', 'outcome'] as const
  const cniTotal = new Counter({
    name: `${METRIC_PREFIX}cni_requests_total`,
    help: 'CNI calls the CNI executable handed to this daemon, by command (ADD, DEL, CHECK, …) and outcome (ok, error, bug)',
    labelNames: cniLabels,
    registers: [registry]
  })
  const cniDuration = new Histogram({
    name: `${METRIC_PREFIX}cni_request_duration_seconds`,
    help: 'Time to run a handed-off CNI call, by command and outcome',
    labelNames: cniLabels,
    buckets: BUCKETS,
    registers: [registry]
  })
  return {
    registry,
    observeCni: (c) => {
      const labels = { command: c.command, outcome: c.outcome }
      cniTotal.inc(labels)
      cniDuration.observe(labels, c.durationMs / 1000)
    },
    observe: (r) => {
      // a path no route serves is whatever the caller sent: one label value for all of them
      const labels = { op: r.op ?? 'other', outcome: r.outcome }
      total.inc(labels)
      duration.observe(labels, r.durationMs / 1000)
    },
    requests: async () => {
      const [counts, times] = await Promise.all([total.get(), duration.get()])
      const key = (l: Partial<Record<string, string | number>>) => `${String(l['op'])} ${String(l['outcome'])}`
      const sums = new Map(
        times.values.filter((v) => v.metricName?.endsWith('_sum')).map((v) => [key(v.labels), v.value])
      )
      return counts.values
        .map((v) => ({
          op: String(v.labels['op']),
          outcome: String(v.labels['outcome']),
          count: v.value,
          durationSeconds: sums.get(key(v.labels)) ?? 0
        }))
        .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
    }
  }
}

// Every kind of record the quarantine may hold: each has a series, 0 when none is quarantined.
const QUARANTINE_KINDS = ['network', 'endpoint', 'sandbox', 'pool', 'lease']

/**
 * Gauges of the store's contents, read at each scrape. The gauges of one scrape share one read
 * (prom-client collects them concurrently); a store that cannot be read sets `store_up` to 0 and
 * empties the others rather than repeat stale numbers. `store_quarantined_records` counts the
 * records the store moved aside as unreadable (`isthmus quarantine` lists them), by kind.
 *
 * @category constructors
 */
export const registerStoreMetrics = (registry: Registry, env: Pick<Env, 'store'>): void => {
  let inflight: Promise<E.Either<CoreError, InspectSummary>> | undefined
  const read = () => {
    inflight ??= inspectSummary(env)().finally(() => {
      inflight = undefined
    })
    return inflight
  }
  const gauge = <L extends string>(
    name: string,
    help: string,
    labelNames: ReadonlyArray<L>,
    set: (g: Gauge<L>, s: InspectSummary) => void
  ) =>
    new Gauge<L>({
      name: `${METRIC_PREFIX}${name}`,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const s = await read()
        this.reset()
        if (E.isRight(s)) set(this, s.right)
      }
    })
  new Gauge({
    name: `${METRIC_PREFIX}store_up`,
    help: '1 when the state store could be read at this scrape, 0 otherwise',
    registers: [registry],
    async collect() {
      this.set(E.isRight(await read()) ? 1 : 0)
    }
  })
  gauge('networks', 'Networks in the store', [], (g, s) => g.set(s.networks))
  gauge('endpoints', 'Endpoints (live attachments, Docker and CNI) in the store', [], (g, s) => g.set(s.endpoints))
  gauge(
    'ipam_leases',
    'Held addresses by holder: attachment, gateway, aux, runtime (not yet bound), orphan',
    ['holder'],
    (g, s) => {
      for (const [holder, n] of Object.entries(s.leases)) g.set({ holder }, n)
    }
  )
  gauge('ipam_pool_size', 'Addresses a pool may hand out (IPv6: approximate above 2^53)', ['pool'], (g, s) => {
    for (const p of s.pools) g.set({ pool: p.poolId }, Number(p.size))
  })
  gauge('ipam_pool_used', 'Addresses of a pool held by a lease', ['pool'], (g, s) => {
    for (const p of s.pools) g.set({ pool: p.poolId }, p.used)
  })
  new Gauge({
    name: `${METRIC_PREFIX}store_quarantined_records`,
    help: 'Records found unreadable and moved aside, by kind (see `isthmus quarantine`); a quarantined lease still holds its address',
    labelNames: ['kind'],
    registers: [registry],
    async collect() {
      const listed = await env.store.quarantine.list()()
      this.reset()
      if (E.isLeft(listed)) return
      const counts = new Map<string, number>(QUARANTINE_KINDS.map((k) => [k, 0]))
      for (const q of listed.right) counts.set(q.kind, (counts.get(q.kind) ?? 0) + 1)
      for (const [kind, n] of counts) this.set({ kind }, n)
    }
  })
}

/**
 * Node's process metrics (CPU, memory, event loop lag, …) under their standard names
 * (`process_*`, `nodejs_*`), so the dashboards made for any Node process read them as they are.
 */
export const registerProcessMetrics = (registry: Registry): void => collectDefaultMetrics({ register: registry })

/**
 * `isthmus_build_info{version,node,arch} 1`: what is running, to join on in queries and to see an
 * upgrade roll through the hosts.
 */
export const registerBuildInfo = (registry: Registry, version: string): void => {
  const g = new Gauge({
    name: `${METRIC_PREFIX}build_info`,
    help: 'Always 1; the labels say which isthmus, on which Node.js and architecture, is running',
    labelNames: ['version', 'node', 'arch'],
    registers: [registry]
  })
  g.set({ version, node: process.version, arch: process.arch }, 1)
}
