/**
 * IPAM allocation cost against pool fill (prints numbers, asserts nothing): a whole IPv4 /16,
 * refill after random releases, an IPv6 /64, and a second process arriving with an empty hint.
 * Run: pnpm bench:ipam
 */
import * as E from 'fp-ts/lib/Either.js'
import {
  DEFAULT_LOCAL_SPACE,
  makeIpam,
  type EndpointId,
  type Ipam,
  type Lease,
  type PoolId,
  type Subnet
} from '@isthmus/core'
import { instrument, memoryStore } from '@isthmus/core/testing'

const clock = { now: () => new Date(0) }
const space = DEFAULT_LOCAL_SPACE

// xorshift32: the same "random" releases on every run
const rng = (seed: number) => () => {
  seed ^= seed << 13
  seed ^= seed >>> 17
  seed ^= seed << 5
  return (seed >>> 0) / 2 ** 32
}

interface Run {
  readonly leases: Lease[]
  readonly micros: number[]
  readonly totalMs: number
  readonly stop: string
  /** The call that found the pool full (it reads every lease once), in µs. */
  readonly stopMicros?: number
}

const fill = async (ipam: Ipam, pool: PoolId, limit: number, tag: string): Promise<Run> => {
  const leases: Lease[] = []
  const micros: number[] = []
  for (let k = 0; k < limit; k++) {
    const a = performance.now()
    const r = await ipam.allocate(pool, { kind: 'endpoint', id: `${tag}${k}` as EndpointId })()
    const us = (performance.now() - a) * 1000
    if (E.isLeft(r)) return { leases, micros, totalMs: sum(micros) / 1000, stop: r.left._tag, stopMicros: us }
    micros.push(us)
    leases.push(r.right)
  }
  return { leases, micros, totalMs: sum(micros) / 1000, stop: `limit ${limit}` }
}

const sum = (xs: ReadonlyArray<number>): number => xs.reduce((a, b) => a + b, 0)
const mean = (xs: ReadonlyArray<number>): number => sum(xs) / Math.max(1, xs.length)

const report = (title: string, r: Run): void => {
  const first = mean(r.micros.slice(0, 1000))
  const last = mean(r.micros.slice(-1000))
  const rate = (r.leases.length / r.totalMs) * 1000
  console.log(
    `${title.padEnd(34)} ${String(r.leases.length).padStart(7)} allocations  ${rate.toFixed(0).padStart(7)}/s  ` +
      `first 1000: ${first.toFixed(2)} µs  last 1000: ${last.toFixed(2)} µs  ` +
      `last/first: ${(last / first).toFixed(2)}  ` +
      `(stopped: ${r.stop}${r.stopMicros === undefined ? '' : ` after ${(r.stopMicros / 1000).toFixed(1)} ms`})`
  )
}

const must = <A>(e: E.Either<unknown, A>): A => {
  if (E.isLeft(e)) {
    console.error(e.left)
    process.exit(1)
  }
  return e.right
}

const v4 = async (): Promise<void> => {
  const store = memoryStore()
  const ipam = makeIpam({ store, clock })
  const pool = must(await ipam.requestPool({ addressSpace: space, family: 4, subnet: '10.0.0.0/16' as Subnet })())
  const run = await fill(ipam, pool.id, 1 << 20, 'a')
  report('IPv4 /16 fill', run)

  const random = rng(42)
  const released = run.leases.filter(() => random() < 0.1)
  const t0 = performance.now()
  for (const l of released) must(await ipam.release(space, l.address, l.owner)())
  const relMs = performance.now() - t0
  console.log(
    `${'IPv4 /16 release 10% at random'.padEnd(34)} ${String(released.length).padStart(7)} releases     ` +
      `${((released.length / relMs) * 1000).toFixed(0).padStart(7)}/s`
  )
  report('IPv4 /16 refill after release', await fill(ipam, pool.id, 1 << 20, 'b'))

  // a second process: empty hint, pool full but for 100 addresses scattered at random
  const again = rng(7)
  const all = must(await ipam.leases(space, pool.id)()).filter((l) => l.owner.kind === 'endpoint')
  for (const l of all.filter(() => again() < 100 / all.length)) must(await ipam.release(space, l.address)())
  const [coldStore, probe] = instrument('store', store)
  const cold = makeIpam({ store: coldStore, clock })
  for (const id of ['cold1', 'cold2', 'cold3']) {
    probe.reset()
    const t = performance.now()
    must(await cold.allocate(pool.id, { kind: 'endpoint', id: id as EndpointId })())
    const us = (performance.now() - t) * 1000
    console.log(
      `${`IPv4 /16 new process, ~100 free: ${id}`.padEnd(34)} ${us.toFixed(0).padStart(7)} µs  ` +
        `reserve calls: ${probe.callsOf('leases.reserve').length}, ` +
        `lease listings: ${probe.callsOf('leases.list').length}`
    )
  }
}

const v6 = async (): Promise<void> => {
  const store = memoryStore()
  const ipam = makeIpam({ store, clock })
  const pool = must(await ipam.requestPool({ addressSpace: space, family: 6, subnet: 'fd00:1:2:3::/64' as Subnet })())
  report('IPv6 /64 100,000 allocations', await fill(ipam, pool.id, 100_000, 'c'))
}

// JIT warm-up on a throwaway store, so that "first 1000" measures the engine, not the compiler
const warm = makeIpam({ store: memoryStore(), clock })
const wp = must(await warm.requestPool({ addressSpace: space, family: 4, subnet: '10.1.0.0/20' as Subnet })())
await fill(warm, wp.id, 1 << 20, 'w')
const wp6 = must(await warm.requestPool({ addressSpace: space, family: 6, subnet: 'fd00:9::/64' as Subnet })())
await fill(warm, wp6.id, 4000, 'w6')

console.log(`node ${process.version}, memoryStore, one process (times include the store's reserve and cursor write)`)
await v4()
await v6()
