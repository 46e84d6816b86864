/**
 * The dataplane over the kept spawner: a CNI placement (the pair made with its end in the sandbox,
 * renamed, addressed, up, routed) gives the same sandbox as through `execFileExec`, with the
 * sandbox's `ip -n` batch run by the spawner; and the daemon's dataplane (kept `ip` processes and
 * the spawner, as `isthmus serve` and its CNI sessions build it) starts no `child_process` of Node
 * for an ADD once warm, and leaves no helper process after `close`.
 */
import { strict as assert } from 'node:assert'
import { before, describe, it } from 'node:test'
import type { ContainerId, IfName, SandboxKey } from '@isthmus/core'
import { linuxDataplane, spawnerExec, type Exec } from '../src/index.js'
import { buildSpawner, endpoint, link, network, ok, routes, Scope, withNetwork } from './helpers.js'
import { children, countSpawns } from './support/processes.js'

const scope = new Scope()
const eth0 = 'eth0' as IfName
const net = network({
  id: `sp-${scope.id}`,
  bridge: scope.bridge('s'),
  v4: { subnet: '10.240.70.0/24', gateway: '10.240.70.1' },
  v6: { subnet: 'fd00:240:70::/64', gateway: 'fd00:240:70::1' },
  mtu: 1400
})
const plain = linuxDataplane({ chainPrefix: scope.chainPrefix })

/**
 * The same endpoint placed through execFileExec, removed, and placed again through `viaSpawner`
 * (each time into a sandbox of its own): the two sandboxes must look the same.
 */
const placeBoth = async (viaSpawner: Exec, tags: readonly [string, string] = ['d', 's']): Promise<void> => {
  const served: string[] = []
  const counting: Exec = (file, args, input) => {
    served.push([file, ...args].join(' '))
    return viaSpawner(file, args, input)
  }
  const seen = []
  for (const [dp, tag] of [
    [plain, tags[0]],
    [linuxDataplane({ chainPrefix: scope.chainPrefix, exec: counting }), tags[1]]
  ] as const) {
    const ns = scope.addNetns(tag)
    const ep = endpoint({
      id: `same-${scope.id}`,
      network: net,
      v4: '10.240.70.2/24',
      v6: 'fd00:240:70::2/64',
      mac: '02:42:0a:f0:46:02'
    })
    const placement = { _tag: 'PluginMoves', sandbox: ns.path as SandboxKey, ifName: eth0 } as const
    await ok(dp.ensureEndpoint({ endpoint: ep, network: net }, placement))
    const placed = await ok(dp.place({ endpoint: ep, network: net }, placement))
    const inside = link('eth0', ns.name)
    seen.push({
      placed: { ...placed, sandbox: placed.sandbox === ns.path },
      mac: inside?.address,
      mtu: inside?.mtu,
      up: inside?.flags.includes('UP'),
      addresses: (inside?.addr_info ?? [])
        .filter((x) => !x.local.startsWith('fe80'))
        .map((x) => `${x.local}/${x.prefixlen}`),
      v4: routes(ns.name, 4),
      v6: routes(ns.name, 6).filter((r) => !r.startsWith('fe80'))
    })
    await ok(dp.deleteEndpoint({ endpoint: ep, network: net }))
  }
  const [direct, spawned] = seen
  assert.deepEqual(spawned, direct)
  assert.deepEqual(
    [spawned?.mac, spawned?.mtu, spawned?.up, spawned?.addresses],
    ['02:42:0a:f0:46:02', 1400, true, ['10.240.70.2/24', 'fd00:240:70::2/64']]
  )
  assert.ok(spawned?.v4.includes('default via 10.240.70.1 dev eth0'), `a default route: ${JSON.stringify(spawned?.v4)}`)
  assert.ok(
    served.some((c) => new RegExp(` -n isthmus-test-[0-9a-f]+-${tags[1]} .*-batch -$`).test(c)),
    `the sandbox's batch went to the spawner: ${served.join('; ')}`
  )
}

describe('the dataplane over the kept spawner (real kernel)', () => {
  before(() => {
    buildSpawner()
  })
  withNetwork(scope, plain, net)

  it('a CNI placement through the spawner gives the sandbox execFileExec gives; the spawner runs the ip -n batch', async () => {
    const sp = spawnerExec()
    try {
      await placeBoth(sp.exec)
    } finally {
      await sp.close()
    }
  })

  it('the same sandbox when the spawner serves the ip batches over netlink itself', async () => {
    const sp = spawnerExec({ netlink: { ip: 'ip', nsenter: 'nsenter' } })
    try {
      await placeBoth(sp.exec, ['dn', 'sn'])
    } finally {
      await sp.close()
    }
  })

  it("the daemon's dataplane starts no Node child process for a warm CNI ADD, and leaves none after close", async () => {
    const before = new Set(children())
    const daemon = linuxDataplane({
      chainPrefix: scope.chainPrefix,
      deferLinkRemoval: true,
      keepIpProcesses: true,
      spawner: true
    })
    scope.finally(() => daemon.close())
    // The sandbox is made before, and looked into after, the ADD: only the ADD is counted.
    const add = (tag: string, n: number) => {
      const ns = scope.addNetns(tag)
      const id = `${tag}-${scope.id}`
      // A CNI attachment's endpoint, as a CNI ADD records it.
      const owner = { kind: 'container', containerId: id as ContainerId, ifName: eth0 } as const
      const spec = { endpoint: { ...endpoint({ id, network: net, v4: `10.240.70.${n}/24` }), owner }, network: net }
      const placement = { _tag: 'PluginMoves', sandbox: ns.path as SandboxKey, ifName: eth0 } as const
      return {
        spec,
        run: async () => {
          await ok(daemon.ensureNetwork(net))
          await ok(daemon.ensureEndpoint(spec, placement))
          await ok(daemon.place(spec, placement))
        },
        check: () =>
          assert.deepEqual(
            (link('eth0', ns.name)?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => a.local),
            [`10.240.70.${n}`]
          )
      }
    }
    // The first ADD starts the helpers: a kept ip process and the spawner.
    const first = add('w', 10)
    await first.run()
    first.check()
    const helpers = children().filter((c) => !before.has(c))
    assert.ok(helpers.includes('isthmus-spawner'), `a spawner runs: ${helpers.join(', ')}`)

    // Then DELs (their removal in the background) and ADDs, interleaved as a daemon sees them.
    const [second, third] = [add('x', 11), add('y', 12)]
    const counted = countSpawns()
    try {
      await ok(daemon.deleteEndpoint(first.spec))
      await second.run()
      await daemon.drain()
      await ok(daemon.deleteEndpoint(second.spec))
      await daemon.drain()
      await third.run()
    } finally {
      counted.restore()
    }
    assert.deepEqual(counted.calls, [], 'no process started from Node')
    third.check()
    await ok(daemon.deleteEndpoint(third.spec))

    await daemon.close()
    await new Promise((r) => setTimeout(r, 100))
    const left = children().filter((c) => c === 'isthmus-spawner' || c === 'ip')
    assert.deepEqual(left, [], 'no spawner and no kept ip after close')
  })
})
