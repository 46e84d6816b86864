/**
 * ADD storms on three hosts (issue 15's acceptance): 100 parallel CNI ADDs on each host at once
 * give 0 failures and 0 duplicate addresses in the cluster, each address inside a block its host
 * holds; then the 300 DELs leave every block empty and released in etcd and nothing on any host.
 * And a host's daemon killed with SIGKILL during a storm, then started again: no address that was
 * answered is lost or given twice, the other hosts' calls all succeed, and the killed host's failed
 * calls succeed when the runtime tries them again.
 */
import { strict as assert } from 'node:assert'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { contains, type IpAddress, type Subnet } from '@isthmus/core'
import { uniquePrefix, waitUntil } from '@isthmus/testkit'
import {
  addressOf,
  buildSea,
  codeOf,
  sh,
  inNs,
  run,
  startCluster,
  type CniOutcome,
  type TestCluster,
  type TestHost
} from './cluster.js'

const prefix = uniquePrefix('ims')
const PER_HOST = 100

interface Attachment {
  readonly host: TestHost
  readonly cid: string
  readonly sandbox: { readonly name: string; readonly path: string }
}

const records = (host: TestHost, dir: string): number => {
  const d = join(host.stateDir, 'v1', dir)
  return existsSync(d) ? readdirSync(d, { recursive: true }).filter((f) => String(f).endsWith('.json')).length : 0
}

/** The ports of a host's bridges, but the daemon's spare veth pairs (kept ready, alias `isthmus-spare`). */
const bridgePorts = (host: TestHost): string[] => {
  const links = JSON.parse(sh(inNs(host.netns, ['ip', '-json', '-details', 'link', 'show']))) as Array<{
    ifname: string
    master?: string
    ifalias?: string
    linkinfo?: { info_kind?: string }
  }>
  const bridges = new Set(links.filter((l) => l.linkinfo?.info_kind === 'bridge').map((l) => l.ifname))
  return links
    .filter((l) => l.master !== undefined && bridges.has(l.master) && l.ifalias !== 'isthmus-spare')
    .map((l) => l.ifname)
}

describe('multi-host: ADD storms', { timeout: 600_000 }, () => {
  let c: TestCluster
  let subnet = ''
  const network = `${prefix}-net`

  before(async () => {
    buildSea()
    c = await startCluster(prefix, { hosts: 3, leaseTtl: 4 })
    subnet = `10.${c.underlay.octet}.64.0/21`
  })
  after(async () => {
    await c?.cleanup()
  })

  const conf = (host: TestHost) => c.conf(host, network, { ipam: { ranges: [[{ subnet }]] } })
  const attachments = (tag: string): Attachment[] =>
    c.hosts.flatMap((host) =>
      Array.from({ length: PER_HOST }, (_, i) => ({
        host,
        cid: `${prefix}-${tag}-${host.name}-${i}`,
        sandbox: c.sandbox(`${tag}${host.name}x${i}`)
      }))
    )
  const addAll = (as: ReadonlyArray<Attachment>): Promise<CniOutcome[]> =>
    Promise.all(as.map((a) => a.host.cni('ADD', a.cid, a.sandbox.path, conf(a.host))))
  const delAll = (as: ReadonlyArray<Attachment>): Promise<CniOutcome[]> =>
    Promise.all(as.map((a) => a.host.cni('DEL', a.cid, a.sandbox.path, conf(a.host))))
  const blocks = async () =>
    // Each value is the store-etcd envelope {schema, kind, data}.
    (await c.etcdGet(`cluster/blocks/`)).map(
      (kv) => (JSON.parse(kv.value) as { data: { host: string; cidr: Subnet } }).data
    )

  it(`3 hosts × ${PER_HOST} parallel ADDs: 0 failures, 0 duplicates; the DELs leave every block released and nothing on any host`, async () => {
    // The storm's first ADDs on three hosts race to define the network: one definition wins.
    const first = attachments('s')
    const t0 = Date.now()
    const adds = await addAll(first)
    const addMs = Date.now() - t0
    const failed = adds.flatMap((o, i) => (o.code === 0 ? [] : [`${first[i]!.host.name}: ${o.stdout}`]))
    assert.deepEqual(failed, [], 'no ADD failed')
    const addresses = adds.map((o) => addressOf(o)!)
    assert.equal(new Set(addresses).size, addresses.length, 'no address twice in the cluster')
    const held = await blocks()
    for (const [i, a] of first.entries()) {
      const b = held.find((x) => contains(x.cidr, addresses[i] as IpAddress))
      assert.equal(b?.host, a.host.name, `${addresses[i]} is in a block of ${a.host.name}`)
    }
    for (const host of c.hosts) {
      assert.equal(records(host, 'endpoints'), PER_HOST, `${host.name}: ${PER_HOST} endpoints`)
    }

    const t1 = Date.now()
    const dels = await delAll(first)
    const delMs = Date.now() - t1
    assert.deepEqual(
      dels.flatMap((o, i) => (o.code === 0 ? [] : [`${first[i]!.host.name}: ${o.stdout}`])),
      [],
      'no DEL failed'
    )
    assert.deepEqual(await blocks(), [], 'every block released in etcd')
    for (const host of c.hosts) {
      assert.equal(records(host, 'endpoints'), 0, `${host.name}: no endpoint record`)
    }
    // The daemon answers DEL before the kernel has removed the pair (a deferred removal).
    await waitUntil(
      'no port left on any bridge',
      async () => c.hosts.every((h) => bridgePorts(h).length === 0),
      30_000,
      200
    ).catch((e: unknown) => {
      throw new Error(`${String(e)}: ${c.hosts.map((h) => `${h.name}: ${bridgePorts(h).join(' ')}`).join('; ')}`)
    })
    const left = await Promise.all(first.map((a) => run(inNs(a.sandbox.name, ['ip', 'link', 'show', 'dev', 'eth0']))))
    assert.equal(left.filter((r) => r.code === 0).length, 0, 'no eth0 left in any sandbox')
    console.log(`# ${first.length} ADDs on 3 hosts: ${addMs} ms wall; ${first.length} DELs: ${delMs} ms wall`)
  })

  it('SIGKILL of one daemon during a storm, then a restart: nothing lost, no duplicate, the others unaffected', async () => {
    const [h1, h2, h3] = c.hosts as [TestHost, TestHost, TestHost]
    const storm = attachments('k')
    // Killed once a third of its calls are answered: some done, some in flight, some not yet begun.
    let answered2 = 0
    let killed: Promise<void> | undefined
    const adds = Promise.all(
      storm.map((a) =>
        a.host.cni('ADD', a.cid, a.sandbox.path, conf(a.host)).then((o) => {
          if (a.host === h2 && o.code === 0 && ++answered2 === Math.floor(PER_HOST / 3)) killed = h2.stop('SIGKILL')
          return o
        })
      )
    )
    const outcomes = await adds
    await killed
    assert.ok(killed !== undefined, 'h2 was killed during the storm')
    const on = (host: TestHost) => storm.flatMap((a, i) => (a.host === host ? [{ a, o: outcomes[i]! }] : []))
    for (const host of [h1, h3]) {
      assert.deepEqual(
        on(host)
          .filter((x) => x.o.code !== 0)
          .map((x) => x.o.stdout),
        [],
        `${host.name}'s ADDs all succeeded`
      )
    }
    const killedFailures = on(h2).filter((x) => x.o.code !== 0)
    for (const f of killedFailures) assert.equal(codeOf(f.o), 11, `a call cut by the kill is code 11: ${f.o.stdout}`)

    await h2.start()
    // The runtime's part: a failed ADD is followed by a DEL, then tried again.
    for (const f of killedFailures) {
      const d = await h2.cni('DEL', f.a.cid, f.a.sandbox.path, conf(h2))
      assert.equal(d.code, 0, d.stdout)
    }
    const retried = await Promise.all(killedFailures.map((f) => h2.cni('ADD', f.a.cid, f.a.sandbox.path, conf(h2))))
    assert.deepEqual(
      retried.filter((o) => o.code !== 0).map((o) => o.stdout),
      [],
      'the retried ADDs succeed'
    )
    const answered = [
      ...outcomes.filter((o) => o.code === 0).map((o) => addressOf(o)!),
      ...retried.map((o) => addressOf(o)!)
    ]
    assert.equal(answered.length, storm.length)
    assert.equal(new Set(answered).size, answered.length, 'no address twice in the cluster')
    // Nothing lost: every sandbox has the address it was answered, and its host has its record.
    for (const [i, a] of storm.entries()) {
      const o = outcomes[i]!.code === 0 ? outcomes[i]! : retried[killedFailures.findIndex((f) => f.a === a)]!
      const inside = sh(inNs(a.sandbox.name, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']))
      assert.ok(inside.includes(`${addressOf(o)!}/`), `${a.cid} holds ${addressOf(o)}`)
    }
    for (const host of c.hosts) {
      assert.equal(records(host, 'endpoints'), PER_HOST, `${host.name}: ${PER_HOST} endpoints`)
    }

    const dels = await delAll(storm)
    assert.deepEqual(
      dels.filter((o) => o.code !== 0).map((o) => o.stdout),
      [],
      'no DEL failed'
    )
    assert.deepEqual(await blocks(), [], 'every block released')
    console.log(`# ${killedFailures.length} of h2's ${PER_HOST} ADDs were cut by the kill and tried again`)
  })
})
