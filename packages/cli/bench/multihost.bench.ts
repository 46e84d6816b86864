/**
 * `pnpm bench:multihost`: what being a cluster host costs, on this machine's kernel with a real
 * etcd in an underlay namespace (the multi-host tests' harness, packages/cli/test/multihost).
 *
 * - CNI ADD and DEL latency (median, p95), run by the SEA in a host namespace and handed to that
 *   host's daemon: a one-host daemon (file store, no etcd) against cluster daemons (file store,
 *   and etcd store) in the same run. Target: the cluster at most 1.2× the one-host daemon: an ADD
 *   inside the host's block asks etcd nothing (file store).
 * - Block claims: the Cluster port's create-if-absent claim on etcd (median, p95), and the ADD
 *   that has to claim one (the first on a host) against the ADDs that do not.
 * - The time from a sandbox's ADD on one host to its first ping reply from another host (a sandbox
 *   there pinging every 10 ms): in a block the other host already routes, and in a block claimed
 *   by that ADD (the other host learns it through its watch).
 *
 * RUNS=60 by default (`RUNS=100 pnpm bench:multihost`). Everything is removed at the end.
 */
import { spawn } from 'node:child_process'
import * as E from 'fp-ts/lib/Either.js'
import { systemClock, type Block, type ClusterNetworkName, type HostName, type Subnet } from '@isthmus/core'
import { uniquePrefix } from '@isthmus/testkit'
import { openCluster, clusterSettings } from '@isthmus/wiring'
import { addressOf, buildSea, inNs, startCluster, type TestCluster, type TestHost } from '../test/multihost/cluster.js'

const RUNS = Number(process.env['RUNS'] ?? 60)
const prefix = uniquePrefix('imb')

const quantile = (xs: ReadonlyArray<number>, q: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN
}
const med = (xs: ReadonlyArray<number>) => quantile(xs, 0.5)
const p95 = (xs: ReadonlyArray<number>) => quantile(xs, 0.95)
const ms = (x: number) => `${x.toFixed(1)} ms`

const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd()
    )
    .join('\n')
}

/** Sequential ADD then DEL of fresh sandboxes on `host`, `RUNS` times; wall times. */
const addDel = async (c: TestCluster, host: TestHost, tag: string, conf: Record<string, unknown>) => {
  const add: number[] = []
  const del: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const sb = c.sandbox(`${tag}${i}`)
    const cid = `${prefix}-${tag}-${i}`
    const a = await host.cni('ADD', cid, sb.path, conf)
    if (a.code !== 0) throw new Error(`ADD on ${host.name}: ${a.stdout}`)
    add.push(a.ms)
    const d = await host.cni('DEL', cid, sb.path, conf)
    if (d.code !== 0) throw new Error(`DEL on ${host.name}: ${d.stdout}`)
    del.push(d.ms)
  }
  return { add, del }
}

/** Time from `start` until `ns` gets its first echo reply from `address` (pinging every 10 ms). */
const firstReply = (ns: string, address: string, start: number): Promise<number> =>
  new Promise((resolve, reject) => {
    const [cmd, ...args] = inNs(ns, ['/bin/busybox', 'ping', '-i', '0.01', '-c', '1000', '-W', '1', address])
    const p = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'ignore'] })
    let done = false
    p.stdout.setEncoding('utf8')
    p.stdout.on('data', (d: string) => {
      if (!done && d.includes('bytes from')) {
        done = true
        resolve(Date.now() - start)
        p.kill('SIGKILL')
      }
    })
    p.on('exit', () => {
      if (!done) reject(new Error(`no reply from ${address} in ${ns}`))
    })
  })

const main = async (): Promise<void> => {
  buildSea()
  // h1: one-host daemon; h2: cluster, file store; h3: cluster, etcd store; h4: the other host that pings.
  const c = await startCluster(prefix, {
    hosts: 4,
    joinRoot: true,
    leaseTtl: 10,
    perHost: [{ cluster: false }, { store: 'file' }, { store: 'etcd' }, { store: 'file' }]
  })
  try {
    const [h1, h2, h3, h4] = c.hosts as [TestHost, TestHost, TestHost, TestHost]
    const o = c.underlay.octet
    const net = `${prefix}-net`
    const clusterConf = (h: TestHost) => c.conf(h, net, { ipam: { ranges: [[{ subnet: `10.${o}.64.0/20` }]] } })
    const plainConf = {
      ...c.conf(h1, `${prefix}-one`, { ipam: { ranges: [[{ subnet: `10.${o}.128.0/20` }]] } }),
      cluster: undefined
    }
    // The first ADD of each: networks made, blocks claimed (also timed, below).
    const firstOn = async (h: TestHost, conf: Record<string, unknown>) => {
      const sb = c.sandbox(`first${h.name}`)
      const r = await h.cni('ADD', `${prefix}-first-${h.name}`, sb.path, conf)
      if (r.code !== 0) throw new Error(`first ADD on ${h.name}: ${r.stdout}`)
      return { ms: r.ms, ns: sb.name, address: addressOf(r)! }
    }
    await firstOn(h1, plainConf)
    const first2 = await firstOn(h2, clusterConf(h2))
    const first3 = await firstOn(h3, clusterConf(h3))
    const pinger = await firstOn(h4, clusterConf(h4))

    const one = await addDel(c, h1, 'o', plainConf)
    const file = await addDel(c, h2, 'f', clusterConf(h2))
    const etcd = await addDel(c, h3, 'e', clusterConf(h3))

    // Block claims on the port itself, from the root namespace (joined to the underlay).
    const settings = clusterSettings(
      { cluster: c.name, etcdEndpoints: c.etcd.endpoint, hostName: 'bench' },
      {},
      { underlay: false }
    )
    if (E.isLeft(settings) || settings.right === undefined) throw new Error(JSON.stringify(settings))
    const opened = await openCluster(settings.right)()
    if (E.isLeft(opened)) throw new Error(JSON.stringify(opened.left))
    const cluster = opened.right
    const claims: number[] = []
    for (let i = 0; i < RUNS; i++) {
      const block: Block = {
        network: net as ClusterNetworkName,
        cidr: `10.${o}.${80 + Math.floor(i / 4)}.${(i % 4) * 64}/26` as Subnet,
        host: 'bench' as HostName,
        claimedAt: systemClock.now().toISOString()
      }
      const t = performance.now()
      const r = await cluster.blocks.claim(block)()
      claims.push(performance.now() - t)
      if (E.isLeft(r) || !r.right) throw new Error(`claim ${block.cidr}: ${JSON.stringify(r)}`)
      await cluster.blocks.release(block.network, block.cidr, block.host)()
    }
    await cluster.close()

    // ADD on h2 → first reply from a sandbox on h4: in h2's block (routed on h4 already), and the
    // first ADD of a fresh host (h3's etcd-store daemon claims nothing new: use a new network).
    const reach: number[] = []
    for (let i = 0; i < Math.min(RUNS, 20); i++) {
      const sb = c.sandbox(`r${i}`)
      const t = Date.now()
      const r = await h2.cni('ADD', `${prefix}-r-${i}`, sb.path, clusterConf(h2))
      if (r.code !== 0) throw new Error(`ADD on h2: ${r.stdout}`)
      reach.push(await firstReply(pinger.ns, addressOf(r)!, t))
    }
    const fresh: number[] = []
    for (let i = 0; i < Math.min(RUNS, 10); i++) {
      // A network of its own per round: the ADD defines it and claims its first block; h4 holds a sandbox on it first.
      const n = `${prefix}-n${i}`
      const conf = (h: TestHost) => c.conf(h, n, { ipam: { ranges: [[{ subnet: `10.${o}.${160 + i}.0/24` }]] } })
      const there = c.sandbox(`nt${i}`)
      const p = await h4.cni('ADD', `${prefix}-nt-${i}`, there.path, conf(h4))
      if (p.code !== 0) throw new Error(`ADD on h4: ${p.stdout}`)
      const sb = c.sandbox(`nh${i}`)
      const t = Date.now()
      const r = await h2.cni('ADD', `${prefix}-nh-${i}`, sb.path, conf(h2))
      if (r.code !== 0) throw new Error(`ADD on h2: ${r.stdout}`)
      fresh.push(await firstReply(there.name, addressOf(r)!, t))
    }

    const ratio = (xs: ReadonlyArray<number>, base: ReadonlyArray<number>) => `${(med(xs) / med(base)).toFixed(2)}×`
    console.log(`\nmulti-host bench: ${RUNS} sequential ADD+DEL per daemon, SEA handing off to the host's daemon\n`)
    console.log(
      table([
        ['daemon', 'ADD median', 'ADD p95', 'DEL median', 'DEL p95', 'ADD ratio', 'DEL ratio'],
        [
          'one host (file store, no etcd)',
          ms(med(one.add)),
          ms(p95(one.add)),
          ms(med(one.del)),
          ms(p95(one.del)),
          '1.00×',
          '1.00×'
        ],
        [
          'cluster, file store',
          ms(med(file.add)),
          ms(p95(file.add)),
          ms(med(file.del)),
          ms(p95(file.del)),
          ratio(file.add, one.add),
          ratio(file.del, one.del)
        ],
        [
          'cluster, etcd store',
          ms(med(etcd.add)),
          ms(p95(etcd.add)),
          ms(med(etcd.del)),
          ms(p95(etcd.del)),
          ratio(etcd.add, one.add),
          ratio(etcd.del, one.del)
        ]
      ])
    )
    console.log('')
    console.log(
      table([
        ['measure', 'median', 'p95', 'n'],
        ['block claim (etcd transaction, the port)', ms(med(claims)), ms(p95(claims)), String(claims.length)],
        ['first ADD on a cluster host (claims its block), file store', ms(first2.ms), '', '1'],
        ['first ADD on a cluster host (claims its block), etcd store', ms(first3.ms), '', '1'],
        ['ADD on h2 → first reply on h4 (block already routed)', ms(med(reach)), ms(p95(reach)), String(reach.length)],
        [
          'ADD on h2 → first reply on h4 (block claimed by that ADD)',
          ms(med(fresh)),
          ms(p95(fresh)),
          String(fresh.length)
        ]
      ])
    )
    const target = med(file.add) / med(one.add)
    console.log(
      `\ntarget: cluster (file store) ADD at most 1.2× the one-host daemon: ${target <= 1.2 ? 'met' : 'NOT met'} (${target.toFixed(2)}×)`
    )
  } finally {
    await c.cleanup()
  }
}

main().catch((e: unknown) => {
  console.error(e)
  process.exitCode = 1
})
