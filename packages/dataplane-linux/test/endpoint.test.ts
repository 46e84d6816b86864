import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { execFileExec, linuxDataplane, type Exec } from '@isthmus/dataplane-linux'
import { dataplane, type ContainerId, type EndpointId, type IfName, type SandboxKey } from '@isthmus/core'
import { recordingLogger } from '@isthmus/core/testing'
import {
  call,
  endpoint,
  fails,
  link,
  linkNames,
  neighbour,
  network,
  ok,
  routes,
  Scope,
  serveIn,
  sh,
  withNetwork
} from './helpers.js'

const scope = new Scope()
const dp = linuxDataplane({ chainPrefix: scope.chainPrefix })
const eth0 = 'eth0' as IfName

const net = network({
  id: `ep-${scope.id}`,
  bridge: scope.bridge('e'),
  v4: { subnet: '10.240.20.0/24', gateway: '10.240.20.1' },
  v6: { subnet: 'fd00:240:20::/64', gateway: 'fd00:240:20::1' },
  mtu: 1400
})

describe('endpoints on a bridge (real kernel)', () => {
  withNetwork(scope, dp, net)

  it('connects two sandboxes over TCP, IPv4 and IPv6, and to the gateway', async () => {
    const a = scope.addNetns('a')
    const b = scope.addNetns('b')
    const epA = endpoint({
      id: `a-${scope.id}`,
      network: net,
      v4: '10.240.20.2/24',
      v6: 'fd00:240:20::2/64',
      mac: '02:42:0a:f0:14:02'
    })
    const epB = endpoint({ id: `b-${scope.id}`, network: net, v4: '10.240.20.3/24', v6: 'fd00:240:20::3/64' })
    // A is made in the host namespace and moved; B is made inside its sandbox (placement known).
    for (const [ep, ns, hint] of [
      [epA, a, false],
      [epB, b, true]
    ] as const) {
      const placement = { _tag: 'PluginMoves', sandbox: ns.path as SandboxKey, ifName: eth0 } as const
      const { mac } = await ok(dp.ensureEndpoint({ endpoint: ep, network: net }, hint ? placement : undefined))
      const placed = await ok(dp.place({ endpoint: ep, network: net }, placement))
      assert.equal(placed.ifName, 'eth0')
      assert.equal(placed.mac, mac)
      const inside = link('eth0', ns.name)
      assert.ok(inside !== undefined, 'eth0 exists in the sandbox')
      assert.equal(inside.address, mac)
      assert.equal(inside.mtu, 1400)
      assert.ok(inside.flags.includes('UP'))
      assert.deepEqual(
        (inside.addr_info ?? []).filter((x) => !x.local.startsWith('fe80')).map((x) => `${x.local}/${x.prefixlen}`),
        ep.addresses.map((x) => x.cidr)
      )
      const hostSide = link(ep.hostIfName)
      assert.equal(hostSide?.master, net.bridge)
      assert.equal(hostSide?.mtu, 1400)
      assert.ok(!linkNames().includes(ep.peerIfName), 'the sandbox end left the host namespace')
      assert.ok(routes(ns.name, 4).includes('default via 10.240.20.1 dev eth0'))
      assert.ok(routes(ns.name, 6).some((r) => r.startsWith('default via fd00:240:20::1 dev eth0')))
      assert.deepEqual([...linkNames(ns.name)].sort(), ['eth0', 'lo'], 'lo untouched, nothing else inside')
      // The host knows each address's MAC up front (bridged hairpin DNAT needs it; see veth.ts),
      // except for a CNI endpoint without published ports: a chained plugin may change its MAC.
      for (const a of ep.addresses) {
        assert.deepEqual(
          neighbour(a.cidr.split('/')[0] ?? '', net.bridge ?? ''),
          hint ? undefined : { lladdr: mac, state: ['PERMANENT'] }
        )
      }
    }
    assert.equal(link('eth0', a.name)?.address, '02:42:0a:f0:14:02', 'the requested MAC is the sandbox MAC')

    await serveIn(scope, b.name, 7000, 'B')
    assert.equal(await call(a.name, '10.240.20.3', 7000), 'B 10.240.20.2')
    assert.equal(await call(a.name, 'fd00:240:20::3', 7000), 'B fd00:240:20::2')

    // The gateway is the host's address on the bridge: a server on it is reachable from a sandbox.
    const { createServer } = await import('node:net')
    for (const gw of ['10.240.20.1', 'fd00:240:20::1']) {
      const server = createServer((s) => s.end(`GW ${s.remoteAddress ?? ''}`))
      await new Promise<void>((r) => server.listen(7001, gw, r))
      try {
        assert.equal(await call(b.name, gw, 7001), `GW ${gw === '10.240.20.1' ? '10.240.20.3' : 'fd00:240:20::3'}`)
      } finally {
        server.close()
      }
    }

    await ok(dp.deleteEndpoint({ endpoint: epA, network: net }))
    await ok(dp.deleteEndpoint({ endpoint: epB, network: net }))
    assert.equal(neighbour('10.240.20.2', net.bridge ?? ''), undefined, 'neighbour entries go with the endpoint')
    assert.equal(neighbour('fd00:240:20::3', net.bridge ?? ''), undefined)
    assert.ok(!linkNames().includes(epA.hostIfName))
    assert.deepEqual(linkNames(a.name), ['lo'], 'deleting the host end removed the sandbox end')
  })

  it('is idempotent: ensure twice gives one pair and one MAC, place twice converges, delete twice succeeds', async () => {
    const ns = scope.addNetns('idem')
    const ep = endpoint({
      id: `idem-${scope.id}`,
      network: net,
      v4: '10.240.20.10/24',
      routes: [{ dst: '10.240.120.0/24', gw: '10.240.20.1' }]
    })
    const spec = { endpoint: ep, network: net }
    const first = await ok(dp.ensureEndpoint(spec))
    const second = await ok(dp.ensureEndpoint(spec))
    assert.equal(second.mac, first.mac)
    assert.equal(link(ep.peerIfName)?.address, first.mac, 'a MAC is chosen when none was asked for')
    assert.match(first.mac, /^[0-9a-f][26ae]:/, 'locally administered, unicast')
    const placement = { _tag: 'PluginMoves', sandbox: ns.path as SandboxKey, ifName: eth0 } as const
    // Told the placement after the pair exists: it stays where it is and place moves it.
    assert.equal((await ok(dp.ensureEndpoint(spec, placement))).mac, first.mac)
    const p1 = await ok(dp.place(spec, placement))
    const p2 = await ok(dp.place(spec, placement))
    assert.deepEqual(p2, p1)
    assert.ok(routes(ns.name, 4).includes('10.240.120.0/24 via 10.240.20.1 dev eth0'), 'extra routes installed')
    // Asked again after the move, with the MAC the flows recorded.
    assert.equal((await ok(dp.ensureEndpoint({ endpoint: { ...ep, mac: p1.mac }, network: net }))).mac, p1.mac)
    await ok(dp.deleteEndpoint(spec))
    await ok(dp.deleteEndpoint(spec))
    assert.ok(!linkNames().includes(ep.hostIfName))
    assert.deepEqual(linkNames(ns.name), ['lo'])

    // Made inside the sandbox: ensured again before and after place, the same MAC every time.
    const made = await ok(dp.ensureEndpoint(spec, placement))
    assert.equal(link(ep.peerIfName, ns.name)?.address, made.mac, 'made inside the sandbox, under its own name')
    assert.ok(!linkNames().includes(ep.peerIfName))
    assert.equal((await ok(dp.ensureEndpoint(spec, placement))).mac, made.mac)
    assert.equal((await ok(dp.place(spec, placement))).mac, made.mac)
    assert.equal((await ok(dp.ensureEndpoint(spec, placement))).mac, made.mac)
    assert.equal((await ok(dp.place(spec, placement))).mac, made.mac)
    assert.deepEqual([...linkNames(ns.name)].sort(), ['eth0', 'lo'])
    await ok(dp.deleteEndpoint(spec))
    assert.deepEqual(linkNames(ns.name), ['lo'])
  })

  it('takes netns paths outside /var/run/netns (nsenter), such as /proc/<pid>/ns/net', async () => {
    const ns = scope.addNetns('proc')
    const holder = scope.process(
      (await import('node:child_process')).spawn('ip', ['netns', 'exec', ns.name, 'sleep', '30'], { stdio: 'ignore' })
    )
    await new Promise((r) => setTimeout(r, 100))
    const path = `/proc/${holder.pid ?? 0}/ns/net` as SandboxKey
    const ep = endpoint({ id: `proc-${scope.id}`, network: net, v4: '10.240.20.11/24' })
    const spec = { endpoint: ep, network: net }
    const placement = { _tag: 'PluginMoves', sandbox: path, ifName: 'net1' as IfName } as const
    await ok(dp.ensureEndpoint(spec, placement))
    const placed = await ok(dp.place(spec, placement))
    assert.equal(placed.sandbox, path)
    assert.equal(link('net1', ns.name)?.addr_info?.[0]?.local, '10.240.20.11')
    await ok(dp.deleteEndpoint(spec))
  })

  it('leaves the sandbox end in the host namespace for Docker (RuntimeMoves)', async () => {
    const ns = scope.addNetns('docker')
    const ep = endpoint({ id: `dock-${scope.id}`, network: net, v4: '10.240.20.12/24', mac: '02:42:0a:f0:14:0c' })
    const spec = { endpoint: ep, network: net }
    await ok(dp.ensureEndpoint(spec))
    const placed = await ok(dp.place(spec, { _tag: 'RuntimeMoves', dstPrefix: 'eth' }))
    assert.deepEqual(placed, { ifName: ep.peerIfName, mac: '02:42:0a:f0:14:0c' })
    assert.ok(linkNames().includes(ep.peerIfName), 'SrcName exists in the host namespace when Join returns')
    // What dockerd then does, and DeleteEndpoint arriving while the link is inside the container
    // (Leave) or back in the host namespace: both ends go.
    sh('ip', ['link', 'set', 'dev', ep.peerIfName, 'netns', ns.name, 'name', 'eth0'])
    await ok(dp.deleteEndpoint(spec))
    assert.deepEqual(linkNames(ns.name), ['lo'])
    assert.ok(!linkNames().includes(ep.hostIfName))
    assert.equal((await fails(dp.place(spec, { _tag: 'RuntimeMoves', dstPrefix: 'eth' })))._tag, 'NotFound')
  })

  it('with deferLinkRemoval, answers delete before the kernel is done, and the next endpoint on the bridge waits for it', async () => {
    // A second dataplane on the same chains stands for the daemon (`isthmus serve`).
    const daemon = linuxDataplane({ chainPrefix: scope.chainPrefix, deferLinkRemoval: true })
    const first = endpoint({ id: `def1-${scope.id}`, network: net, v4: '10.240.20.20/24', mac: '02:42:0a:f0:14:14' })
    const second = endpoint({ id: `def2-${scope.id}`, network: net, v4: '10.240.20.20/24', mac: '02:42:0a:f0:14:15' })
    await ok(daemon.ensureEndpoint({ endpoint: first, network: net }))
    await ok(daemon.place({ endpoint: first, network: net }, { _tag: 'RuntimeMoves', dstPrefix: 'eth' }))
    await ok(daemon.deleteEndpoint({ endpoint: first, network: net }))
    // The same address at once: ensureEndpoint waits for the first pair's removal (its neighbour
    // entry for that address) before it sets up the second.
    await ok(daemon.ensureEndpoint({ endpoint: second, network: net }))
    await ok(daemon.place({ endpoint: second, network: net }, { _tag: 'RuntimeMoves', dstPrefix: 'eth' }))
    await daemon.drain()
    assert.ok(
      !linkNames().includes(first.hostIfName) && !linkNames().includes(first.peerIfName),
      'the first pair is gone'
    )
    assert.ok(linkNames().includes(second.hostIfName) && linkNames().includes(second.peerIfName))
    assert.equal(
      neighbour('10.240.20.20', net.bridge ?? '')?.lladdr,
      '02:42:0a:f0:14:15',
      "the neighbour entry is the second endpoint's"
    )
    await ok(daemon.deleteEndpoint({ endpoint: second, network: net }))
    await daemon.drain()
    assert.ok(!linkNames().includes(second.hostIfName))
  })

  it("with deferLinkRemoval, a CNI endpoint waits for the removal of its own links, not for another pod's", async () => {
    // The first pair's removal is held back until the test lets it go.
    const cni = (id: string, v4: string) => {
      const e = endpoint({ id: `${id}-${scope.id}`, network: net, v4 })
      return { ...e, owner: { kind: 'container', containerId: e.id as string as ContainerId, ifName: eth0 } } as const
    }
    const first = cni('hold1', '10.240.20.40/24')
    const other = cni('hold2', '10.240.20.41/24')
    let release: () => void = () => undefined
    const held = new Promise<void>((r) => (release = r))
    const real = execFileExec()
    const holding: Exec = (file, args, input) =>
      (input ?? '').includes(`link del dev ${first.hostIfName}`)
        ? () => held.then(() => real(file, args, input)())
        : real(file, args, input)
    const daemon = linuxDataplane({ chainPrefix: scope.chainPrefix, deferLinkRemoval: true, exec: holding })
    const add = async (ep: typeof first, tag: string) => {
      const placement = { _tag: 'PluginMoves', sandbox: scope.addNetns(tag).path as SandboxKey, ifName: eth0 } as const
      await ok(daemon.ensureEndpoint({ endpoint: ep, network: net }, placement))
      await ok(daemon.place({ endpoint: ep, network: net }, placement))
    }
    const within = <A>(p: Promise<A>, ms: number): Promise<A | 'pending'> =>
      Promise.race([p, new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms))])
    try {
      await add(first, 'h1')
      await ok(daemon.deleteEndpoint({ endpoint: first, network: net }))
      // Another pod's ADD goes ahead while the first pair is still being removed...
      assert.equal(await within(add(other, 'h2'), 5000), undefined, 'the other ADD did not wait')
      assert.ok(linkNames().includes(first.hostIfName), 'the first removal is still held')
      // ...while the same attachment added again waits for its old links to go.
      const again = add(first, 'h3')
      assert.equal(await within(again, 300), 'pending')
      release()
      await again
      assert.ok(linkNames().includes(first.hostIfName) && linkNames().includes(other.hostIfName))
    } finally {
      release()
      for (const ep of [first, other]) await daemon.deleteEndpoint({ endpoint: ep, network: net })()
      await daemon.drain()
    }
    assert.ok(!linkNames().includes(first.hostIfName) && !linkNames().includes(other.hostIfName))
  })

  it('gives an internal network no way out: no default route in the sandbox', async () => {
    const internal = network({
      id: `int-${scope.id}`,
      bridge: scope.bridge('i'),
      v4: { subnet: '10.240.21.0/24', gateway: '10.240.21.1' },
      internal: true
    })
    await ok(dp.ensureNetwork(internal))
    const ns = scope.addNetns('int')
    const ep = endpoint({ id: `int-${scope.id}`, network: internal, v4: '10.240.21.2/24' })
    await ok(dp.ensureEndpoint({ endpoint: ep, network: internal }))
    await ok(
      dp.place(
        { endpoint: ep, network: internal },
        { _tag: 'PluginMoves', sandbox: ns.path as SandboxKey, ifName: eth0 }
      )
    )
    assert.deepEqual(routes(ns.name, 4), ['10.240.21.0/24 dev eth0 proto kernel scope link src 10.240.21.2'])
    assert.match(await call(ns.name, '192.0.2.1', 9), /^ERR ENETUNREACH/)
    await ok(dp.deleteEndpoint({ endpoint: ep, network: internal }))
    await ok(dp.deleteNetwork(internal))
  })

  it('marks each host end with its endpoint (alias), which the inventory reports; a link with no mark is looked at twice', async () => {
    const ep = endpoint({ id: `mark-${scope.id}`, network: net, v4: '10.240.20.30/24' })
    await ok(dp.ensureEndpoint({ endpoint: ep, network: net }))
    assert.equal(
      (JSON.parse(sh('ip', ['-json', 'link', 'show', 'dev', ep.hostIfName])) as ReadonlyArray<{ ifalias?: string }>)[0]
        ?.ifalias,
      `isthmus:endpoint:${ep.id}`
    )
    const inv = await ok(dp.inventory([net]))
    assert.deepEqual([inv.links.includes(ep.hostIfName), inv.endpoints?.[ep.hostIfName]], [true, ep.id])

    // Planted by hand, with no mark: reported without an endpoint, after a second look.
    const bare = scope.track(`istv${scope.id}b0000`)
    sh('ip', ['link', 'add', bare, 'master', net.bridge ?? '', 'type', 'veth', 'peer', 'name', `istc${scope.id}b0000`])
    // Marked while the inventory looks (a pair in the making): reported with its endpoint.
    const making = scope.track(`istv${scope.id}m0000`)
    sh('ip', [
      'link',
      'add',
      making,
      'master',
      net.bridge ?? '',
      'type',
      'veth',
      'peer',
      'name',
      `istc${scope.id}m0000`
    ])
    const started = Date.now()
    const looking = dp.inventory([net])()
    setTimeout(() => sh('ip', ['link', 'set', 'dev', making, 'alias', 'isthmus:endpoint:in-flight']), 300)
    const second = await ok(() => looking)
    assert.ok(Date.now() - started >= 1_000, 'looked again')
    assert.ok(second.links.includes(bare as IfName) && second.endpoints?.[bare] === undefined)
    assert.equal(second.endpoints?.[making], 'in-flight' as EndpointId)
    sh('ip', ['link', 'del', bare])
    sh('ip', ['link', 'del', making])
    await ok(dp.deleteEndpoint({ endpoint: ep, network: net }))
  })

  it('a deferred removal that fails is logged and tried again until the pair is gone; close tries once more and logs what is left', async () => {
    const real = execFileExec()
    let failures = 2
    const refusing =
      (who: string): Exec =>
      (file, args, input) =>
        args.includes('-batch') && (input ?? '').includes(`link del dev ${who}`) && failures-- > 0
          ? TE.left(dataplane([file, ...args], 1, 'RTNETLINK answers: Device or resource busy'))
          : real(file, args, input)
    const ep = endpoint({ id: `retry-${scope.id}`, network: net, v4: '10.240.20.31/24' })
    const log = recordingLogger()
    const daemon = linuxDataplane({
      chainPrefix: scope.chainPrefix,
      deferLinkRemoval: true,
      exec: refusing(ep.hostIfName),
      log: log.port
    })
    await ok(daemon.ensureEndpoint({ endpoint: ep, network: net }))
    await ok(daemon.deleteEndpoint({ endpoint: ep, network: net }))
    await daemon.drain()
    assert.ok(linkNames().includes(ep.hostIfName), 'the first removal failed')
    const until = Date.now() + 5_000
    while (!log.state.entries.some((e) => e.msg === 'background link removal done') && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100))
    }
    assert.ok(!linkNames().includes(ep.hostIfName) && !linkNames().includes(ep.peerIfName), 'gone after the retries')
    assert.deepEqual(
      log.state.entries.map((e) => [e.level, e.msg, e.fields['attempt'], e.fields['endpointId']]),
      [
        ['warn', 'background link removal failed; trying again', 1, ep.id],
        ['warn', 'background link removal failed; trying again', 2, ep.id],
        ['info', 'background link removal done', 3, ep.id]
      ]
    )
    assert.match(String(log.state.entries[0]?.fields['error']), /Device or resource busy/)

    // One that never succeeds: close tries once more, logs it, and does not wait for the backoff.
    failures = 1_000
    const stuck = endpoint({ id: `stuck-${scope.id}`, network: net, v4: '10.240.20.32/24' })
    const stubborn = linuxDataplane({
      chainPrefix: scope.chainPrefix,
      deferLinkRemoval: true,
      exec: refusing(stuck.hostIfName),
      log: log.port
    })
    log.state.clear()
    await ok(stubborn.ensureEndpoint({ endpoint: stuck, network: net }))
    await ok(stubborn.deleteEndpoint({ endpoint: stuck, network: net }))
    await stubborn.drain()
    const closing = Date.now()
    await stubborn.close()
    assert.ok(Date.now() - closing < 2_000)
    assert.deepEqual(
      log.state.entries.map((e) => e.msg),
      [
        'background link removal failed; trying again',
        'background link removal failed; left for the sweep at the next start'
      ]
    )
    assert.ok(linkNames().includes(stuck.hostIfName))
    await ok(dp.deleteEndpoint({ endpoint: stuck, network: net }))
  })
})
