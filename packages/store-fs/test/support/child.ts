/**
 * The other processes of the cross-process tests. Modes:
 *
 *   allocate <stateDir> <tag> <seed> <count>  reserve <count> addresses at once, all concurrent,
 *       from 1,000 candidates of 10.20.0.0/22 walked in this process's own (seeded) order; prints
 *       "ok <address>" for each acknowledged reservation.
 *   ipam <stateDir> <tag> <count>  the same through the IPAM engine: request the pool
 *       10.20.0.0/22 (both processes get the same pool), then <count> concurrent allocations;
 *       prints "ok <address>" for each lease.
 *   hold-lock <stateDir> <name> <staleMs>  take withLock(name), print "locked", hold it until killed.
 *   writer <stateDir> <run>  prints "loaded", waits for "go", opens the store, then reserves,
 *       transfers, releases, puts and deletes in a loop until killed, printing each change before it
 *       starts ({"t":"I",...}) and after the store acknowledged it ({"t":"A",...}), and "first-ack"
 *       after the first acknowledgement.
 *
 * Each prints "ready" once its store is open; allocate then waits for "go" on stdin, so that both
 * processes start at the same moment. Any store failure exits with code 2 and the error on stderr.
 */
import { createInterface } from 'node:readline'
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import {
  describe as describeError,
  fromBigInt,
  makeIpam,
  systemClock,
  ownerText,
  toBigInt,
  type AddressSpace,
  type CoreError,
  type EndpointId,
  type IpAddress,
  type LeaseOwner,
  type NetworkId,
  type Store,
  type Subnet
} from '@isthmus/core'
import { sampleEndpoint, sampleLease, sampleNetwork } from '@isthmus/core/testing'
import { fileStore } from '../../src/index.js'

const say = (line: string) => {
  // Synchronous for pipes on Linux: once write returns, the parent can read the line even if
  // this process is killed right after.
  process.stdout.write(`${line}\n`)
}

const must = async <A>(te: TE.TaskEither<CoreError, A>): Promise<A> => {
  const r = await te()
  if (E.isLeft(r)) {
    process.stderr.write(`store call failed: ${describeError(r.left)}\n`)
    process.exit(2)
  }
  return r.right
}

const [mode, stateDir, ...rest] = process.argv.slice(2)
if (mode === undefined || stateDir === undefined) {
  process.stderr.write('usage: child.ts <mode> <stateDir> ...\n')
  process.exit(64)
}

// mulberry32: a tiny seeded generator, so each process's order is reproducible.
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296
}

const ALLOC_SPACE = 'xproc' as AddressSpace
const IPAM_SPACE = 'xproc-ipam' as AddressSpace

const allocate = async (store: Store, tag: string, seed: number, count: number) => {
  const base = toBigInt('10.20.0.0' as IpAddress)
  const candidates = Array.from({ length: 1000 }, (_, i) => fromBigInt(base + BigInt(i + 1), 4))
  const rand = random(seed)
  for (let i = candidates.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[candidates[i], candidates[j]] = [candidates[j]!, candidates[i]!]
  }
  let next = 0
  const one = async (n: number): Promise<void> => {
    while (next < candidates.length) {
      const address = candidates[next++]!
      const owner: LeaseOwner = { kind: 'runtime', ref: `${tag}-${n}` }
      if (await must(store.leases.reserve(sampleLease(ALLOC_SPACE, address, owner, 'xproc-pool')))) {
        say(`ok ${address}`)
        return
      }
    }
    say('exhausted')
  }
  await Promise.all(Array.from({ length: count }, (_, n) => one(n)))
}

const writer = async (store: Store, run: number) => {
  const space = 'kill' as AddressSpace
  let acked = false
  const change = (t: 'I' | 'A', k: string, v: string) => {
    say(JSON.stringify({ t, k, v }))
    if (t === 'A' && !acked) {
      acked = true
      say('first-ack')
    }
  }
  const worker = async (w: number) => {
    const owners = new Map<number, LeaseOwner>()
    const addressOf = (i: number) => `10.${50 + w}.${run % 256}.${i + 1}` as IpAddress
    for (let i = 0; i < 254; i++) {
      const address = addressOf(i)
      const owner: LeaseOwner = { kind: 'runtime', ref: `r${run}w${w}i${i}` }
      change('I', `lease:${address}`, ownerText(owner))
      if (!(await must(store.leases.reserve(sampleLease(space, address, owner, 'kill-pool'))))) {
        process.stderr.write(`reserve of a fresh address ${address} answered false\n`)
        process.exit(2)
      }
      owners.set(i, owner)
      change('A', `lease:${address}`, ownerText(owner))

      const v = run * 1000 + i
      change('I', `network:net-${w}`, String(v))
      await must(store.networks.put(sampleNetwork(`net-${w}` as NetworkId, v)))
      change('A', `network:net-${w}`, String(v))

      const id = `ep-${run}-${w}-${i}`
      change('I', `endpoint:${id}`, String(i))
      await must(store.endpoints.put(sampleEndpoint(id, i)))
      change('A', `endpoint:${id}`, String(i))

      if (i % 3 === 2) {
        const from = owners.get(i - 1)!
        const to: LeaseOwner = { kind: 'endpoint', id: `ep-${run}-${w}-${i - 1}` as EndpointId }
        change('I', `lease:${addressOf(i - 1)}`, ownerText(to))
        if (!(await must(store.leases.transfer(space, addressOf(i - 1), from, to)))) {
          process.stderr.write(`transfer of ${addressOf(i - 1)} answered false\n`)
          process.exit(2)
        }
        owners.set(i - 1, to)
        change('A', `lease:${addressOf(i - 1)}`, ownerText(to))
      }
      if (i % 4 === 3) {
        change('I', `lease:${addressOf(i - 2)}`, '-')
        await must(store.leases.release(space, addressOf(i - 2), owners.get(i - 2)))
        change('A', `lease:${addressOf(i - 2)}`, '-')
        const gone = `ep-${run}-${w}-${i - 3}`
        change('I', `endpoint:${gone}`, '-')
        await must(store.endpoints.delete(gone as EndpointId))
        change('A', `endpoint:${gone}`, '-')
      }
    }
  }
  await Promise.all([0, 1, 2].map(worker))
}

const waitForGo = async () => {
  const lines = createInterface({ input: process.stdin })
  await new Promise<void>((resolve) => lines.on('line', (l) => l === 'go' && resolve()))
  lines.close()
}

const main = async () => {
  switch (mode) {
    case 'allocate': {
      const [tag = 'p', seed = '1', count = '500'] = rest
      const store = await must(fileStore({ stateDir }))
      say('ready')
      await waitForGo()
      await allocate(store, tag, Number(seed), Number(count))
      await store.close()
      say('done')
      break
    }
    case 'ipam': {
      const [tag = 'p', count = '500'] = rest
      const store = await must(fileStore({ stateDir }))
      const ipam = makeIpam({ store, clock: systemClock })
      say('ready')
      await waitForGo()
      const pool = await must(
        ipam.requestPool({ addressSpace: IPAM_SPACE, family: 4, subnet: '10.20.0.0/22' as Subnet })
      )
      await Promise.all(
        Array.from({ length: Number(count) }, async (_, n) => {
          const lease = await must(ipam.allocate(pool.id, { kind: 'runtime', ref: `${tag}-${n}` }))
          say(`ok ${lease.address}`)
        })
      )
      await store.close()
      say('done')
      break
    }
    case 'hold-lock': {
      const [name = 'x', staleMs = '2000'] = rest
      const store = await must(fileStore({ stateDir, lockStaleMs: Number(staleMs) }))
      say('ready')
      await must(
        store.withLock(
          name,
          TE.fromTask(() => {
            say('locked')
            // A pending promise alone does not keep Node running (the lock's refresh timer is unref'd).
            setInterval(() => undefined, 60_000)
            return new Promise<void>(() => undefined)
          })
        )
      )
      break
    }
    case 'writer': {
      // Loaded first, opened on "go": the parent starts the next writer while this one runs, and
      // only lets it open the store once this one is dead.
      say('loaded')
      await waitForGo()
      const store = await must(fileStore({ stateDir }))
      say('ready')
      await writer(store, Number(rest[0] ?? '0'))
      say('finished')
      break
    }
    default:
      process.stderr.write(`unknown mode ${mode}\n`)
      process.exit(64)
  }
}

await main()
