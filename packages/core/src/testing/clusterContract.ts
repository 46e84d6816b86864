/**
 * The Cluster contract as a reusable node:test suite, as `storeContract` is for stores: the
 * in-memory cluster and every adapter (etcd) run the same behaviours. Call
 * `clusterContract(name, make)` at the top level of a test file; `make` opens a fresh, empty
 * cluster (for etcd: a prefix of its own) and says how to reach it again and remove it.
 *
 * Only the port is used: how an adapter stores keys, reconnects or times out is its own tests'.
 */
import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import type * as t from 'io-ts'
import { report } from '../decode.js'
import { describe as describeError } from '../errors.js'
import type { Subnet } from '../model/Address.js'
import { Block, ClusterNetwork, HostRecord, type ClusterNetworkName, type HostName } from '../model/Cluster.js'
import type { Closable, Cluster, ClusterView } from '../ports/Cluster.js'
import { left, right } from './assertions.js'

/** What `make` returns: a client of an empty cluster, and how to reach, age and remove it. @category testing */
export interface ClusterFixture {
  readonly cluster: Cluster
  /** Another client of the same cluster (another host's daemon). */
  readonly connect: () => Promise<Cluster>
  /**
   * Let `seconds` pass for host leases: the memory cluster moves its clock, a real store waits.
   * The suite then polls for at most `settleMs` more.
   */
  readonly elapse: (seconds: number) => Promise<void>
  readonly cleanup: () => Promise<void>
}

/** @category testing */
export interface ClusterContractOptions {
  /** The TTL of registrations the suite lets expire (default 2: etcd's shortest lease). */
  readonly ttlSeconds?: number
  /** How long the suite polls for an expected change or view (default 5000). */
  readonly settleMs?: number
}

// -------------------------------------------------------------------------------------
// samples
// -------------------------------------------------------------------------------------

const valid = <A, Out>(codec: t.Type<A, Out>, value: unknown): A => {
  const r = codec.decode(value)
  if (E.isLeft(r)) assert.fail(`sample ${codec.name} does not decode: ${report(r.left).join('; ')}`)
  return r.right
}

const CREATED = '2026-01-01T00:00:00.000Z'

/** A cluster network record (gateway the subnet's first address, blocks of /26). @category testing */
export const sampleClusterNetwork = (
  name: string,
  subnet = '10.40.0.0/16',
  vni = 4096,
  fields: Partial<ClusterNetwork> = {}
): ClusterNetwork => {
  const [base] = subnet.split('/')
  const octets = (base ?? '').split('.').map(Number)
  const gateway = octets.length === 4 ? [octets[0], octets[1], octets[2], (octets[3] ?? 0) + 1].join('.') : `${base}1`
  return valid(ClusterNetwork, { name, subnet, gateway, vni, blockPrefix: 26, createdAt: CREATED, ...fields })
}

/** A host record with an underlay address in 192.0.2.0/24 (documentation range). @category testing */
export const sampleHost = (name: string, n = 1, fields: Partial<HostRecord> = {}): HostRecord =>
  valid(HostRecord, {
    name,
    underlay: `192.0.2.${n % 250}`,
    vtepMac: `02:00:00:00:00:${(n % 256).toString(16).padStart(2, '0')}`,
    since: CREATED,
    ...fields
  })

/** @category testing */
export const sampleBlock = (network: string, cidr: string, host: string): Block =>
  valid(Block, { network, cidr, host, claimedAt: CREATED })

// -------------------------------------------------------------------------------------
// helpers
// -------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Poll `probe` until it holds, or fail with `what` after `ms`. */
const eventually = async (what: string, ms: number, probe: () => Promise<boolean> | boolean): Promise<void> => {
  const until = Date.now() + ms
  for (;;) {
    if (await probe()) return
    if (Date.now() > until) assert.fail(`not within ${ms} ms: ${what}`)
    await sleep(20)
  }
}

const names = (hosts: ReadonlyArray<HostRecord>): string[] => hosts.map((h) => h.name).sort()
const cidrs = (blocks: ReadonlyArray<Block>): string[] => blocks.map((b) => `${b.network} ${b.cidr}`).sort()
const N = (s: string) => s as ClusterNetworkName
const H = (s: string) => s as HostName
const S = (s: string) => s as Subnet

/**
 * The Cluster contract suite. Each test opens its own cluster with `make` and removes it after.
 *
 * @category testing
 */
export const clusterContract = (
  name: string,
  make: () => Promise<ClusterFixture>,
  options: ClusterContractOptions = {}
): void => {
  const ttl = options.ttlSeconds ?? 2
  const settle = options.settleMs ?? 5000

  const withCluster = (body: (f: ClusterFixture) => Promise<void>) => async () => {
    const f = await make()
    const opened: Cluster[] = []
    const fixture: ClusterFixture = {
      ...f,
      connect: async () => {
        const c = await f.connect()
        opened.push(c)
        return c
      }
    }
    try {
      await body(fixture)
    } finally {
      for (const c of opened) await c.close()
      await f.cluster.close()
      await f.cleanup()
    }
  }

  void describe(`Cluster contract: ${name}`, () => {
    void describe('networks', () => {
      void it(
        'define stores a network and answers it; get and list find it; a second define answers the stored one',
        withCluster(async ({ cluster }) => {
          const blue = sampleClusterNetwork('blue', '10.40.0.0/16', 4096)
          assert.deepEqual(await right(cluster.networks.define(blue)), blue)
          assert.deepEqual(await right(cluster.networks.get(N('blue'))), O.some(blue))
          assert.deepEqual(await right(cluster.networks.get(N('green'))), O.none)
          const again = await right(cluster.networks.define({ ...blue, vni: 5000, gateway: blue.gateway }))
          assert.deepEqual(again, blue, 'the first definition wins')
          assert.deepEqual(
            (await right(cluster.networks.list())).map((n) => n.name),
            ['blue']
          )
        })
      )

      void it(
        'two hosts defining one name at once get the same record',
        withCluster(async ({ cluster, connect }) => {
          const other = await connect()
          const defs = Array.from({ length: 8 }, (_, i) =>
            sampleClusterNetwork('race', '10.41.0.0/16', 4100 + i, { createdAt: `2026-01-0${i + 1}T00:00:00.000Z` })
          )
          const answers = await Promise.all(
            defs.map((d, i) => right((i % 2 === 0 ? cluster : other).networks.define(d)))
          )
          const first = answers[0]
          for (const a of answers) assert.deepEqual(a, first)
          assert.ok(defs.some((d) => d.vni === first?.vni))
          assert.equal((await right(cluster.networks.list())).length, 1)
        })
      )

      void it(
        'a network whose VNI or subnet another network holds is refused with AlreadyExists',
        withCluster(async ({ cluster }) => {
          await right(cluster.networks.define(sampleClusterNetwork('blue', '10.40.0.0/16', 4096)))
          const vni = await left(cluster.networks.define(sampleClusterNetwork('green', '10.42.0.0/16', 4096)))
          assert.equal(vni._tag, 'AlreadyExists', describeError(vni))
          assert.match(describeError(vni), /4096/)
          const overlap = await left(cluster.networks.define(sampleClusterNetwork('red', '10.40.128.0/17', 4097)))
          assert.equal(overlap._tag, 'AlreadyExists', describeError(overlap))
          assert.match(describeError(overlap), /blue/)
          assert.deepEqual(
            (await right(cluster.networks.list())).map((n) => n.name),
            ['blue']
          )
        })
      )

      void it(
        'remove refuses while blocks remain, then removes; absent succeeds',
        withCluster(async ({ cluster }) => {
          await right(cluster.networks.define(sampleClusterNetwork('blue')))
          assert.equal(await right(cluster.blocks.claim(sampleBlock('blue', '10.40.0.0/26', 'h1'))), true)
          assert.equal(await right(cluster.networks.remove(N('blue'))), false)
          assert.equal((await right(cluster.networks.get(N('blue'))))._tag, 'Some')
          await right(cluster.blocks.release(N('blue'), S('10.40.0.0/26'), H('h1')))
          assert.equal(await right(cluster.networks.remove(N('blue'))), true)
          assert.deepEqual(await right(cluster.networks.get(N('blue'))), O.none)
          assert.equal(await right(cluster.networks.remove(N('blue'))), true)
        })
      )
    })

    void describe('blocks', () => {
      void it(
        'claim takes a free block once; only its holder releases it; release of an absent block succeeds',
        withCluster(async ({ cluster }) => {
          await right(cluster.networks.define(sampleClusterNetwork('blue')))
          const b = sampleBlock('blue', '10.40.0.64/26', 'h1')
          assert.equal(await right(cluster.blocks.claim(b)), true)
          assert.equal(await right(cluster.blocks.claim(b)), false, 'already held, even by the same host')
          assert.equal(await right(cluster.blocks.claim({ ...b, host: H('h2') })), false)
          assert.deepEqual(await right(cluster.blocks.list(N('blue'))), [b])
          await right(cluster.blocks.release(N('blue'), b.cidr, H('h2')))
          assert.deepEqual(await right(cluster.blocks.list(N('blue'))), [b], 'another host cannot release it')
          await right(cluster.blocks.release(N('blue'), b.cidr, H('h1')))
          assert.deepEqual(await right(cluster.blocks.list(N('blue'))), [])
          await right(cluster.blocks.release(N('blue'), b.cidr, H('h1')))
          assert.equal(await right(cluster.blocks.claim({ ...b, host: H('h2') })), true, 'free again for anyone')
        })
      )

      void it(
        'list gives every block or those of one network',
        withCluster(async ({ cluster }) => {
          await right(cluster.networks.define(sampleClusterNetwork('blue', '10.40.0.0/16', 4096)))
          await right(cluster.networks.define(sampleClusterNetwork('green', '10.50.0.0/16', 4097)))
          const claims = [
            sampleBlock('blue', '10.40.0.0/26', 'h1'),
            sampleBlock('blue', '10.40.0.64/26', 'h2'),
            sampleBlock('green', '10.50.0.0/26', 'h1')
          ]
          for (const b of claims) assert.equal(await right(cluster.blocks.claim(b)), true)
          assert.deepEqual(cidrs(await right(cluster.blocks.list())), cidrs(claims))
          assert.deepEqual(cidrs(await right(cluster.blocks.list(N('blue')))), cidrs(claims.slice(0, 2)))
          assert.deepEqual(await right(cluster.blocks.list(N('red'))), [])
        })
      )

      void it(
        'of many hosts claiming one block at once, exactly one gets it',
        withCluster(async ({ cluster, connect }) => {
          await right(cluster.networks.define(sampleClusterNetwork('blue')))
          const clients = [cluster, await connect(), await connect()]
          const wins = await Promise.all(
            Array.from({ length: 12 }, (_, i) =>
              right(clients[i % 3]!.blocks.claim(sampleBlock('blue', '10.40.1.0/26', `h${i}`)))
            )
          )
          assert.equal(wins.filter((w) => w).length, 1)
          const held = await right(cluster.blocks.list(N('blue')))
          assert.equal(held.length, 1)
          assert.equal(held[0]?.host, `h${wins.indexOf(true)}`)
        })
      )

      void it(
        'a block of a network that is not defined is refused with NotFound',
        withCluster(async ({ cluster }) => {
          const e = await left(cluster.blocks.claim(sampleBlock('nowhere', '10.40.0.0/26', 'h1')))
          assert.equal(e._tag, 'NotFound', describeError(e))
          assert.deepEqual(await right(cluster.blocks.list()), [])
        })
      )
    })

    void describe('hosts', () => {
      void it(
        'register lists the host; a second registration of the name replaces it; closing the old one keeps the new',
        withCluster(async ({ cluster, connect }) => {
          const a = sampleHost('h1', 1)
          const first = await right(cluster.hosts.register(a, 30))
          assert.deepEqual(await right(cluster.hosts.list()), [a])
          const restarted = await connect()
          const b = sampleHost('h1', 7, { since: '2026-02-01T00:00:00.000Z' })
          const second = await right(restarted.hosts.register(b, 30))
          assert.deepEqual(await right(cluster.hosts.list()), [b])
          await first.close()
          assert.deepEqual(await right(cluster.hosts.list()), [b], 'the newer registration stays')
          await second.close()
          assert.deepEqual(await right(cluster.hosts.list()), [])
        })
      )

      void it(
        'a registration whose client is gone expires after its TTL; registering again brings the host back',
        withCluster(async ({ cluster, connect, elapse }) => {
          const keeper: Closable = await right(cluster.hosts.register(sampleHost('stays', 1), 60))
          const doomed = await connect()
          await right(doomed.hosts.register(sampleHost('gone', 2), ttl))
          assert.deepEqual(names(await right(cluster.hosts.list())), ['gone', 'stays'])
          await doomed.close()
          await elapse(ttl)
          await eventually('the registration of a closed client expires', settle + ttl * 1000, async () =>
            (await right(cluster.hosts.list())).every((h) => h.name !== 'gone')
          )
          assert.deepEqual(names(await right(cluster.hosts.list())), ['stays'])
          const back = await connect()
          await right(back.hosts.register(sampleHost('gone', 2), ttl))
          assert.deepEqual(names(await right(cluster.hosts.list())), ['gone', 'stays'])
          await keeper.close()
        })
      )

      void it(
        'a registration kept alive outlives its TTL',
        withCluster(async ({ cluster, elapse }) => {
          const r = await right(cluster.hosts.register(sampleHost('h1', 1), ttl))
          await elapse(ttl * 2)
          assert.deepEqual(names(await right(cluster.hosts.list())), ['h1'])
          await r.close()
        })
      )
    })

    void describe('watch', () => {
      void it(
        'delivers the current view first, then later changes in order of revision',
        withCluster(async ({ cluster, connect }) => {
          await right(cluster.networks.define(sampleClusterNetwork('blue')))
          await right(cluster.blocks.claim(sampleBlock('blue', '10.40.0.0/26', 'h1')))
          const views: ClusterView[] = []
          const errors: string[] = []
          const w = await right(
            cluster.watch(
              (v) => views.push(v),
              (e) => errors.push(describeError(e))
            )
          )
          await eventually('an initial view', settle, () => views.length > 0)
          assert.deepEqual(cidrs(views[0]!.blocks), ['blue 10.40.0.0/26'])
          assert.deepEqual(
            views[0]!.networks.map((n) => n.name),
            ['blue']
          )

          const other = await connect()
          const reg = await right(other.hosts.register(sampleHost('h2', 2), 30))
          for (let i = 1; i <= 4; i++) {
            await right(other.blocks.claim(sampleBlock('blue', `10.40.${i}.0/26`, 'h2')))
          }
          await right(cluster.blocks.release(N('blue'), S('10.40.0.0/26'), H('h1')))
          await eventually(
            'a view with every change',
            settle,
            () => views.at(-1)?.blocks.length === 4 && views.at(-1)?.hosts.length === 1
          )
          const last = views.at(-1)!
          assert.deepEqual(names(last.hosts), ['h2'])
          assert.ok(last.blocks.every((b) => b.host === 'h2'))

          // Views in increasing revision, and none older than one before it (coalescing may skip).
          for (let i = 1; i < views.length; i++) {
            assert.ok(BigInt(views[i]!.revision) > BigInt(views[i - 1]!.revision), 'revisions increase')
            const claimed = (v: ClusterView) => v.blocks.filter((b) => b.host === 'h2').length
            assert.ok(claimed(views[i]!) >= claimed(views[i - 1]!), 'a view never goes back')
          }
          assert.deepEqual(errors, [])

          await w.close()
          const seen = views.length
          await reg.close()
          await sleep(200)
          assert.equal(views.length, seen, 'nothing after close')
        })
      )

      void it(
        'views show a host that registers and forget it when its registration ends',
        withCluster(async ({ cluster, connect, elapse }) => {
          const views: ClusterView[] = []
          const w = await right(
            cluster.watch(
              (v) => views.push(v),
              () => undefined
            )
          )
          await eventually('an initial view', settle, () => views.length > 0)
          assert.deepEqual(views[0]!.hosts, [])
          const other = await connect()
          await right(other.hosts.register(sampleHost('h2', 2), ttl))
          await eventually('h2 appears', settle, () => names(views.at(-1)!.hosts).includes('h2'))
          await other.close()
          await elapse(ttl)
          await eventually('h2 expires', settle + ttl * 1000, () => views.at(-1)!.hosts.length === 0)
          await w.close()
        })
      )
    })

    void it(
      'ping answers',
      withCluster(async ({ cluster }) => {
        await right(cluster.ping())
      })
    )
  })
}
