import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import { writeFileSync, rmSync } from 'node:fs'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { execFileExec, linuxDataplane, type Exec } from '@isthmus/dataplane-linux'
import { dataplane, type IfName, type SandboxKey } from '@isthmus/core'
import { endpoint, fails, linkNames, network, ok, Scope, sh, withNetwork } from './helpers.js'

const scope = new Scope()
const real = execFileExec()
const dp = linuxDataplane({ chainPrefix: scope.chainPrefix })
const net = network({
  id: `fail-${scope.id}`,
  bridge: scope.bridge('f'),
  v4: { subnet: '10.240.40.0/24', gateway: '10.240.40.1' },
  v6: { subnet: 'fd00:240:40::/64', gateway: 'fd00:240:40::1' }
})
const eth0 = 'eth0' as IfName

/**
 * An exec that fails its `n`th command (1-based): `before` fails it without running it, `after`
 * runs it and then reports a failure (the kernel did the work, the caller thinks it did not).
 */
const failingAt = (n: number, when: 'before' | 'after'): { exec: Exec; count: () => number } => {
  let i = 0
  const exec: Exec = (file, args, input) => {
    i += 1
    if (i !== n) return real(file, args, input)
    const injected = TE.left(dataplane([file, ...args], 1, 'injected failure'))
    return when === 'before' ? injected : TE.chain(() => injected)(real(file, args, input))
  }
  return { exec, count: () => i }
}

/** Links of the endpoint left in the host, and anything but lo left in the sandbox. */
const leftovers = (names: ReadonlyArray<string>, ns: string): ReadonlyArray<string> => [
  ...linkNames().filter((l) => names.includes(l)),
  ...linkNames(ns).filter((l) => l !== 'lo')
]

describe('failures leave no link behind (real kernel)', () => {
  withNetwork(scope, dp, net)

  it('fails at every command of ensureEndpoint + place, before or after the kernel ran it, and cleans up', async () => {
    const ns = scope.addNetns('nth')
    const ep = endpoint({ id: `nth-${scope.id}`, network: net, v4: '10.240.40.2/24', v6: 'fd00:240:40::2/64' })
    const spec = { endpoint: ep, network: net }
    const placement = { _tag: 'PluginMoves', sandbox: ns.path as SandboxKey, ifName: eth0 } as const

    // With the placement known at ensure time (made in the sandbox) and without (made in the host
    // and moved): how many commands a clean run takes, then each one failing in turn.
    for (const [hint, expected] of [
      [placement, 2],
      [undefined, 4]
    ] as const) {
      const probe = failingAt(0, 'before')
      const counted = linuxDataplane({ chainPrefix: scope.chainPrefix, exec: probe.exec })
      await ok(counted.ensureEndpoint(spec, hint))
      await ok(counted.place(spec, placement))
      const commands = probe.count()
      assert.equal(
        commands,
        expected,
        `ip processes for ensure + place (${hint === undefined ? 'moved' : 'made in place'})`
      )
      await ok(dp.deleteEndpoint(spec))

      for (const when of ['before', 'after'] as const) {
        for (let n = 1; n <= commands; n++) {
          const broken = linuxDataplane({ chainPrefix: scope.chainPrefix, exec: failingAt(n, when).exec })
          const r = await TE.chain(() => broken.place(spec, placement))(broken.ensureEndpoint(spec, hint))()
          const what: string = `command ${n} of ${commands} failing ${when} (${hint === undefined ? 'moved' : 'made in place'})`
          assert.equal(r._tag, 'Left', `${what} fails the call`)
          assert.deepEqual(leftovers([ep.hostIfName, ep.peerIfName], ns.name), [], `${what}: nothing left`)
        }
      }
    }
  })

  it('rejects a netns path that does not exist or is not a namespace, leaving no link', async () => {
    const file = `/tmp/isthmus-test-${scope.id}-notns`
    writeFileSync(file, '')
    scope.finally(async () => rmSync(file, { force: true }))
    for (const path of [`/var/run/netns/isthmus-test-${scope.id}-missing`, file]) {
      const ep = endpoint({ id: `bad-${scope.id}`, network: net, v4: '10.240.40.3/24' })
      const placement = { _tag: 'PluginMoves', sandbox: path as SandboxKey, ifName: eth0 } as const
      assert.equal((await fails(dp.ensureEndpoint({ endpoint: ep, network: net }, placement)))._tag, 'InvalidNetns')
      assert.ok(!linkNames().includes(ep.hostIfName) && !linkNames().includes(ep.peerIfName), path)
      await ok(dp.ensureEndpoint({ endpoint: ep, network: net }))
      const e = await fails(dp.place({ endpoint: ep, network: net }, placement))
      assert.equal(e._tag, 'InvalidNetns')
      assert.ok(!linkNames().includes(ep.hostIfName) && !linkNames().includes(ep.peerIfName), path)
    }
  })

  it('fails with the command, exit code and stderr when the interface name is taken in the sandbox, and removes its pair', async () => {
    const ns = scope.addNetns('taken')
    sh('ip', ['-n', ns.name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'other0'])
    const ep = endpoint({ id: `taken-${scope.id}`, network: net, v4: '10.240.40.4/24' })
    await ok(dp.ensureEndpoint({ endpoint: ep, network: net }))
    const e = await fails(
      dp.place({ endpoint: ep, network: net }, { _tag: 'PluginMoves', sandbox: ns.path as SandboxKey, ifName: eth0 })
    )
    assert.equal(e._tag, 'Dataplane')
    if (e._tag === 'Dataplane') {
      assert.deepEqual(e.argv, ['ip', 'link', 'set', 'dev', ep.peerIfName, 'netns', ns.path, 'name', 'eth0'])
      assert.notEqual(e.exitCode, 0)
      assert.match(e.stderr, /exists/i)
    }
    assert.ok(!linkNames().includes(ep.hostIfName) && !linkNames().includes(ep.peerIfName))
    assert.deepEqual([...linkNames(ns.name)].sort(), ['eth0', 'lo', 'other0'], "the sandbox's own eth0 is untouched")
  })

  it('names the failing line of a batch, and reports a missing bridge as a missing network', async () => {
    const gone = network({
      id: `gone-${scope.id}`,
      bridge: scope.bridge('g'),
      v4: { subnet: '10.240.41.0/24', gateway: '10.240.41.1' }
    })
    const ep = endpoint({ id: `gone-${scope.id}`, network: gone, v4: '10.240.41.2/24' })
    const e = await fails(dp.ensureEndpoint({ endpoint: ep, network: gone }))
    assert.deepEqual(e, { _tag: 'NotFound', kind: 'network', id: gone.id })
    assert.ok(!linkNames().includes(ep.hostIfName) && !linkNames().includes(ep.peerIfName))

    // An address the kernel refuses (a v6 address with a prefix longer than 128 cannot be decoded,
    // so use a route via a gateway that is not on-link).
    const ns = scope.addNetns('route')
    const bad = endpoint({
      id: `route-${scope.id}`,
      network: net,
      v4: '10.240.40.5/24',
      routes: [{ dst: '10.240.99.0/24', gw: '10.240.98.1' }]
    })
    await ok(dp.ensureEndpoint({ endpoint: bad, network: net }))
    const r = await fails(
      dp.place({ endpoint: bad, network: net }, { _tag: 'PluginMoves', sandbox: ns.path as SandboxKey, ifName: eth0 })
    )
    assert.equal(r._tag, 'Dataplane')
    if (r._tag === 'Dataplane') {
      assert.deepEqual(r.argv, [
        'ip',
        '-n',
        ns.name,
        '-json',
        'route',
        'replace',
        '10.240.99.0/24',
        'via',
        '10.240.98.1',
        'dev',
        'eth0'
      ])
      assert.match(r.stderr, /unreachable|Nexthop has invalid gateway/i)
    }
    assert.deepEqual(leftovers([bad.hostIfName, bad.peerIfName], ns.name), [])
  })
})
