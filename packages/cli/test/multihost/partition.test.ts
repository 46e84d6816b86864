/**
 * A partition (docs/multi-host.md, "When things fail"): one host's packets to etcd are dropped
 * silently (no refusal, as a cut cable). Its containers keep reaching the others' (its kernel
 * entries stay); its ADDs inside its block succeed and those that need etcd fail with code 11
 * within the bound, one or eight at once; after the TTL the other hosts forget it (it keeps its
 * block); when the partition heals it registers again and the others route to it again.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import { uniquePrefix, waitUntil } from '@isthmus/testkit'
import {
  addressOf,
  buildSea,
  codeOf,
  inNs,
  pings,
  routesIn,
  sh,
  startCluster,
  type TestCluster,
  type TestHost
} from './cluster.js'

const prefix = uniquePrefix('imp')
const DEADLINE_MS = 1_000
const TTL_S = 4

describe('multi-host: a host cut off from etcd', { timeout: 300_000 }, () => {
  let c: TestCluster
  let rule: string[] = []
  const network = `${prefix}-net`

  before(async () => {
    buildSea()
    c = await startCluster(prefix, { hosts: 3, leaseTtl: TTL_S, etcdDeadline: DEADLINE_MS, blockSize: 29 })
  })
  after(async () => {
    if (rule.length > 0) sh(inNs(c.underlay.netns, ['iptables', '-D', ...rule]))
    await c?.cleanup()
  })

  it('keeps its traffic and its block, fails what needs etcd with code 11, is forgotten after the TTL and comes back', async () => {
    const [h1, h2, h3] = c.hosts as [TestHost, TestHost, TestHost]
    const subnet = `10.${c.underlay.octet}.64.0/24`
    const conf = (h: TestHost) => c.conf(h, network, { ipam: { ranges: [[{ subnet }]] } })
    const placed = []
    for (const h of [h1, h2, h3]) {
      const sb = c.sandbox(h.name)
      const out = await h.cni('ADD', `${prefix}-${h.name}`, sb.path, conf(h))
      assert.equal(out.code, 0, out.stdout)
      placed.push({ h, ns: sb.name, address: addressOf(out)! })
    }
    const [p1, , p3] = placed as [(typeof placed)[0], (typeof placed)[0], (typeof placed)[0]]
    const block3 = `${p3.address.split('.').slice(0, 3).join('.')}.${Number(p3.address.split('.')[3]) & ~7}/29`
    const routed = (h: TestHost) => routesIn(h.netns).some((r) => r.startsWith(`${block3} `))
    // h1 learns h3's new block from its etcd watch, a moment after h3's ADD answered.
    await waitUntil("h1 routes h3's block", async () => routed(h1), 10_000, 100)

    // etcd listens on the underlay bridge's own address: drop h3's packets to it there.
    rule = ['INPUT', '-s', h3.underlayIp, '-p', 'tcp', '--dport', String(new URL(c.etcd.endpoint).port), '-j', 'DROP']
    sh(inNs(c.underlay.netns, ['iptables', '-I', ...rule]))
    const cutAt = Date.now()
    // etcd's side of h3's open connection is dropped too: the registration's keep-alive stops.
    assert.ok(await pings(p3.ns, p1.address, 3), "h3's sandbox still reaches h1's")

    // Inside its block (/29: 5 addresses left after the first): no etcd needed.
    const inside = await h3.cni('ADD', `${prefix}-in`, c.sandbox('in').path, conf(h3))
    assert.equal(inside.code, 0, `an ADD inside h3's block succeeds: ${inside.stdout}`)
    // Fill the block: the ADD that needs a new block from etcd fails with code 11, within the bound.
    let over: Awaited<ReturnType<TestHost['cni']>> | undefined
    for (let i = 0; i < 10 && over === undefined; i++) {
      const o = await h3.cni('ADD', `${prefix}-f${i}`, c.sandbox(`f${i}`).path, conf(h3))
      if (o.code !== 0) over = o
    }
    assert.ok(over !== undefined, 'an ADD needed a new block')
    assert.equal(codeOf(over), 11, `an ADD that needs a new block is code 11: ${over.stdout}`)
    assert.ok(over.ms <= 2 * DEADLINE_MS + 2_000, `within the bound: ${over.ms} ms`)
    // A storm that needs etcd: they share one claim and fail together, none waits for the others in turn.
    const par = await Promise.all(
      Array.from({ length: 8 }, (_, i) => h3.cni('ADD', `${prefix}-par${i}`, c.sandbox(`par${i}`).path, conf(h3)))
    )
    assert.deepEqual(
      par.map((o) => codeOf(o)),
      par.map(() => 11),
      'every ADD that needs etcd is code 11'
    )
    const slowest = Math.max(...par.map((o) => o.ms))
    assert.ok(slowest <= 2 * DEADLINE_MS + 2_000, `8 at once, within the bound: ${slowest} ms`)

    await waitUntil('h1 and h2 forget h3', async () => !routed(h1) && !routed(h2), (TTL_S + 10) * 1000, 200)
    const forgotMs = Date.now() - cutAt
    assert.ok(
      routesIn(h3.netns).some((r) => r.includes(h1.underlayIp)),
      'h3 keeps its routes to h1'
    )
    const blocks = await c.etcdGet('cluster/blocks/')
    assert.ok(
      blocks.some((kv) => kv.value.includes(`"${h3.name}"`)),
      'h3 keeps its block in etcd'
    )

    sh(inNs(c.underlay.netns, ['iptables', '-D', ...rule]))
    rule = []
    const healedAt = Date.now()
    await waitUntil('h3 back on h1 and h2', async () => routed(h1) && routed(h2), 30_000, 200)
    const backMs = Date.now() - healedAt
    assert.ok(await pings(p1.ns, p3.address, 3), "h1's sandbox reaches h3's again")
    const retried = await h3.cni('ADD', `${prefix}-over2`, c.sandbox('over2').path, conf(h3))
    assert.equal(retried.code, 0, `after the partition an ADD that needs a new block succeeds: ${retried.stdout}`)
    console.log(
      `# cut off: the ADD that needed etcd failed in ${over.ms} ms, 8 at once in ${slowest} ms; forgotten by the others ${forgotMs} ms after the cut; back ${backMs} ms after healing`
    )
  })
})
