/**
 * Latency of the file store's operations on this machine: median and p95 of N sequential calls
 * (each reserve and put includes its fsyncs). Run:
 *   node --conditions=@isthmus/source --import tsx packages/store-fs/bench/store.bench.ts [N]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as E from 'fp-ts/lib/Either.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import { fromBigInt, toBigInt, type AddressSpace, type CoreError, type IpAddress, type NetworkId } from '@isthmus/core'
import { sampleEndpoint, sampleLease, sampleNetwork } from '@isthmus/core/testing'
import { Endpoint } from '@isthmus/core'
import { encodeEnvelope, fileStore, storableEnvelope } from '../src/index.js'

const N = Number(process.argv[2] ?? 200)
const dir = await mkdtemp(join(tmpdir(), 'isthmus-bench-'))
const opened = await fileStore({ stateDir: dir })()
if (E.isLeft(opened)) throw new Error(JSON.stringify(opened.left))
const store = opened.right
const space = 'bench' as AddressSpace
const base = toBigInt('10.30.0.0' as IpAddress)
const addr = (i: number) => fromBigInt(base + BigInt(i + 1), 4)
const owner = (i: number) => ({ kind: 'runtime' as const, ref: `b${i}` })

const time = async (name: string, op: (i: number) => TE.TaskEither<CoreError, unknown>) => {
  const ms: number[] = []
  for (let i = 0; i < N; i++) {
    const t0 = performance.now()
    const r = await op(i)()
    ms.push(performance.now() - t0)
    if (E.isLeft(r)) throw new Error(`${name}: ${JSON.stringify(r.left)}`)
  }
  ms.sort((a, b) => a - b)
  const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!.toFixed(2)
  console.log(`${name.padEnd(26)} median ${at(0.5)} ms   p95 ${at(0.95)} ms   (n=${N})`)
}

await time('reserve (free address)', (i) => store.leases.reserve(sampleLease(space, addr(i), owner(i))))
await time('reserve (taken address)', (i) => store.leases.reserve(sampleLease(space, addr(i), owner(-1))))
await time('networks.put', (i) => store.networks.put(sampleNetwork(`net-${i % 20}` as NetworkId, i)))
// Not durable, as the daemon writes a Docker endpoint: no fsync, so the encoding, the check and
// the rename are what is measured.
await time('endpoints.put (no fsync)', (i) =>
  store.endpoints.put(sampleEndpoint(`ep-${i % 20}` as never, i), { durable: false })
)
await time('endpoints.get', (i) => store.endpoints.get(`ep-${i % 20}` as never))
await time('networks.get', (i) => store.networks.get(`net-${i % 20}` as NetworkId))
await time('leases.transfer', (i) =>
  store.leases.transfer(space, addr(i), owner(i), { kind: 'endpoint', id: `e${i}` as never })
)
await time('leases.release (owner)', (i) =>
  store.leases.release(space, addr(i), { kind: 'endpoint', id: `e${i}` as never })
)
await time('withLock (uncontended)', () => store.withLock('bench', () => Promise.resolve(E.right(undefined))))

// The CPU part of decode before store, without I/O: the bytes of a new endpoint record alone, and
// the bytes checked to decode back (what every put, reserve and transfer now pays once per text).
const cpu = (name: string, op: (i: number) => unknown) => {
  const M = N * 20
  const t0 = performance.now()
  for (let i = 0; i < M; i++) op(i)
  console.log(`${name.padEnd(26)} mean ${(((performance.now() - t0) / M) * 1000).toFixed(1)} µs   (n=${M})`)
}
const checked = storableEnvelope('endpoint', Endpoint)
// 1,000 distinct records, more than the decoded texts remembered: every check is a real decode
const endpoints = Array.from({ length: 1000 }, (_, i) => sampleEndpoint(`ep-${i}` as never, i))
cpu('endpoint bytes', (i) => encodeEnvelope('endpoint', Endpoint, endpoints[i % 1000]!))
cpu('endpoint bytes + check', (i) => checked('endpoint', endpoints[i % 1000]!))

await store.close()
await rm(dir, { recursive: true, force: true })
