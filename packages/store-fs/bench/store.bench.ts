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
import { sampleLease, sampleNetwork } from '@isthmus/core/testing'
import { fileStore } from '../src/index.js'

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
await time('networks.get', (i) => store.networks.get(`net-${i % 20}` as NetworkId))
await time('leases.transfer', (i) =>
  store.leases.transfer(space, addr(i), owner(i), { kind: 'endpoint', id: `e${i}` as never })
)
await time('leases.release (owner)', (i) =>
  store.leases.release(space, addr(i), { kind: 'endpoint', id: `e${i}` as never })
)
await time('withLock (uncontended)', () => store.withLock('bench', () => Promise.resolve(E.right(undefined))))
await store.close()
await rm(dir, { recursive: true, force: true })
