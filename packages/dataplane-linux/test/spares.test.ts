/**
 * Spare veth pairs (`spareLinks`): made in the background after the network is set up, taken by
 * an endpoint that needs only a pair, refilled, removed with the network and by releaseSpares;
 * a crashed daemon's spares are found by their alias and removed unless a record names them.
 */
import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { execFileExec, linuxDataplane, type Exec } from '@isthmus/dataplane-linux'
import { endpoint, link, network, ok, Scope, withNetwork } from './helpers.js'

const scope = new Scope()
// Every command's argv and stdin, to tell which batches carry `ip neigh` lines.
const commands: string[] = []
const direct = execFileExec()
const recording: Exec = (file, args, input) => {
  commands.push(`${[file, ...args].join(' ')}\n${input ?? ''}`)
  return direct(file, args, input)
}
const dp = linuxDataplane({ chainPrefix: scope.chainPrefix, spareLinks: 2, deferLinkRemoval: true, exec: recording })
const net = network({
  id: `sp-${scope.id}`,
  bridge: scope.bridge('s'),
  v4: { subnet: '10.240.60.0/24', gateway: '10.240.60.1' },
  mtu: 1450
})
const bridgePorts = (): string[] =>
  (
    JSON.parse(
      execFileSync('ip', ['-json', 'link', 'show', 'master', net.bridge ?? ''], { encoding: 'utf8' })
    ) as Array<{ ifname: string }>
  ).map((l) => l.ifname)

const withoutMac = <A extends { mac?: unknown }>({ mac: _mac, ...rest }: A): Omit<A, 'mac'> => rest

const settle = async (): Promise<void> => {
  await new Promise((r) => setTimeout(r, 100))
  await dp.drain()
}

describe('spare veth pairs (real kernel)', () => {
  withNetwork(scope, dp, net)

  it('keeps two pairs ready on the bridge, with the network MTU and the spare alias', async () => {
    await settle()
    const ports = bridgePorts()
    assert.equal(ports.length, 2, ports.join(' '))
    for (const p of ports) {
      const [l] = JSON.parse(execFileSync('ip', ['-json', 'link', 'show', 'dev', p], { encoding: 'utf8' })) as Array<{
        mtu: number
        ifalias?: string
      }>
      assert.equal(l?.mtu, 1450)
      assert.equal(l?.ifalias, 'isthmus-spare')
    }
  })

  it('an endpoint without MAC or ports takes one (no process started), and the pool is refilled', async () => {
    const spares = bridgePorts()
    const ep = endpoint({ id: `a-${scope.id}`, network: net, v4: '10.240.60.2/24' })
    const got = await ok(dp.ensureEndpoint({ endpoint: withoutMac(ep), network: net }))
    assert.ok(
      got.hostIfName !== undefined && spares.includes(got.hostIfName),
      `${got.hostIfName} is one of ${spares.join(' ')}`
    )
    const peer = link(got.peerIfName ?? '')
    assert.equal(peer?.address, got.mac, "the MAC reported is the sandbox end's")
    await settle()
    assert.equal(bridgePorts().length, 3, 'the taken pair plus two spares')
    // The record's names are what deleteEndpoint removes.
    await ok(
      dp.deleteEndpoint({ endpoint: { ...ep, hostIfName: got.hostIfName, peerIfName: got.peerIfName! }, network: net })
    )
    await settle()
    assert.ok(!bridgePorts().includes(got.hostIfName))
  })

  it('the inventory gc judges leaves the spares out, taken or not', async () => {
    await settle()
    const spares = bridgePorts()
    assert.equal(spares.length, 2)
    assert.deepEqual((await ok(dp.inventory([net]))).links, [])
  })

  it('an endpoint with a MAC or published ports gets a pair of its own', async () => {
    const ep = endpoint({ id: `b-${scope.id}`, network: net, v4: '10.240.60.3/24', mac: '02:42:0a:f0:3c:03' })
    const got = await ok(dp.ensureEndpoint({ endpoint: ep, network: net }))
    assert.equal(got.hostIfName, undefined, 'named after the endpoint, as without spares')
    assert.equal(link(ep.peerIfName)?.address, '02:42:0a:f0:3c:03')
    await ok(dp.deleteEndpoint({ endpoint: ep, network: net }))
  })

  it('a Docker endpoint on a spare is removed without an ip neigh command; one on a pair of its own has its neighbour entries flushed', async () => {
    const neighOf = (address: string): string =>
      execFileSync('ip', ['neigh', 'show', 'to', address, 'dev', net.bridge ?? ''], { encoding: 'utf8' }).trim()
    const neighLines = (): string[] => commands.filter((c) => /^neigh /m.test(c))
    await settle()
    const onSpare = endpoint({ id: `n-${scope.id}`, network: net, v4: '10.240.60.5/24' })
    const got = await ok(dp.ensureEndpoint({ endpoint: withoutMac(onSpare), network: net }))
    assert.ok(got.hostIfName !== undefined, 'took a spare')
    commands.length = 0
    await ok(
      dp.deleteEndpoint({
        endpoint: { ...onSpare, hostIfName: got.hostIfName, peerIfName: got.peerIfName! },
        network: net
      })
    )
    await settle()
    assert.equal(link(got.hostIfName), undefined)
    assert.deepEqual(neighLines(), [], 'a spare never had neighbour entries')

    const own = endpoint({ id: `o-${scope.id}`, network: net, v4: '10.240.60.6/24', mac: '02:42:0a:f0:3c:06' })
    await ok(dp.ensureEndpoint({ endpoint: own, network: net }))
    assert.match(neighOf('10.240.60.6'), /lladdr 02:42:0a:f0:3c:06 PERMANENT/)
    commands.length = 0
    await ok(dp.deleteEndpoint({ endpoint: own, network: net }))
    await settle()
    assert.equal(neighOf('10.240.60.6'), '')
    assert.equal(neighLines().length, 1)
  })

  it('a spare removed behind its back is skipped, not handed out', async () => {
    await settle()
    const [first] = bridgePorts()
    execFileSync('ip', ['link', 'del', 'dev', first!])
    const ep = endpoint({ id: `c-${scope.id}`, network: net, v4: '10.240.60.4/24' })
    const got = await ok(dp.ensureEndpoint({ endpoint: withoutMac(ep), network: net }))
    assert.notEqual(got.hostIfName, first)
    assert.ok(link(got.hostIfName ?? ep.hostIfName) !== undefined)
    await ok(
      dp.deleteEndpoint({
        endpoint: { ...ep, hostIfName: got.hostIfName ?? ep.hostIfName, peerIfName: got.peerIfName ?? ep.peerIfName },
        network: net
      })
    )
  })

  it('another process finds the spares a killed one left (alias, no record) and removes only those', async () => {
    await ok(dp.releaseSpares())
    // A daemon that made its spares, gave one to an endpoint, and was killed.
    const crashed = linuxDataplane({ chainPrefix: scope.chainPrefix, spareLinks: 2 })
    await ok(crashed.ensureNetwork(net))
    await new Promise((r) => setTimeout(r, 100))
    await crashed.drain()
    const ep = endpoint({ id: `d-${scope.id}`, network: net, v4: '10.240.60.5/24' })
    const got = await ok(crashed.ensureEndpoint({ endpoint: withoutMac(ep), network: net }))
    await new Promise((r) => setTimeout(r, 100))
    await crashed.drain()
    const left = bridgePorts().filter((p) => p !== got.hostIfName)
    assert.equal(left.length, 2)
    // The next daemon, with the endpoint record naming the taken one.
    const next = linuxDataplane({ chainPrefix: scope.chainPrefix })
    const removed = await ok(next.removeStraySpares(new Set([got.hostIfName!]), [net]))
    assert.deepEqual([...removed].sort(), [...left].sort())
    assert.deepEqual(bridgePorts(), [got.hostIfName], 'the recorded one stays')
    await ok(
      next.deleteEndpoint({
        endpoint: { ...ep, hostIfName: got.hostIfName!, peerIfName: got.peerIfName! },
        network: net
      })
    )
  })

  it('a killed daemon’s spares whose bridge went meanwhile are removed too; links on no bridge that are not spares stay', async () => {
    const gone = network({
      id: `sg-${scope.id}`,
      bridge: scope.bridge('g'),
      v4: { subnet: '10.240.61.0/24', gateway: '10.240.61.1' }
    })
    const crashed = linuxDataplane({ chainPrefix: scope.chainPrefix, spareLinks: 2 })
    await ok(crashed.ensureNetwork(gone))
    await new Promise((r) => setTimeout(r, 100))
    await crashed.drain()
    const spares = (
      JSON.parse(
        execFileSync('ip', ['-json', 'link', 'show', 'master', gone.bridge ?? ''], { encoding: 'utf8' })
      ) as Array<{ ifname: string }>
    ).map((l) => l.ifname)
    assert.equal(spares.length, 2)
    // The bridge goes behind the dead daemon's back (an operator, a test's cleanup).
    execFileSync('ip', ['link', 'del', 'dev', gone.bridge ?? ''])
    await crashed.removeFirewall()()
    const other = scope.track(`itv${scope.id}o`)
    execFileSync('ip', ['link', 'add', 'name', other, 'type', 'veth', 'peer', 'name', scope.track(`itc${scope.id}o`)])
    const next = linuxDataplane({ chainPrefix: scope.chainPrefix })
    const removed = await ok(next.removeStraySpares(new Set(), [net]))
    assert.deepEqual([...removed].sort(), [...spares].sort())
    assert.deepEqual(
      spares.filter((p) => link(p) !== undefined),
      []
    )
    assert.ok(link(other) !== undefined, 'a pair that is not a spare stays')
  })

  it('releaseSpares and deleteNetwork remove the spares', async () => {
    await ok(dp.ensureNetwork(net))
    await settle()
    const ready = bridgePorts()
    assert.equal(ready.length, 2)
    await ok(dp.releaseSpares())
    assert.deepEqual(
      ready.filter((p) => link(p) !== undefined),
      []
    )
    await ok(dp.ensureNetwork(net))
    await settle()
    const again = bridgePorts()
    assert.equal(again.length, 2)
    await ok(dp.deleteNetwork(net))
    assert.deepEqual(
      again.filter((p) => link(p) !== undefined),
      [],
      'no spare outlives its bridge'
    )
  })
})
