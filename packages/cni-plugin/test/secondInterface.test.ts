/**
 * A sandbox on two networks (eth0 on A, then net1 on B, as Multus or podman with two networks
 * attach it), on the real kernel: B's ADD keeps eth0's default routes unless B's netconf asks for
 * one (`isDefaultGateway: true`), and its result then names only the routes net1 got.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import type { Cni } from '@isthmus/cni-exec'
import { cniEnv, invoke, linkNames, realRuntime, requireRoot, routes, Scope } from './support.js'

const scope = new Scope()
const runtime = realRuntime()
const stateDir = scope.tmpDir('state')
const bridges = { a: scope.bridge('a'), b: scope.bridge('b') }
const conf = (net: 'a' | 'b', over: Record<string, unknown> = {}) => ({
  cniVersion: '1.0.0',
  name: `second-${net}-${scope.id}`,
  type: 'isthmus',
  bridge: bridges[net],
  isGateway: true,
  stateDir,
  chainPrefix: scope.chainPrefix,
  ipam: {
    ranges:
      net === 'a'
        ? [[{ subnet: '10.231.173.0/24' }], [{ subnet: 'fd00:231:173::/64' }]]
        : [[{ subnet: '10.231.174.0/24' }], [{ subnet: 'fd00:231:174::/64' }]]
  },
  ...over
})

describe('a second interface and the default route', () => {
  before(requireRoot)
  after(() => scope.cleanup())

  const ns = { name: '', path: '' }
  const env = (command: string, ifName: string) => cniEnv(command, { cid: `ctr-${scope.id}`, netns: ns.path, ifName })
  const defaults = (): string[] =>
    [...routes(ns.name, 4), ...routes(ns.name, 6)]
      .filter((l) => l.startsWith('default'))
      .map((l) => l.split(' proto')[0]?.split(' metric')[0] ?? l)

  it('eth0 on A takes the default route of each family (no routes asked: isthmus default)', async () => {
    Object.assign(ns, scope.addNetns('s'))
    const out = await invoke(runtime, env('ADD', 'eth0'), conf('a'))
    assert.equal(out.exitCode, 0, out.stdout)
    assert.deepEqual(defaults(), ['default via 10.231.173.1 dev eth0', 'default via fd00:231:173::1 dev eth0'])
  })

  it("net1 on B keeps eth0's default routes, gets its subnet's, and its result lists no default route", async () => {
    const out = await invoke(runtime, env('ADD', 'net1'), conf('b'))
    assert.equal(out.exitCode, 0, out.stdout)
    assert.deepEqual(defaults(), ['default via 10.231.173.1 dev eth0', 'default via fd00:231:173::1 dev eth0'])
    assert.ok(
      routes(ns.name, 4).some((l) => l.startsWith('10.231.174.0/24 dev net1')),
      routes(ns.name, 4).join('\n')
    )
    assert.ok(
      routes(ns.name, 6).some((l) => l.startsWith('fd00:231:174::/64 dev net1')),
      routes(ns.name, 6).join('\n')
    )
    const r = out.doc as Cni.Result100
    assert.deepEqual(r.routes ?? [], [])
    const check = await invoke(runtime, env('CHECK', 'net1'), conf('b', { prevResult: r }))
    assert.deepEqual([check.exitCode, check.stdout], [0, ''])
  })

  it('net1 on B with isDefaultGateway: true takes the default route of each family', async () => {
    const del = await invoke(runtime, env('DEL', 'net1'), conf('b'))
    assert.equal(del.exitCode, 0, del.stdout)
    const out = await invoke(runtime, env('ADD', 'net1'), conf('b', { isDefaultGateway: true }))
    assert.equal(out.exitCode, 0, out.stdout)
    assert.deepEqual(defaults(), ['default via 10.231.174.1 dev net1', 'default via fd00:231:174::1 dev net1'])
    assert.deepEqual((out.doc as Cni.Result100).routes, [
      { dst: '0.0.0.0/0', gw: '10.231.174.1' },
      { dst: '::/0', gw: 'fd00:231:174::1' }
    ])
  })

  it('DEL of both leaves the sandbox as it was', async () => {
    for (const [ifName, net] of [
      ['net1', 'b'],
      ['eth0', 'a']
    ] as const) {
      const del = await invoke(runtime, env('DEL', ifName), conf(net))
      assert.equal(del.exitCode, 0, del.stdout)
    }
    assert.deepEqual(linkNames(ns.name), ['lo'])
    assert.deepEqual([...routes(ns.name, 4), ...routes(ns.name, 6)], [])
  })
})
