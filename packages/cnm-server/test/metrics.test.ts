/**
 * The metrics listener in process, on 127.0.0.1 and a free port, over the in-memory store:
 * which addresses it accepts, Prometheus text a parser accepts with the store's gauges and the
 * request counters, liveness, and readiness following the store's ping.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { DEFAULT_LOCAL_SPACE, io, makeIpam, type IpAddress, type Store, type Subnet } from '@isthmus/core'
import { memoryStore, right, fixedClock } from '@isthmus/core/testing'
import {
  listenMetrics,
  parseMetricsAddr,
  pluginMetrics,
  registerStoreMetrics,
  type MetricsServer
} from '../src/index.js'
import { parseMetrics, sample } from './support/prometheus.js'

describe('metrics listener', () => {
  let broken = false
  const base = memoryStore()
  // the memory store with a ping (and a lease listing) that fail on demand: an unusable store
  const store: Store = {
    ...base,
    ping: () => (broken ? TE.left(io('ping the store', 'EIO')) : base.ping()),
    leases: { ...base.leases, list: (s, p) => (broken ? TE.left(io('list leases', 'EIO')) : base.leases.list(s, p)) }
  }
  const metrics = pluginMetrics()
  let server: MetricsServer | undefined
  const get = (path: string) =>
    fetch(`http://${server!.address}${path}`).then(async (r) => ({
      status: r.status,
      type: r.headers.get('content-type'),
      text: await r.text()
    }))

  before(async () => {
    const ipam = makeIpam({ store, clock: fixedClock().port })
    const pool = await right(
      ipam.requestPool({ addressSpace: DEFAULT_LOCAL_SPACE, family: 4, subnet: '10.241.251.0/29' as Subnet })()
    )
    await right(ipam.allocate(pool.id, { kind: 'runtime', ref: 'docker' }, { address: '10.241.251.3' as IpAddress })())
    registerStoreMetrics(metrics.registry, { store })
    metrics.observe({ op: 'IpamDriver.RequestAddress', outcome: 'ok', durationMs: 2 })
    metrics.observe({ op: 'IpamDriver.RequestAddress', outcome: 'error', durationMs: 1 })
    server = await listenMetrics({ host: '127.0.0.1', port: 0 }, metrics.registry, store)
  })

  after(async () => {
    await server?.close()
  })

  it('accepts loopback addresses only, with a sentence naming the rule', () => {
    for (const [text, want] of [
      ['127.0.0.1:9323', { host: '127.0.0.1', port: 9323 }],
      ['127.1.2.3:0', { host: '127.1.2.3', port: 0 }],
      ['[::1]:9323', { host: '::1', port: 9323 }],
      ['localhost:9323', { host: '127.0.0.1', port: 9323 }]
    ] as const) {
      assert.deepEqual(parseMetricsAddr(text), E.right(want), text)
    }
    for (const text of ['0.0.0.0:9323', '10.241.0.1:9323', '[::]:9323']) {
      const r = parseMetricsAddr(text)
      assert.ok(E.isLeft(r) && r.left.includes('is not a loopback address'), `${text}: ${JSON.stringify(r)}`)
      assert.ok(r.left.includes('--metrics-allow-remote'), 'the sentence names the way out')
    }
    // asked for explicitly (--metrics-allow-remote), any IP address; a name still is not one
    for (const [text, want] of [
      ['0.0.0.0:9323', { host: '0.0.0.0', port: 9323 }],
      ['10.241.0.1:9323', { host: '10.241.0.1', port: 9323 }],
      ['[::]:9323', { host: '::', port: 9323 }],
      ['127.0.0.1:9323', { host: '127.0.0.1', port: 9323 }]
    ] as const) {
      assert.deepEqual(parseMetricsAddr(text, { allowRemote: true }), E.right(want), text)
    }
    for (const allowRemote of [false, true]) {
      const r = parseMetricsAddr('example.com:9323', { allowRemote })
      assert.ok(E.isLeft(r) && r.left.includes('is not an IP address'), JSON.stringify(r))
    }
    for (const text of ['127.0.0.1', '127.0.0.1:70000', ':9323', '[::1]9323']) {
      const r = parseMetricsAddr(text)
      assert.ok(E.isLeft(r) && r.left.includes('expected HOST:PORT'), `${text}: ${JSON.stringify(r)}`)
    }
  })

  it('serves Prometheus text with the request counters and the store gauges', async () => {
    const r = await get('/metrics')
    assert.equal(r.status, 200)
    assert.match(String(r.type), /^text\/plain; version=0\.0\.4/)
    const m = parseMetrics(r.text)
    assert.equal(sample(m, 'isthmus_cnm_requests_total', { op: 'IpamDriver.RequestAddress', outcome: 'ok' }), 1)
    assert.equal(sample(m, 'isthmus_cnm_requests_total', { op: 'IpamDriver.RequestAddress', outcome: 'error' }), 1)
    assert.match(
      r.text,
      /^isthmus_cnm_request_duration_seconds_count\{op="IpamDriver.RequestAddress",outcome="ok"\} 1$/m
    )
    assert.equal(sample(m, 'isthmus_store_up'), 1)
    assert.equal(sample(m, 'isthmus_networks'), 0)
    // a /29: 6 usable; the gateway and .3 held
    assert.equal(sample(m, 'isthmus_ipam_pool_size', { pool: 'isthmus-local/10.241.251.0/29' }), 6)
    assert.equal(sample(m, 'isthmus_ipam_pool_used', { pool: 'isthmus-local/10.241.251.0/29' }), 2)
    assert.equal(sample(m, 'isthmus_ipam_leases', { holder: 'runtime' }), 1)
    assert.equal(sample(m, 'isthmus_ipam_leases', { holder: 'gateway' }), 1)
    // nothing quarantined: a series at 0 for every kind, so an alert needs no absent()
    for (const kind of ['network', 'endpoint', 'sandbox', 'pool', 'lease']) {
      assert.equal(sample(m, 'isthmus_store_quarantined_records', { kind }), 0, kind)
    }
  })

  it('is live on /healthz, ready on /readyz while the store answers, and 503 when it does not', async () => {
    assert.deepEqual([(await get('/healthz')).status, (await get('/readyz')).status], [200, 200])
    broken = true
    try {
      const r = await get('/readyz')
      assert.equal(r.status, 503)
      assert.match(r.text, /^store unavailable: .*EIO/)
      assert.equal((await get('/healthz')).status, 200, 'still alive')
      const m = parseMetrics((await get('/metrics')).text)
      assert.equal(sample(m, 'isthmus_store_up'), 0)
      assert.equal(
        sample(m, 'isthmus_ipam_pool_size', { pool: 'isthmus-local/10.241.251.0/29' }),
        undefined,
        'no stale numbers'
      )
    } finally {
      broken = false
    }
    assert.equal((await get('/readyz')).status, 200)
    assert.equal((await get('/nothing')).status, 404)
  })
})
