import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import { readFileSync } from 'node:fs'
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { bridgeMac, execFileExec, linuxDataplane, type Exec } from '@isthmus/dataplane-linux'
import { dataplane, describe as describeError, type IfName, type SandboxKey } from '@isthmus/core'
import { recordingLogger } from '@isthmus/core/testing'
import {
  call,
  endpoint,
  fails,
  link,
  linkNames,
  network,
  ok,
  ourRules,
  requireRoot,
  Scope,
  serveIn,
  sh,
  shQuiet
} from './helpers.js'

const scope = new Scope()
const real = execFileExec()
/** Every command the dataplane runs, for asserting what a call did (and did not) do. */
const ran: string[][] = []
const recording: Exec = (file, args, input) => {
  ran.push([file, ...args])
  return real(file, args, input)
}
const dp = linuxDataplane({ chainPrefix: scope.chainPrefix, exec: recording })
const P = scope.chainPrefix

const bridgePortsOf = (br: string): string[] => {
  try {
    return (JSON.parse(sh('ip', ['-json', 'link', 'show', 'master', br])) as Array<{ ifname: string }>).map(
      (l) => l.ifname
    )
  } catch {
    return []
  }
}

const kindOf = (dev: string): string | undefined =>
  (
    JSON.parse(sh('ip', ['-json', '-details', 'link', 'show', 'dev', dev])) as Array<{
      linkinfo?: { info_kind?: string }
    }>
  )[0]?.linkinfo?.info_kind

describe('networks: bridge, forwarding and masquerade (real kernel)', () => {
  before(requireRoot)
  after(async () => {
    await dp.removeFirewall()()
    await scope.cleanup()
  })

  it('creates a bridge it owns, with MTU, gateways, MAC and masquerade; a later process still knows it owns it', async () => {
    const net = network({
      id: `own-${scope.id}`,
      bridge: scope.bridge('o'),
      v4: { subnet: '10.240.10.0/24', gateway: '10.240.10.1' },
      v6: { subnet: 'fd00:240:10::/64', gateway: 'fd00:240:10::1' },
      mtu: 1450
    })
    const br = net.bridge ?? ''
    assert.deepEqual(await ok(dp.ensureNetwork(net)), { device: br, created: true })
    const l = link(br)
    assert.equal(kindOf(br), 'bridge')
    assert.equal(l?.mtu, 1450)
    assert.equal(l?.address, bridgeMac(net))
    assert.ok(l?.flags.includes('UP'))
    const addrs = (l?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`)
    assert.ok(addrs.includes('10.240.10.1/24') && addrs.includes('fd00:240:10::1/64'), addrs.join(' '))
    assert.equal(readFileSync(`/proc/sys/net/ipv4/conf/${br}/route_localnet`, 'utf8').trim(), '1')
    assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(), '1')

    const tag = `"isthmus:net:${net.id}"`
    assert.ok(
      ourRules(P).includes(`-A ${P}-POSTROUTING -s 10.240.10.0/24 ! -o ${br} -m comment --comment ${tag} -j MASQUERADE`)
    )
    assert.ok(
      ourRules(P, 6).includes(
        `-A ${P}-POSTROUTING -s fd00:240:10::/64 ! -o ${br} -m comment --comment ${tag} -j MASQUERADE`
      )
    )
    const save = sh('iptables-save', [])
    for (const jump of [
      `-A POSTROUTING -j ${P}-POSTROUTING`,
      `-A PREROUTING -m addrtype --dst-type LOCAL -j ${P}-DNAT`,
      `-A OUTPUT -m addrtype --dst-type LOCAL -j ${P}-DNAT`,
      `-A FORWARD -j ${P}-FORWARD`
    ]) {
      assert.equal(save.split('\n').filter((x) => x === jump).length, 1, jump)
    }

    // Ensured again: nothing is rewritten (the rules are already in iptables-save's own form).
    const before = ourRules(P)
    ran.length = 0
    assert.deepEqual(await ok(dp.ensureNetwork(net)), { device: br, created: false })
    assert.deepEqual(
      ran.filter((argv) => argv[0]?.includes('restore') === true || argv.includes('-batch')),
      [],
      'a second ensure only reads'
    )
    assert.deepEqual(ourRules(P), before)

    // Broken behind isthmus's back (down, a gateway gone, a rule gone): the next ensure repairs it.
    sh('ip', ['addr', 'del', '10.240.10.1/24', 'dev', br])
    sh('ip', ['link', 'set', 'dev', br, 'down'])
    sh('iptables', [
      '-t',
      'nat',
      '-D',
      `${P}-POSTROUTING`,
      '-s',
      '10.240.10.0/24',
      '!',
      '-o',
      br,
      '-m',
      'comment',
      '--comment',
      `isthmus:net:${net.id}`,
      '-j',
      'MASQUERADE'
    ])
    assert.deepEqual(await ok(dp.ensureNetwork(net)), { device: br, created: false })
    assert.ok(link(br)?.flags.includes('UP'))
    const repaired = (link(br)?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`)
    assert.ok(repaired.includes('10.240.10.1/24') && repaired.includes('fd00:240:10::1/64'), repaired.join(' '))
    assert.deepEqual(ourRules(P), before)

    // A new dataplane (a later CNI process) finds the mark on the bridge and removes it.
    const later = linuxDataplane({ chainPrefix: P })
    assert.equal((await ok(later.ensureNetwork(net))).created, false)
    await ok(later.deleteNetwork(net))
    assert.equal(link(br), undefined, 'the bridge isthmus made is gone with the network')
    assert.deepEqual(
      ourRules(P).filter((r) => r.includes(tag)),
      [],
      'masquerade gone with the network'
    )
    assert.deepEqual(
      ourRules(P, 6).filter((r) => r.includes(tag)),
      []
    )
    await ok(later.deleteNetwork(net))
  })

  it('adopts a bridge that already exists and leaves it in place on delete', async () => {
    const br = scope.bridge('x')
    sh('ip', ['link', 'add', 'name', br, 'type', 'bridge'])
    const net = network({
      id: `adopt-${scope.id}`,
      bridge: br,
      v4: { subnet: '10.240.12.0/24', gateway: '10.240.12.1' }
    })
    assert.deepEqual(await ok(dp.ensureNetwork(net)), { device: br, created: false })
    assert.ok(link(br)?.flags.includes('UP'))
    assert.ok((link(br)?.addr_info ?? []).some((a) => a.local === '10.240.12.1'))
    await ok(dp.deleteNetwork(net))
    assert.notEqual(link(br), undefined, 'an operator bridge stays')
    assert.deepEqual(
      ourRules(P).filter((r) => r.includes(net.id)),
      []
    )
  })

  it('refuses a bridge name taken by a link that is not a bridge', async () => {
    const name = scope.bridge('d')
    sh('ip', ['link', 'add', 'name', name, 'type', 'veth', 'peer', 'name', scope.track(`${name}p`.slice(-15))])
    const net = network({
      id: `dummy-${scope.id}`,
      bridge: name,
      v4: { subnet: '10.240.13.0/24', gateway: '10.240.13.1' }
    })
    const e = await fails(dp.ensureNetwork(net))
    assert.equal(e._tag, 'InvalidConfig')
    assert.equal(kindOf(name), 'veth', 'left untouched')
    assert.deepEqual(
      ourRules(P).filter((r) => r.includes(net.id)),
      [],
      'no rules for a network that failed'
    )
  })

  it('refuses a bridge name outside the one interface-name rule (zz+, a!b, -x) before any bridge or rule exists', async () => {
    for (const bad of ['zz+', 'a!b', '-x']) {
      // A record that did not come through the codec (a hand edit, an older isthmus).
      const net = {
        ...network({
          id: `bad-${scope.id}`,
          bridge: 'placeholder',
          v4: { subnet: '10.240.14.0/24', gateway: '10.240.14.1' }
        }),
        bridge: bad as IfName
      }
      ran.length = 0
      const e = await fails(dp.ensureNetwork(net))
      assert.deepEqual(
        [e._tag, describeError(e)],
        ['InvalidConfig', `invalid configuration: bad bridge name ${JSON.stringify(bad)}`]
      )
      assert.deepEqual(ran, [], `no command ran for ${bad}`)
      assert.equal(link(bad), undefined)
      assert.deepEqual(
        ourRules(P).filter((r) => r.includes(net.id) || r.includes(bad)),
        []
      )
      assert.equal((await fails(dp.deleteNetwork(net)))._tag, 'InvalidConfig')
      const ep = endpoint({ id: `bad-${scope.id}`, network: net, v4: '10.240.14.2/24' })
      assert.equal((await fails(dp.ensureEndpoint({ endpoint: ep, network: net })))._tag, 'InvalidConfig')
      assert.equal((await fails(dp.removeLink(bad as IfName)))._tag, 'InvalidConfig')
      assert.deepEqual(ran, [])
    }
    // A host end's name reaches the rules' tags too.
    const good = network({
      id: `badep-${scope.id}`,
      bridge: scope.bridge('g'),
      v4: { subnet: '10.240.14.0/24', gateway: '10.240.14.1' }
    })
    const ep = {
      ...endpoint({ id: `badep-${scope.id}`, network: good, v4: '10.240.14.2/24' }),
      hostIfName: 'zz+' as IfName
    }
    assert.equal(
      (
        await fails(
          dp.publishPorts({ endpoint: ep, network: good }, [{ protocol: 'tcp', hostPort: 18099, containerPort: 80 }])
        )
      )._tag,
      'InvalidConfig'
    )
    assert.equal((await fails(dp.unpublishPorts({ endpoint: ep, network: good })))._tag, 'InvalidConfig')
    assert.deepEqual(
      ourRules(P).filter((r) => r.includes('zz+')),
      []
    )
  })

  it('takes over a bridge another network left (its mark, no record): mark, MAC, addresses, rules and spares become the new network’s, and it goes with it', async () => {
    const br = scope.bridge('l')
    const old = network({
      id: `left-${scope.id}`,
      bridge: br,
      v4: { subnet: '10.240.15.0/24', gateway: '10.240.15.1' }
    })
    // A daemon that made the network (and its spares) and died without removing it.
    const dead = linuxDataplane({ chainPrefix: P, spareLinks: 2 })
    await ok(dead.ensureNetwork(old))
    await dead.drain()
    await new Promise((r) => setTimeout(r, 100))
    await dead.drain()
    const leftSpares = bridgePortsOf(br)
    assert.equal(leftSpares.length, 2)
    for (const [subnet, gateway] of [
      ['10.240.16.0/24', '10.240.16.1'],
      ['10.240.15.0/24', '10.240.15.1']
    ] as const) {
      const next = network({ id: `next-${subnet.split('.')[2]}-${scope.id}`, bridge: br, v4: { subnet, gateway } })
      const later = linuxDataplane({ chainPrefix: P, spareLinks: 1 })
      assert.deepEqual(await ok(later.ensureNetwork(next)), { device: br, created: true }, `taken over for ${subnet}`)
      const l = link(br)
      assert.equal(
        (JSON.parse(sh('ip', ['-json', 'link', 'show', 'dev', br])) as Array<{ ifalias?: string }>)[0]?.ifalias,
        `isthmus:net:${next.id}`
      )
      assert.equal(l?.address, bridgeMac(next))
      assert.deepEqual(
        (l?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
        [`${gateway}/24`]
      )
      assert.deepEqual(
        ourRules(P).filter((r) => r.includes(`isthmus:net:${old.id}"`)),
        [],
        "the old network's rules are gone"
      )
      assert.ok(ourRules(P).some((r) => r.includes(`isthmus:net:${next.id}"`)))
      assert.deepEqual(
        bridgePortsOf(br).filter((p) => leftSpares.includes(p)),
        [],
        "the dead daemon's spares are gone"
      )
      await later.drain()
      await ok(later.deleteNetwork(next))
      assert.equal(link(br), undefined, 'removed with the network that took it over')
      assert.deepEqual(
        ourRules(P).filter((r) => r.includes(next.id)),
        []
      )
      // The next round: the same bridge left by a dead daemon again (this time the same subnet).
      await ok(dead.ensureNetwork(old))
    }
    // A network that shares the bridge on purpose (same pools, -o cni-network) adopts it as it is.
    const sharing = network({
      id: `share-${scope.id}`,
      bridge: br,
      v4: { subnet: '10.240.15.0/24', gateway: '10.240.15.1' }
    })
    const mark = () =>
      (JSON.parse(sh('ip', ['-json', 'link', 'show', 'dev', br])) as Array<{ ifalias?: string }>)[0]?.ifalias
    assert.deepEqual(await ok(linuxDataplane({ chainPrefix: P }).ensureNetwork(sharing, [old.id])), {
      device: br,
      created: false
    })
    assert.equal(mark(), `isthmus:net:${old.id}`)
    await ok(dp.deleteNetwork(sharing))
    assert.equal(mark(), `isthmus:net:${old.id}`, 'the bridge stays its owner’s')
    await ok(dead.deleteNetwork(old))
  })

  it('one bridge name for network after network (create, endpoint, remove, at once): nothing is left', async () => {
    const br = scope.bridge('r')
    const daemon = linuxDataplane({ chainPrefix: P, spareLinks: 2, deferLinkRemoval: true, keepIpProcesses: true })
    try {
      for (const i of [0, 1, 2, 3]) {
        const net = network({
          id: `reuse${i}-${scope.id}`,
          bridge: br,
          v4: { subnet: `10.240.${40 + (i % 2)}.0/24`, gateway: `10.240.${40 + (i % 2)}.1` }
        })
        assert.equal((await ok(daemon.ensureNetwork(net))).created, true)
        const ep = endpoint({ id: `reuse${i}-${scope.id}`, network: net, v4: `10.240.${40 + (i % 2)}.5/24` })
        const withPort = { ...ep, portMappings: [{ protocol: 'tcp' as const, hostPort: 18090 + i, containerPort: 80 }] }
        await ok(daemon.ensureEndpoint({ endpoint: withPort, network: net }))
        await ok(daemon.publishPorts({ endpoint: withPort, network: net }, withPort.portMappings))
        await ok(daemon.deleteEndpoint({ endpoint: withPort, network: net }))
        // No wait: the pair is still being removed in the background, spares are being refilled.
        await ok(daemon.deleteNetwork(net))
      }
      await daemon.drain()
      assert.equal(link(br), undefined)
      assert.deepEqual(
        linkNames().filter((n) => bridgePortsOf(br).includes(n)),
        []
      )
      assert.deepEqual(
        ourRules(P).filter((r) => r.includes(`reuse`)),
        []
      )
    } finally {
      await daemon.close()
    }
  })

  it('masquerades traffic from the subnet leaving through another interface, and only with ipMasquerade', async () => {
    // "Outside": a namespace behind a veth of its own, with no route back to the sandbox subnets.
    const out = scope.addNetns('out')
    const hostEnd = scope.track(`itv${scope.id}o`)
    sh('ip', ['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', out.name])
    sh('ip', ['addr', 'add', '10.240.15.1/24', 'dev', hostEnd])
    sh('ip', ['link', 'set', hostEnd, 'up'])
    sh('ip', ['-n', out.name, 'addr', 'add', '10.240.15.2/24', 'dev', 'eth0'])
    sh('ip', ['-n', out.name, 'link', 'set', 'eth0', 'up'])
    await serveIn(scope, out.name, 7100, 'OUT')

    const masq = network({
      id: `masq-${scope.id}`,
      bridge: scope.bridge('m'),
      v4: { subnet: '10.240.11.0/24', gateway: '10.240.11.1' }
    })
    const plain = network({
      id: `nomasq-${scope.id}`,
      bridge: scope.bridge('n'),
      v4: { subnet: '10.240.14.0/24', gateway: '10.240.14.1' },
      ipMasquerade: false
    })
    for (const [net, addr, expect] of [
      [masq, '10.240.11.2/24', /^OUT 10\.240\.15\.1$/],
      [plain, '10.240.14.2/24', /^ERR timeout$/]
    ] as const) {
      await ok(dp.ensureNetwork(net))
      const ns = scope.addNetns(net.id.slice(0, 4))
      const ep = endpoint({ id: `o-${net.id}`, network: net, v4: addr })
      await ok(dp.ensureEndpoint({ endpoint: ep, network: net }))
      await ok(
        dp.place(
          { endpoint: ep, network: net },
          { _tag: 'PluginMoves', sandbox: ns.path as SandboxKey, ifName: 'eth0' as IfName }
        )
      )
      assert.match(await call(ns.name, '10.240.15.2', 7100), expect)
      await ok(dp.deleteEndpoint({ endpoint: ep, network: net }))
      await ok(dp.deleteNetwork(net))
    }
    assert.deepEqual(
      ourRules(P).filter((r) => r.includes(masq.id) || r.includes(plain.id)),
      []
    )
  })

  it('gives an internal network no masquerade and drops forwarding between its bridge and other interfaces', async () => {
    const net = network({
      id: `internal-${scope.id}`,
      bridge: scope.bridge('i'),
      v4: { subnet: '10.240.16.0/24', gateway: '10.240.16.1' },
      internal: true
    })
    const br = net.bridge ?? ''
    await ok(dp.ensureNetwork(net))
    const rules = ourRules(P).filter((r) => r.includes(net.id))
    assert.ok(!rules.some((r) => r.includes('! -o')), 'no masquerade rule')
    const tag = `-m comment --comment "isthmus:net:${net.id}"`
    assert.deepEqual(
      rules.filter((r) => r.startsWith(`-A ${P}-FORWARD`)),
      [
        `-A ${P}-FORWARD -i ${br} -o ${br} ${tag} -j ACCEPT`,
        `-A ${P}-FORWARD -i ${br} ${tag} -j DROP`,
        `-A ${P}-FORWARD -o ${br} ${tag} -j DROP`
      ]
    )
    await ok(dp.deleteNetwork(net))
    await ok(dp.deleteNetwork(net))
    assert.deepEqual(
      ourRules(P).filter((r) => r.includes(net.id)),
      []
    )
  })

  it('removes what it made when network creation fails half-way', async () => {
    const net = network({
      id: `half-${scope.id}`,
      bridge: scope.bridge('h'),
      v4: { subnet: '10.240.17.0/24', gateway: '10.240.17.1' }
    })
    // Fail the bridge batch after the kernel ran it: the bridge exists, the call thinks it failed.
    const failing: Exec = (file, args, input) =>
      args.includes('-batch') && (input ?? '').includes('type bridge')
        ? TE.chain(() => TE.left(dataplane([file, ...args], 2, 'injected failure')))(real(file, args, input))
        : real(file, args, input)
    const broken = linuxDataplane({ chainPrefix: P, exec: failing })
    const r = await broken.ensureNetwork(net)()
    assert.ok(E.isLeft(r) && r.left._tag === 'Dataplane')
    assert.equal(link(net.bridge ?? ''), undefined, 'no bridge left behind')
    assert.deepEqual(
      ourRules(P).filter((x) => x.includes(net.id)),
      [],
      'no rules left behind'
    )
  })

  it('logs a clean-up that fails after a failed network creation, and returns the original error', async () => {
    const net = network({
      id: `undo-${scope.id}`,
      bridge: scope.bridge('u'),
      v4: { subnet: '10.240.43.0/24', gateway: '10.240.43.1' }
    })
    let saves = 0
    const failing: Exec = (file, args, input) => {
      if (args.includes('-batch') && (input ?? '').includes('type bridge')) {
        return TE.chain(() => TE.left(dataplane([file, ...args], 2, 'injected failure')))(real(file, args, input))
      }
      // The firewall's own read works; the clean-up's read of the ruleset does not.
      if (file === 'iptables-save' && ++saves > 1) {
        return TE.left(dataplane([file], 1, 'injected: cannot read the ruleset'))
      }
      return real(file, args, input)
    }
    const log = recordingLogger()
    const broken = linuxDataplane({ chainPrefix: P, exec: failing, log: log.port })
    const e = await fails(broken.ensureNetwork(net))
    assert.equal(describeError(e), `host networking command failed (ip -batch -, exit 2): injected failure`)
    assert.deepEqual(
      log.state.entries.map((x) => [x.level, x.msg, x.fields['networkId'], x.fields['step']]),
      [['warn', 'cannot undo a failed network creation', net.id, 'firewall']]
    )
    assert.match(String(log.state.entries[0]?.fields['error']), /cannot read the ruleset/)
    await ok(dp.deleteNetwork(net))
    assert.deepEqual(
      ourRules(P).filter((x) => x.includes(net.id)),
      []
    )
  })

  it('converges when many processes ensure networks at once: one bridge, each rule and jump exactly once', async () => {
    const nets = [0, 1, 2].map((i) =>
      network({
        id: `par${i}-${scope.id}`,
        bridge: scope.bridge(`p${i}`),
        v4: { subnet: `10.240.${19 + i * 10}.0/24`, gateway: `10.240.${19 + i * 10}.1` }
      })
    )
    // Separate dataplanes stand for separate CNI processes: nothing shared but the kernel.
    const results = await Promise.all(
      nets.flatMap((net) => [0, 1, 2, 3].map(() => linuxDataplane({ chainPrefix: P }).ensureNetwork(net)()))
    )
    for (const r of results) assert.ok(E.isRight(r), E.isLeft(r) ? JSON.stringify(r.left) : '')
    for (const net of nets) {
      const mine = results.slice(nets.indexOf(net) * 4, nets.indexOf(net) * 4 + 4)
      assert.equal(
        mine.filter((r) => E.isRight(r) && r.right.created).length,
        1,
        'exactly one caller created the bridge'
      )
      const rules = ourRules(P).filter((r) => r.includes(`"isthmus:net:${net.id}"`))
      assert.equal(rules.length, 7, rules.join('\n'))
      assert.equal(new Set(rules).size, rules.length, 'no rule twice')
    }
    const jumps = sh('iptables-save', [])
      .split('\n')
      .filter((l) => /^-A (POSTROUTING|PREROUTING|OUTPUT|FORWARD|INPUT) .*-j /.test(l) && l.includes(`${P}-`))
    assert.equal(jumps.length, 5, jumps.join('\n'))
    await Promise.all(nets.map((net) => ok(dp.deleteNetwork(net))))
  })

  it('lists what it owns and removes only that', async () => {
    const net = network({
      id: `inv-${scope.id}`,
      bridge: scope.bridge('v'),
      v4: { subnet: '10.240.18.0/24', gateway: '10.240.18.1' }
    })
    await ok(dp.ensureNetwork(net))
    const ep = endpoint({ id: `inv-${scope.id}`, network: net, v4: '10.240.18.2/24' })
    await ok(dp.ensureEndpoint({ endpoint: ep, network: net }))
    await ok(dp.publishPorts({ endpoint: ep, network: net }, [{ protocol: 'tcp', hostPort: 18081, containerPort: 80 }]))
    const inv = await ok(dp.inventory())
    assert.ok(inv.links.includes(ep.hostIfName) && inv.links.includes(ep.peerIfName))
    assert.ok(inv.networks.includes(net.bridge ?? ''))
    assert.ok(!inv.networks.includes('eth0'))
    // Scoped to networks: the host end on their bridges, nothing on another network's bridge.
    assert.deepEqual((await ok(dp.inventory([net]))).links, [ep.hostIfName])
    const elsewhere = network({
      id: `inv2-${scope.id}`,
      bridge: scope.bridge('w'),
      v4: { subnet: '10.240.19.0/24', gateway: '10.240.19.1' }
    })
    assert.deepEqual((await ok(dp.inventory([elsewhere]))).links, [])
    for (const c of [`iptables:nat/${P}-POSTROUTING`, `iptables:nat/${P}-DNAT`, `iptables:filter/${P}-FORWARD`]) {
      assert.ok(inv.chains?.includes(c), c)
    }
    // A stray endpoint (no record owns it): its links and port rules go.
    await ok(dp.removeLink(ep.peerIfName))
    assert.ok(!linkNames().includes(ep.hostIfName) && !linkNames().includes(ep.peerIfName))
    assert.deepEqual(
      ourRules(P).filter((r) => r.includes(ep.hostIfName)),
      []
    )
    await ok(dp.removeLink(ep.peerIfName))
    assert.equal(
      (await fails(dp.removeLink('eth0' as IfName)))._tag,
      'InvalidConfig',
      'never a link isthmus did not make'
    )
    await ok(dp.removeLink((net.bridge ?? '') as IfName))
    assert.equal(link(net.bridge ?? ''), undefined)
    assert.deepEqual(
      ourRules(P).filter((r) => r.includes(net.id)),
      []
    )
    shQuiet('ip', ['link', 'del', ep.hostIfName])
  })
})
