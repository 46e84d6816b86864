import { strict as assert } from 'node:assert'
import { after, describe, it } from 'node:test'
import {
  Block,
  ClusterNetwork,
  HostRecord,
  describe as describeError,
  type Cluster,
  type ClusterNetworkName,
  type ClusterView,
  type CoreError,
  type HostName,
  type Subnet
} from '@isthmus/core'
import { clusterContract } from '@isthmus/core/testing'
import { etcdCluster } from '../src/index.js'
import { startChild } from './support/children.js'
import { freshPrefix, leftOf, right, sharedEtcd, sleep, valid } from './support/etcd.js'

const etcd = sharedEtcd()
const opened: Cluster[] = []
after(async () => {
  await Promise.all(opened.map((c) => c.close()))
})

clusterContract('etcdCluster', async () => {
  const e = await etcd()
  const prefix = freshPrefix()
  const connect = () => right(etcdCluster({ endpoints: [e.endpoint], prefix }))
  // etcd's own clock: a lease expires when its TTL has passed for real
  return { cluster: await connect(), connect, elapse: (seconds) => sleep(seconds * 1000), cleanup: async () => {} }
})

const open = async (prefix: string): Promise<Cluster> => {
  const e = await etcd()
  const c = await right(etcdCluster({ endpoints: [e.endpoint], prefix }))
  opened.push(c)
  return c
}

const T = '2026-01-01T00:00:00.000Z'
const host = (name: string, n = 1): HostRecord =>
  valid(HostRecord, { name, underlay: `192.0.2.${n}`, vtepMac: `02:00:00:00:00:0${n}`, since: T })
const network = (name: string, subnet: string, vni: number): ClusterNetwork =>
  valid(ClusterNetwork, { name, subnet, gateway: subnet.replace(/0\/\d+$/, '1'), vni, blockPrefix: 26, createdAt: T })
const block = (net: string, cidr: string, h: string): Block =>
  valid(Block, { network: net, cidr, host: h, claimedAt: T })

const N = (s: string) => s as ClusterNetworkName
const H = (s: string) => s as HostName
const S = (s: string) => s as Subnet

/** Views as they come, and a way to wait for one that satisfies a check. */
const collect = () => {
  const views: ClusterView[] = []
  const errors: CoreError[] = []
  const waiters: Array<{ check: (v: ClusterView) => boolean; resolve: (v: ClusterView) => void }> = []
  return {
    views,
    errors,
    onView: (v: ClusterView) => {
      views.push(v)
      for (const w of [...waiters]) {
        if (w.check(v)) {
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve(v)
        }
      }
    },
    onError: (e: CoreError) => {
      errors.push(e)
    },
    until: (what: string, check: (v: ClusterView) => boolean, timeoutMs = 15_000): Promise<ClusterView> => {
      // the latest view, or one to come: an older view is not the state now
      const latest = views[views.length - 1]
      if (latest !== undefined && check(latest)) return Promise.resolve(latest)
      return new Promise<ClusterView>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no view where ${what} within ${timeoutMs} ms`)), timeoutMs)
        waiters.push({
          check,
          resolve: (v) => {
            clearTimeout(timer)
            resolve(v)
          }
        })
      })
    }
  }
}

describe('etcdCluster: networks', () => {
  it('refuses a VXLAN id or a subnet another network holds, even when both are defined at once', async () => {
    const prefix = freshPrefix()
    const [a, b] = [await open(prefix), await open(prefix)]
    await right(a.networks.define(network('blue', '10.40.0.0/16', 42)))
    const vni = await leftOf(b.networks.define(network('red', '10.41.0.0/16', 42)))
    assert.equal(vni._tag, 'AlreadyExists')
    assert.match(describeError(vni), /VXLAN id 42 belongs to cluster network blue/)
    const sub = await leftOf(b.networks.define(network('red', '10.40.128.0/17', 43)))
    assert.match(describeError(sub), /subnet 10.40.128.0\/17 overlaps cluster network blue/)
    // Two overlapping networks of different names and ids, defined at once: one of them only.
    for (let i = 0; i < 10; i++) {
      const r = await Promise.all([
        a.networks.define(network(`x${i}`, `10.${50 + i}.0.0/16`, 100 + 2 * i))(),
        b.networks.define(network(`y${i}`, `10.${50 + i}.0.0/17`, 101 + 2 * i))()
      ])
      assert.equal(r.filter((x) => x._tag === 'Right').length, 1, `round ${i}: ${JSON.stringify(r)}`)
    }
    const names = (await right(a.networks.list())).map((n) => n.name)
    assert.equal(names.length, 11)
  })

  it('refuses a network that would not decode back, naming it', async () => {
    const c = await open(freshPrefix())
    const e = await leftOf(
      c.networks.define({ ...network('blue', '10.40.0.0/16', 42), gateway: 'nope' } as ClusterNetwork)
    )
    assert.ok(e._tag === 'DecodeFailure' && e.what === 'cluster network blue', describeError(e))
    assert.deepEqual(await right(c.networks.list()), [])
  })

  it('removes a network only without blocks; absent succeeds; its VXLAN id is free again', async () => {
    const c = await open(freshPrefix())
    await right(c.networks.define(network('blue', '10.40.0.0/16', 42)))
    assert.equal(await right(c.blocks.claim(block('blue', '10.40.0.0/26', 'h1'))), true)
    assert.equal(await right(c.networks.remove(N('blue'))), false)
    await right(c.blocks.release(N('blue'), S('10.40.0.0/26'), H('h1')))
    assert.equal(await right(c.networks.remove(N('blue'))), true)
    assert.equal(await right(c.networks.remove(N('blue'))), true)
    assert.deepEqual(await right(c.networks.list()), [])
    await right(c.networks.define(network('red', '10.40.0.0/16', 42)))
  })
})

describe('etcdCluster: blocks', () => {
  it('never gives one block to two hosts claiming at once from two clients', async () => {
    const prefix = freshPrefix()
    const [a, b] = [await open(prefix), await open(prefix)]
    await right(a.networks.define(network('blue', '10.40.0.0/16', 42)))
    const cidrs = Array.from({ length: 40 }, (_, i) => `10.40.${Math.floor(i / 4)}.${(i % 4) * 64}/26`)
    const results = await Promise.all(
      cidrs.flatMap((cidr) => [
        right(a.blocks.claim(block('blue', cidr, 'h1'))).then((won) => ({ cidr, host: 'h1', won })),
        right(b.blocks.claim(block('blue', cidr, 'h2'))).then((won) => ({ cidr, host: 'h2', won }))
      ])
    )
    for (const cidr of cidrs) {
      const winners = results.filter((r) => r.cidr === cidr && r.won)
      assert.equal(winners.length, 1, cidr)
    }
    const listed = await right(b.blocks.list(N('blue')))
    assert.equal(listed.length, cidrs.length)
    for (const bl of listed) assert.ok(results.some((r) => r.cidr === bl.cidr && r.host === bl.host && r.won))
  })
})

describe('etcdCluster: hosts and the watch', () => {
  it('sends the view, then a fresh view after changes, in increasing revisions', async () => {
    const prefix = freshPrefix()
    const [a, b] = [await open(prefix), await open(prefix)]
    await right(a.networks.define(network('blue', '10.40.0.0/16', 42)))
    const seen = collect()
    const w = await right(b.watch(seen.onView, seen.onError))
    try {
      await seen.until('the network', (v) => v.networks.length === 1)
      const reg = await right(a.hosts.register(host('h1'), 5))
      await right(a.blocks.claim(block('blue', '10.40.0.0/26', 'h1')))
      const v = await seen.until('the host and its block', (x) => x.hosts.length === 1 && x.blocks.length === 1)
      assert.deepEqual(v.hosts, [host('h1')])
      assert.deepEqual(v.blocks, [block('blue', '10.40.0.0/26', 'h1')])
      await reg.close()
      await seen.until('the host gone', (x) => x.hosts.length === 0 && x.blocks.length === 1)
      const revisions = seen.views.map((x) => BigInt(x.revision))
      for (let i = 1; i < revisions.length; i++) assert.ok(revisions[i]! > revisions[i - 1]!, revisions.join(' '))
      assert.deepEqual(seen.errors, [])
      // A burst of changes gives fewer views than changes.
      const before = seen.views.length
      await Promise.all(
        Array.from({ length: 30 }, (_, i) => right(a.blocks.claim(block('blue', `10.40.${i + 1}.0/26`, 'h1'))))
      )
      await seen.until('the burst', (x) => x.blocks.length === 31)
      assert.ok(seen.views.length - before <= 30, `${seen.views.length - before} views`)
    } finally {
      await w.close()
    }
  })

  it('forgets a host whose process died, after its TTL, and a watch sees it go', async () => {
    const prefix = freshPrefix()
    const c = await open(prefix)
    const e = await etcd()
    const seen = collect()
    const w = await right(c.watch(seen.onView, seen.onError))
    const child = startChild(['register', e.endpoint, prefix, 'h-dead', '2'])
    try {
      await child.ready
      await seen.until('the child host', (v) => v.hosts.some((h) => h.name === 'h-dead'))
      // Alive for longer than its TTL while its process lives: the keep-alives work.
      await sleep(3_000)
      assert.deepEqual(
        (await right(c.hosts.list())).map((h) => h.name),
        ['h-dead']
      )
      const killed = Date.now()
      await child.kill()
      await seen.until('the child host gone', (v) => v.hosts.length === 0, 10_000)
      const gone = Date.now() - killed
      assert.ok(gone >= 1_000 && gone < 6_000, `gone after ${gone} ms`)
      assert.deepEqual(await right(c.hosts.list()), [])
    } finally {
      await child.kill()
      await w.close()
    }
  })
})
