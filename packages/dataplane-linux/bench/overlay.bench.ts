/**
 * Bench: the VXLAN overlay between two namespace hosts (testkit's makeUnderlay), each running its
 * linuxDataplane and linuxOverlay in a process inside it (test/overlayHost.ts).
 *
 *  - setPeers, timed inside the host process: 0 → 1 peer, 1 → 50 peers (each with one block: 50
 *    neighbours, 50 FDB entries, 50 routes), 50 unchanged (the two reads only), 50 → 1; and the same
 *    1 → 50 entries written one process per entry (`ip neigh replace`, `bridge fdb replace`,
 *    `ip route replace`), what a per-entry implementation would cost.
 *  - ping from a container on host 1 to one on host 2: the first ping after the container's and
 *    both bridges' neighbour caches are flushed (ARP answered by the bridge's proxy, then the
 *    tunnel), the same with the kernel's default proxy_delay, and the steady round trip; the round
 *    trip to the container's own gateway as the floor.
 *
 * Medians over ROUNDS (default 20). Root only; names `ovb-<hex>-*`, removed at the end (also on
 * failure).
 *
 * Usage: node --conditions=@isthmus/source --import tsx packages/dataplane-linux/bench/overlay.bench.ts
 */
import { execFileSync } from 'node:child_process'
import {
  CLUSTER_OPTION,
  type HostName,
  type IpAddress,
  type MacAddress,
  type Network,
  type OverlayPeer,
  type OverlaySpec,
  type Subnet
} from '@isthmus/core'
import { overlayDeviceName } from '@isthmus/dataplane-linux'
import { run, uniquePrefix } from '../../testkit/src/index.js'
import { makeUnderlay } from '../../testkit/src/underlay.js'
import { endpoint, network } from '../test/helpers.js'
import { startOverlayHost, type OverlayHost } from '../test/overlayHost.js'

const ROUNDS = Number(process.env['ROUNDS'] ?? 20)
const VNI = 0xbe7
const DEV = overlayDeviceName(VNI) as string
const BRIDGE = 'isthbr0'

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? NaN
}
const p95 = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.95) - 1)] ?? NaN
}

const pingMs = (container: string, address: string): number => {
  const out = execFileSync('ip', ['netns', 'exec', container, '/bin/busybox', 'ping', '-c', '1', '-W', '2', address], {
    encoding: 'utf8'
  })
  const m = /time=([\d.]+) ms/.exec(out)
  if (m?.[1] === undefined) throw new Error(`no reply from ${address}: ${out}`)
  return Number(m[1])
}

const main = async (): Promise<void> => {
  const prefix = uniquePrefix('ovb')
  const u = await makeUnderlay(prefix, 2)
  const hosts: OverlayHost[] = []
  const containers: string[] = []
  try {
    const net = `10.${u.octet}.1`
    const specs: OverlaySpec[] = []
    const addresses: string[] = []
    for (const h of u.hosts) {
      const host = await startOverlayHost(h.netns, h.address, u.inHost(h, []))
      hosts.push(host)
      const record: Network = {
        ...network({
          id: `bench-${prefix}-${h.index}`,
          bridge: BRIDGE,
          v4: { subnet: `${net}.0/24`, gateway: `${net}.1` },
          mtu: 1450
        }),
        options: { [CLUSTER_OPTION]: 'bench' }
      }
      await host.ensureNetwork(record)
      const spec: OverlaySpec = { network: record, vni: VNI, vtep: await host.vtep() }
      await host.ensure(spec)
      specs.push(spec)
      const container = `${prefix}-c${h.index}`
      execFileSync('ip', ['netns', 'add', container])
      containers.push(container)
      const address = `${net}.${64 * (h.index - 1) + 10}`
      addresses.push(address)
      await host.attach(
        record,
        endpoint({ id: `ep-${prefix}-${h.index}`, network: record, v4: `${address}/24` }),
        `/var/run/netns/${container}`
      )
    }
    const [one, two] = hosts as [OverlayHost, OverlayHost]
    const [s1, s2] = specs as [OverlaySpec, OverlaySpec]
    const [c1] = containers as [string, string]
    const real = (s: OverlaySpec, block: string): OverlayPeer => ({
      host: 'real' as HostName,
      underlay: s.vtep.underlay,
      vtepMac: s.vtep.mac,
      blocks: [block as Subnet]
    })
    // 49 peers that do not exist, each with one address of 10.<octet>.1.128/25 as its block (the entries
    // are what counts)
    const fakes: OverlayPeer[] = Array.from({ length: 49 }, (_, i) => ({
      host: `fake${i}` as HostName,
      underlay: `10.${u.octet}.0.${100 + i}` as IpAddress,
      vtepMac: `02:be:00:00:00:${(i + 1).toString(16).padStart(2, '0')}` as MacAddress,
      blocks: [`${net}.${128 + i}/32` as Subnet]
    }))
    const peer2 = real(s2, `${net}.64/26`)
    await two.setPeers(s2, [real(s1, `${net}.0/26`)])

    const t = { to1: [] as number[], to50: [] as number[], same50: [] as number[], back1: [] as number[] }
    for (let r = 0; r < ROUNDS; r++) {
      await one.setPeers(s1, [])
      t.to1.push(await one.setPeers(s1, [peer2]))
      t.to50.push(await one.setPeers(s1, [peer2, ...fakes]))
      t.same50.push(await one.setPeers(s1, [peer2, ...fakes]))
      t.back1.push(await one.setPeers(s1, [peer2]))
    }

    // The same 1 → 50 entries, one process per entry (`ip -n`/`bridge -n`: one exec each).
    const ns1 = u.hosts[0]?.netns ?? ''
    const perEntry: number[] = []
    for (let r = 0; r < Math.min(ROUNDS, 5); r++) {
      await one.setPeers(s1, [peer2])
      const started = performance.now()
      for (const p of fakes) {
        await run([
          'ip',
          '-n',
          ns1,
          'neigh',
          'replace',
          p.underlay,
          'lladdr',
          p.vtepMac,
          'dev',
          DEV,
          'nud',
          'permanent'
        ])
        await run([
          'bridge',
          '-n',
          ns1,
          'fdb',
          'replace',
          p.vtepMac,
          'dev',
          DEV,
          'dst',
          p.underlay,
          'self',
          'permanent'
        ])
        for (const b of p.blocks) {
          await run(['ip', '-n', ns1, 'route', 'replace', b, 'via', p.underlay, 'dev', DEV, 'onlink'])
        }
      }
      perEntry.push(performance.now() - started)
    }
    await one.setPeers(s1, [peer2])

    const first: number[] = []
    const steady: number[] = []
    const local: number[] = []
    for (let r = 0; r < ROUNDS; r++) {
      await run(['ip', '-n', c1, 'neigh', 'flush', 'all'])
      for (const h of [1, 2]) await run(u.inHost(h, ['ip', 'neigh', 'flush', 'dev', BRIDGE]))
      first.push(pingMs(c1, addresses[1] ?? ''))
      steady.push(pingMs(c1, addresses[1] ?? ''))
      local.push(pingMs(c1, `${net}.1`))
    }

    // The same first ping with the kernel's default proxy_delay (80: a proxied ARP answer is held
    // back a random time up to 0.8 s), then back to isthmus's 0.
    const delayed: number[] = []
    const delayPath = `/proc/sys/net/ipv4/neigh/${BRIDGE}/proxy_delay`
    await run(u.inHost(1, ['sh', '-c', `echo 80 > ${delayPath}`]))
    for (let r = 0; r < Math.min(ROUNDS, 10); r++) {
      await run(['ip', '-n', c1, 'neigh', 'flush', 'all'])
      delayed.push(pingMs(c1, addresses[1] ?? ''))
    }
    await one.ensure(s1)

    const row = (what: string, xs: ReadonlyArray<number>): string =>
      `| ${what} | ${median(xs).toFixed(2)} | ${p95(xs).toFixed(2)} |`
    const entries = fakes.length + 1
    console.log(`overlay bench: ${ROUNDS} rounds, 2 namespace hosts on a veth underlay, busybox ping`)
    console.log('| what | median ms | p95 ms |')
    console.log('|---|---|---|')
    console.log(row('setPeers 0 → 1 peer (3 entries)', t.to1))
    console.log(row(`setPeers 1 → ${entries} peers (${3 * entries} entries)`, t.to50))
    console.log(row(`setPeers ${entries} peers, unchanged`, t.same50))
    console.log(row(`setPeers ${entries} → 1 peer`, t.back1))
    console.log(row(`1 → ${entries} peers, one process per entry (${3 * fakes.length} processes)`, perEntry))
    console.log(row('first ping across (ARP via proxy + tunnel)', first))
    console.log(row('first ping across, proxy_delay left at the default 80', delayed))
    console.log(row('steady ping across', steady))
    console.log(row('ping to the own gateway (floor)', local))
  } finally {
    await Promise.all(hosts.map((h) => h.stop()))
    for (const c of containers) await run(['ip', 'netns', 'del', c])
    await u.remove()
  }
}

await main()
