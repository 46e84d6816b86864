/**
 * The VXLAN overlay on the real kernel: "hosts" are network namespaces on an underlay bridge
 * (testkit's makeUnderlay), each running its own linuxDataplane and linuxOverlay in a process
 * inside it (overlayHost.ts), as each host's daemon would. Each host has the cluster network's
 * bridge with the same (anycast) gateway, made by ensureNetwork, and a container namespace
 * attached by ensureEndpoint/place, with an address in the host's own block of one /24.
 *
 * FORWARD's policy is DROP in every host (as dockerd leaves it), so traffic crosses only because
 * isthmus's own rules let it.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import { execFileSync } from 'node:child_process'
import {
  CLUSTER_OPTION,
  type HostName,
  type IpAddress,
  type MacAddress,
  type Network as NetworkT,
  type OverlayPeer,
  type OverlaySpec,
  type Subnet,
  type Vtep
} from '@isthmus/core'
import { bridgeMac, overlayDeviceName } from '@isthmus/dataplane-linux'
// testkit depends on this package: a relative import keeps the workspace free of a cycle.
import { run, uniquePrefix } from '../../testkit/src/index.js'
import { makeUnderlay, type Underlay } from '../../testkit/src/underlay.js'
import { call, endpoint, network, requireRoot, Scope, serveIn } from './helpers.js'
import { startOverlayHost, type OverlayHost } from './overlayHost.js'

const VNI = 0x1f00d
/** The device name of a VNI (a test's VNIs are valid). */
const deviceOf = (vni: number): string => {
  const name = overlayDeviceName(vni)
  if (typeof name !== 'string') throw new Error(`bad test VNI ${vni}`)
  return name
}
const DEV = deviceOf(VNI)
const BRIDGE = 'isthbr0'
const MTU = 1450

/** One host of a test cluster: its process, its network record, its container and its block. */
interface Member {
  readonly host: OverlayHost
  readonly network: NetworkT
  readonly spec: OverlaySpec
  readonly vtep: Vtep
  readonly name: HostName
  readonly block: Subnet
  readonly container: string
  readonly address: string
}

interface Cluster {
  readonly underlay: Underlay
  readonly members: ReadonlyArray<Member>
  readonly subnet: string
  readonly gateway: string
  /** `n`'s peers: every other member with its block. */
  readonly peersOf: (n: number) => ReadonlyArray<OverlayPeer>
  readonly teardown: () => Promise<void>
}

const peerOf = (m: Member, blocks: ReadonlyArray<string> = [m.block]): OverlayPeer => ({
  host: m.name,
  underlay: m.vtep.underlay,
  vtepMac: m.vtep.mac,
  blocks: blocks as ReadonlyArray<Subnet>
})

/**
 * An underlay of `count` hosts, each with the cluster network (10.<octet>.1.0/24, gateway .1,
 * MTU 1450), its overlay ensured, a container at .<64(n-1)+10> in its block .<64(n-1)>/26.
 */
const makeCluster = async (count: number, scope: Scope): Promise<Cluster> => {
  const prefix = uniquePrefix('ovl')
  const underlay = await makeUnderlay(prefix, count)
  const containers: string[] = []
  const hosts: OverlayHost[] = []
  const teardown = async (): Promise<void> => {
    await scope.cleanup()
    await Promise.all(hosts.map((h) => h.stop()))
    for (const c of containers) await run(['ip', 'netns', 'del', c])
    await underlay.remove()
  }
  try {
    const net = `10.${underlay.octet}.1`
    const subnet = `${net}.0/24`
    const gateway = `${net}.1`
    const members: Member[] = []
    for (const h of underlay.hosts) {
      // as dockerd leaves it: only what isthmus's chains accept is forwarded
      await mustIn(underlay, h.index, ['iptables', '-P', 'FORWARD', 'DROP'])
      const host = await startOverlayHost(h.netns, h.address, underlay.inHost(h, []))
      hosts.push(host)
      const record: NetworkT = {
        ...network({ id: `blue-${prefix}-${h.index}`, bridge: BRIDGE, v4: { subnet, gateway }, mtu: MTU }),
        options: { [CLUSTER_OPTION]: 'blue' }
      }
      await host.ensureNetwork(record)
      const vtep = await host.vtep()
      const spec: OverlaySpec = { network: record, vni: VNI, vtep }
      await host.ensure(spec)
      const base = 64 * (h.index - 1)
      const container = `${prefix}-c${h.index}`
      execFileSync('ip', ['netns', 'add', container])
      containers.push(container)
      const address = `${net}.${base + 10}`
      const ep = endpoint({ id: `ep-${prefix}-${h.index}`, network: record, v4: `${address}/24` })
      await host.attach(record, ep, `/var/run/netns/${container}`)
      members.push({
        host,
        network: record,
        spec,
        vtep,
        name: `host${h.index}` as HostName,
        block: `${net}.${base}/26` as Subnet,
        container,
        address
      })
    }
    const peersOf = (n: number): ReadonlyArray<OverlayPeer> =>
      members.filter((_, i) => i !== n - 1).map((m) => peerOf(m))
    return { underlay, members, subnet, gateway, peersOf, teardown }
  } catch (e) {
    await teardown()
    throw e
  }
}

const mustIn = async (u: Underlay, host: number, argv: ReadonlyArray<string>): Promise<string> => {
  const r = await u.run(host, argv)
  if (r.code !== 0) throw new Error(`${argv.join(' ')} in host ${host}: ${r.stderr}`)
  return r.stdout
}

const json = async <A>(u: Underlay, host: number, argv: ReadonlyArray<string>): Promise<A> =>
  JSON.parse(await mustIn(u, host, argv)) as A

/** The overlay device's neighbour, FDB and route entries in a host, as `ip -json`/`bridge -json` print them. */
const entriesIn = async (u: Underlay, host: number) => ({
  neigh: await json<Array<{ dst: string; lladdr: string; state: string[] }>>(u, host, [
    'ip',
    '-json',
    'neigh',
    'show',
    'dev',
    DEV
  ]),
  fdb: await json<Array<{ mac: string; dst?: string; state?: string }>>(u, host, [
    'bridge',
    '-json',
    'fdb',
    'show',
    'dev',
    DEV
  ]),
  routes: await json<Array<{ dst: string; gateway: string; prefsrc?: string; flags?: string[] }>>(u, host, [
    'ip',
    '-json',
    'route',
    'show',
    'dev',
    DEV
  ])
})

const sysctlIn = async (u: Underlay, host: number, path: string): Promise<string> =>
  (await mustIn(u, host, ['cat', `/proc/sys/${path}`])).trim()

/** One ping from a container: the reply's round trip (ms), or undefined when none came. */
const ping = async (container: string, address: string, waitS = 2): Promise<number | undefined> => {
  const r = await run([
    'ip',
    'netns',
    'exec',
    container,
    '/bin/busybox',
    'ping',
    '-c',
    '1',
    '-W',
    String(waitS),
    address
  ])
  const m = /time=([\d.]+) ms/.exec(r.stdout)
  return r.code === 0 && m?.[1] !== undefined ? Number(m[1]) : undefined
}

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? NaN
}

describe('overlay: two hosts (real kernel)', () => {
  const scope = new Scope()
  let c: Cluster
  let one: Member
  let two: Member
  before(async () => {
    requireRoot()
    c = await makeCluster(2, scope)
    one = c.members[0]!
    two = c.members[1]!
    await one.host.setPeers(one.spec, c.peersOf(1))
    await two.host.setPeers(two.spec, c.peersOf(2))
  })
  after(async () => {
    await c?.teardown()
  })

  it('makes the VXLAN device as the network needs it, and lets the bridge answer ARP for remote blocks', async () => {
    const [l] = await json<
      Array<{
        ifname: string
        mtu: number
        address: string
        flags: string[]
        ifalias?: string
        linkinfo: { info_kind: string; info_data: Record<string, unknown> }
      }>
    >(c.underlay, 1, ['ip', '-json', '-details', 'link', 'show', 'dev', DEV])
    assert.ok(l !== undefined, `${DEV} exists`)
    assert.equal(DEV.length <= 15, true)
    assert.equal(l.linkinfo.info_kind, 'vxlan')
    assert.equal(l.linkinfo.info_data['id'], VNI)
    assert.equal(l.linkinfo.info_data['port'], 4789)
    assert.equal(l.linkinfo.info_data['local'], one.vtep.underlay)
    assert.equal(l.linkinfo.info_data['link'], 'ul0')
    assert.equal(l.linkinfo.info_data['learning'], false)
    assert.equal(l.address, one.vtep.mac)
    assert.equal(l.mtu, MTU)
    assert.equal(l.ifalias, `isthmus:overlay:${one.network.id}`)
    assert.ok(l.flags.includes('UP'), 'the device is up')
    const [br] = await json<Array<{ mtu: number; address: string }>>(c.underlay, 1, [
      'ip',
      '-json',
      'link',
      'show',
      'dev',
      BRIDGE
    ])
    assert.equal(br?.mtu, MTU)
    assert.equal(br?.address, bridgeMac(one.network))
    assert.equal(await sysctlIn(c.underlay, 1, `net/ipv4/conf/${BRIDGE}/proxy_arp`), '1')
    assert.equal(await sysctlIn(c.underlay, 1, `net/ipv4/neigh/${BRIDGE}/proxy_delay`), '0')
    assert.equal(await sysctlIn(c.underlay, 1, `net/ipv4/conf/${BRIDGE}/forwarding`), '1')
    assert.equal(await sysctlIn(c.underlay, 1, `net/ipv4/conf/${DEV}/forwarding`), '1')
    // The VTEP MAC is derived from the underlay address: locally administered, unicast, per host.
    assert.match(one.vtep.mac, /^02:/)
    assert.notEqual(one.vtep.mac, two.vtep.mac)
  })

  it('pings across the hosts both ways; the far side sees the sender itself, not a masquerade', async (t) => {
    const first = await ping(one.container, two.address)
    assert.ok(first !== undefined, `${one.address} → ${two.address}`)
    assert.ok((await ping(two.container, one.address)) !== undefined, `${two.address} → ${one.address}`)
    const steady: number[] = []
    for (let i = 0; i < 10; i++) steady.push((await ping(one.container, two.address)) ?? NaN)
    t.diagnostic(`first ping (ARP + tunnel) ${first} ms; steady median ${median(steady)} ms`)
    await serveIn(scope, two.container, 7001, 'two')
    assert.equal(await call(one.container, two.address, 7001), `two ${one.address}`)
    // and the host's own gateway address is the same on both hosts
    assert.ok((await ping(one.container, c.gateway)) !== undefined, 'host 1 gateway')
    assert.ok((await ping(two.container, c.gateway)) !== undefined, 'host 2 gateway')
  })

  it('writes the firewall rules a cluster network needs, in the text iptables-save prints (a second ensure writes nothing)', async () => {
    const generation = async (): Promise<string> =>
      (await mustIn(c.underlay, 1, ['iptables-save']))
        .split('\n')
        .filter((l) => l.includes('isthmus:gen:'))
        .join('\n')
    const was = await generation()
    await one.host.ensureNetwork(one.network)
    assert.equal(await generation(), was)
    const rules = (await mustIn(c.underlay, 1, ['iptables-save']))
      .split('\n')
      .filter((l) => l.includes(`isthmus:net:${one.network.id}`))
    const has = (re: RegExp): boolean => rules.some((r) => re.test(r))
    assert.ok(
      has(new RegExp(`-s ${c.subnet.replace(/\./g, '\\.')} -i istx\\+ -o ${BRIDGE} .* -j ACCEPT`)),
      rules.join('\n')
    )
    assert.ok(
      has(
        new RegExp(
          `-s ${c.subnet.replace(/\./g, '\\.')} ! -d ${c.subnet.replace(/\./g, '\\.')} ! -o ${BRIDGE} .*MASQUERADE`
        )
      ),
      rules.join('\n')
    )
    // Only the network's own subnet crosses into a bridge: host 1's own process (its underlay
    // address as the source) is not forwarded into host 2's containers, as a host's traffic is not
    // forwarded into another network's containers on one host.
    const fromHost = await c.underlay.run(1, ['/bin/busybox', 'ping', '-c', '1', '-W', '1', two.address])
    assert.notEqual(fromHost.code, 0, fromHost.stdout)
  })

  it('keeps exactly one neighbour and one FDB entry per peer and one route per block: 3 peers × 2 blocks', async () => {
    const net = `10.${c.underlay.octet}.1`
    const fake = (n: number, mac: string, blocks: ReadonlyArray<string>): OverlayPeer => ({
      host: `fake${n}` as HostName,
      underlay: `10.${c.underlay.octet}.0.${50 + n}` as IpAddress,
      vtepMac: mac as MacAddress,
      blocks: blocks as ReadonlyArray<Subnet>
    })
    const peers = [
      peerOf(two, [`${net}.64/27`, `${net}.96/27`]),
      fake(1, '02:00:00:00:00:01', [`${net}.128/27`, `${net}.160/27`]),
      fake(2, '02:00:00:00:00:02', [`${net}.192/27`, `${net}.224/27`]),
      // left out: this host itself, and a block outside the network's subnet
      peerOf(one, [`${net}.0/26`]),
      fake(3, '02:00:00:00:00:03', ['0.0.0.0/0'])
    ]
    await one.host.setPeers(one.spec, peers)
    const e = await entriesIn(c.underlay, 1)
    assert.equal(e.neigh.length, 4, JSON.stringify(e.neigh)) // fake3 has a neighbour and an FDB entry, no route
    assert.equal(e.fdb.length, 4)
    assert.equal(e.routes.length, 6, JSON.stringify(e.routes))
    // without the peer whose only block is outside: exactly 3 + 3 + 6
    await one.host.setPeers(one.spec, peers.slice(0, 3))
    const exact = await entriesIn(c.underlay, 1)
    assert.deepEqual(
      exact.neigh.map((n) => [n.dst, n.lladdr, n.state.join()]).sort(),
      [
        [two.vtep.underlay, two.vtep.mac, 'PERMANENT'],
        [`10.${c.underlay.octet}.0.51`, '02:00:00:00:00:01', 'PERMANENT'],
        [`10.${c.underlay.octet}.0.52`, '02:00:00:00:00:02', 'PERMANENT']
      ].sort()
    )
    assert.deepEqual(
      exact.fdb.map((f) => [f.mac, f.dst, f.state]).sort(),
      [
        [two.vtep.mac, two.vtep.underlay, 'permanent'],
        ['02:00:00:00:00:01', `10.${c.underlay.octet}.0.51`, 'permanent'],
        ['02:00:00:00:00:02', `10.${c.underlay.octet}.0.52`, 'permanent']
      ].sort()
    )
    assert.deepEqual(
      exact.routes.map((r) => [r.dst, r.gateway, r.prefsrc, (r.flags ?? []).join()]).sort(),
      [
        [`${net}.64/27`, two.vtep.underlay, one.vtep.underlay, 'onlink'],
        [`${net}.96/27`, two.vtep.underlay, one.vtep.underlay, 'onlink'],
        [`${net}.128/27`, `10.${c.underlay.octet}.0.51`, one.vtep.underlay, 'onlink'],
        [`${net}.160/27`, `10.${c.underlay.octet}.0.51`, one.vtep.underlay, 'onlink'],
        [`${net}.192/27`, `10.${c.underlay.octet}.0.52`, one.vtep.underlay, 'onlink'],
        [`${net}.224/27`, `10.${c.underlay.octet}.0.52`, one.vtep.underlay, 'onlink']
      ].sort()
    )
    assert.ok((await ping(one.container, two.address)) !== undefined, 'host 2 is reached through its two /27s')

    // the same peers again: nothing changes; a peer with a new address and MAC is replaced whole
    await one.host.setPeers(one.spec, peers.slice(0, 3))
    assert.deepEqual(await entriesIn(c.underlay, 1), exact)
    const moved = fake(2, '02:00:00:00:00:22', [`${net}.192/27`])
    await one.host.setPeers(one.spec, [
      ...peers.slice(0, 2),
      { ...moved, underlay: `10.${c.underlay.octet}.0.62` as IpAddress }
    ])
    const after2 = await entriesIn(c.underlay, 1)
    assert.equal(after2.neigh.length, 3)
    assert.equal(after2.fdb.length, 3)
    assert.equal(after2.routes.length, 5)
    assert.ok(!after2.neigh.some((n) => n.dst.endsWith('.0.52')), 'the old neighbour is gone')
    assert.ok(!after2.fdb.some((f) => f.mac === '02:00:00:00:00:02'), 'the old FDB entry is gone')
    assert.ok(
      after2.routes.some((r) => r.dst === `${net}.192/27` && r.gateway === `10.${c.underlay.octet}.0.62`),
      JSON.stringify(after2.routes)
    )

    // back to the real peer and its one block
    await one.host.setPeers(one.spec, c.peersOf(1))
    const back = await entriesIn(c.underlay, 1)
    assert.deepEqual([back.neigh.length, back.fdb.length, back.routes.length], [1, 1, 1])
    assert.ok((await ping(one.container, two.address)) !== undefined, `${one.address} → ${two.address}`)
  })

  it('ensure is idempotent, repairs in place what it can, re-creates what it cannot, and refuses a device not its own', async () => {
    const index = async (): Promise<number> =>
      (await json<Array<{ ifindex: number }>>(c.underlay, 1, ['ip', '-json', 'link', 'show', 'dev', DEV]))[0]!.ifindex
    const before = await index()
    await one.host.ensure(one.spec)
    assert.equal(await index(), before, 'unchanged')
    await mustIn(c.underlay, 1, ['ip', 'link', 'set', 'dev', DEV, 'down', 'mtu', '1400'])
    await one.host.ensure(one.spec)
    assert.equal(await index(), before, 'repaired in place')
    const [l] = await json<Array<{ mtu: number; flags: string[] }>>(c.underlay, 1, [
      'ip',
      '-json',
      'link',
      'show',
      'dev',
      DEV
    ])
    assert.equal(l?.mtu, MTU)
    assert.ok(l?.flags.includes('UP'), 'up again')
    // learning on: a device of other fixed settings is made anew (and setPeers programs it again)
    await mustIn(c.underlay, 1, ['ip', 'link', 'set', 'dev', DEV, 'type', 'vxlan', 'learning'])
    await one.host.ensure(one.spec)
    assert.notEqual(await index(), before, 're-created')
    const [v] = await json<Array<{ linkinfo: { info_data: { learning: boolean } } }>>(c.underlay, 1, [
      'ip',
      '-json',
      '-details',
      'link',
      'show',
      'dev',
      DEV
    ])
    assert.equal(v?.linkinfo.info_data.learning, false)
    await one.host.setPeers(one.spec, c.peersOf(1))
    assert.ok((await ping(one.container, two.address)) !== undefined, `${one.address} → ${two.address}`)

    // a device of the same name that isthmus did not make is left alone
    const other = deviceOf(0x99)
    await mustIn(c.underlay, 1, ['ip', 'link', 'add', other, 'type', 'bridge'])
    const r = await one.host.raw('ensure', { spec: { ...one.spec, vni: 0x99 } })
    assert.ok(!r.ok && r.tag === 'InvalidConfig', JSON.stringify(r))
    assert.ok(!r.ok && r.error.includes('not an isthmus overlay device'), JSON.stringify(r))
    const removed = await one.host.raw('remove', { spec: { ...one.spec, vni: 0x99 } })
    assert.ok(removed.ok, JSON.stringify(removed))
    await mustIn(c.underlay, 1, ['ip', 'link', 'show', 'dev', other])
    await mustIn(c.underlay, 1, ['ip', 'link', 'del', 'dev', other])
  })

  it('fails with a sentence when the bridge is missing or the underlay address is not this host', async () => {
    const r = await one.host.raw('ensure', { spec: { ...one.spec, network: { ...one.network, bridge: 'nosuchbr' } } })
    assert.ok(!r.ok && r.tag === 'InvalidConfig' && r.error.includes('nosuchbr'), JSON.stringify(r))
    const wrong = await one.host.raw('ensure', {
      spec: { ...one.spec, vtep: { ...one.vtep, underlay: `10.${c.underlay.octet}.0.99` } }
    })
    assert.ok(!wrong.ok && wrong.error.includes('on no device of this host'), JSON.stringify(wrong))
    const unready = await one.host.raw('setPeers', { spec: { ...one.spec, vni: 0x77 }, peers: [] })
    assert.ok(
      !unready.ok && unready.tag === 'InvalidConfig' && unready.error.includes('ensure the overlay'),
      JSON.stringify(unready)
    )
  })

  it('remove leaves nothing of the overlay, and succeeds again when there is nothing', async () => {
    await one.host.remove(one.spec)
    const links = await json<Array<{ ifname: string }>>(c.underlay, 1, ['ip', '-json', 'link', 'show'])
    assert.ok(!links.some((l) => l.ifname.startsWith('istx')), JSON.stringify(links.map((l) => l.ifname)))
    const routes = await json<Array<{ dst: string }>>(c.underlay, 1, ['ip', '-json', 'route', 'show'])
    assert.ok(!routes.some((r) => r.dst.endsWith('/26')), JSON.stringify(routes))
    assert.equal(await sysctlIn(c.underlay, 1, `net/ipv4/conf/${BRIDGE}/proxy_arp`), '0')
    // the kernel's default (neigh.default exists only in the initial namespace)
    assert.equal(await sysctlIn(c.underlay, 1, `net/ipv4/neigh/${BRIDGE}/proxy_delay`), '80')
    await one.host.remove(one.spec)
    assert.equal(await ping(one.container, two.address, 1), undefined)
    // and the network goes after it (the bridge's own removal is the dataplane's)
    await one.host.deleteNetwork(one.network)
    await one.host.remove(one.spec)
  })
})

describe('overlay: three hosts (real kernel)', () => {
  const scope = new Scope()
  let c: Cluster
  before(async () => {
    requireRoot()
    c = await makeCluster(3, scope)
    for (const [i, m] of c.members.entries()) await m.host.setPeers(m.spec, c.peersOf(i + 1))
  })
  after(async () => {
    await c?.teardown()
  })

  const pairs = (): Array<readonly [Member, Member]> =>
    c.members.flatMap((a) => c.members.filter((b) => b !== a).map((b) => [a, b] as const))

  it('every container pings every other, both ways', async () => {
    for (const [a, b] of pairs()) {
      assert.ok((await ping(a.container, b.address)) !== undefined, `${a.address} → ${b.address}`)
    }
  })

  it('a host left out of setPeers is unreachable and forgotten; listed again, reachable', async () => {
    const [one, two, three] = c.members as [Member, Member, Member]
    await one.host.setPeers(one.spec, [peerOf(three)])
    await three.host.setPeers(three.spec, [peerOf(one)])
    for (const n of [1, 3]) {
      const e = await entriesIn(c.underlay, n)
      assert.ok(!e.neigh.some((x) => x.dst === two.vtep.underlay), `host ${n} forgot host 2's neighbour`)
      assert.ok(!e.fdb.some((x) => x.mac === two.vtep.mac), `host ${n} forgot host 2's FDB entry`)
      assert.ok(!e.routes.some((x) => x.dst === two.block), `host ${n} forgot host 2's block`)
      assert.deepEqual([e.neigh.length, e.fdb.length, e.routes.length], [1, 1, 1])
    }
    assert.equal(await ping(one.container, two.address, 1), undefined)
    assert.equal(await ping(three.container, two.address, 1), undefined)
    assert.ok((await ping(one.container, three.address)) !== undefined, 'the others still reach each other')

    await one.host.setPeers(one.spec, c.peersOf(1))
    await three.host.setPeers(three.spec, c.peersOf(3))
    for (const [a, b] of pairs()) {
      assert.ok((await ping(a.container, b.address)) !== undefined, `${a.address} → ${b.address} again`)
    }
  })

  it('measures: first ping across (ARP + tunnel), steady RTT, setPeers with no change', async (t) => {
    const [one, , three] = c.members as [Member, Member, Member]
    // a fresh neighbour cache in the container: its first ping needs ARP (proxied by its bridge)
    await run(['ip', '-n', one.container, 'neigh', 'flush', 'all'])
    const first = await ping(one.container, three.address)
    const steady: number[] = []
    for (let i = 0; i < 10; i++) steady.push((await ping(one.container, three.address)) ?? NaN)
    const same: number[] = []
    for (let i = 0; i < 5; i++) same.push(await one.host.setPeers(one.spec, c.peersOf(1)))
    t.diagnostic(
      `first ping ${first} ms, steady median ${median(steady)} ms, setPeers unchanged median ${median(same).toFixed(1)} ms`
    )
    assert.ok(first !== undefined, 'the first ping is answered')
    assert.ok(
      steady.every((x) => !Number.isNaN(x)),
      steady.join(' ')
    )
  })
})
