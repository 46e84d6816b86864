/**
 * 100 parallel ADDs into 100 namespaces, each a process of the installed SEA (as runtimes run
 * plugins): no failure, 100 distinct addresses, each inside its own namespace; then 100 parallel
 * DELs: no failure and nothing left: no lease, no endpoint record, no port on the bridge, no
 * address, no endpoint rule.
 */
import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { addresses, execPlugin, firewallLines, requireRoot, Scope, sh } from './support.js'

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..')
const plugin = join(root, 'packages/cni-plugin/dist/sea/isthmus')
const scope = new Scope()
const stateDir = scope.tmpDir('state')
const bridge = scope.bridge('x')
const N = 100
const conf = {
  cniVersion: '1.0.0',
  name: `par-${scope.id}`,
  type: 'isthmus',
  bridge,
  ipMasq: true,
  stateDir,
  chainPrefix: scope.chainPrefix,
  ipam: { ranges: [[{ subnet: '10.231.60.0/24' }]] }
}
const count = (d: string): number =>
  existsSync(join(stateDir, 'v1', d))
    ? readdirSync(join(stateDir, 'v1', d), { recursive: true }).filter((f) => String(f).endsWith('.json')).length
    : 0
const bridgePorts = (): string[] =>
  (JSON.parse(sh('ip', ['-json', 'link', 'show', 'master', bridge])) as Array<{ ifname: string }>).map((l) => l.ifname)

describe(`${N} parallel ADDs and DELs (SEA processes)`, () => {
  const namespaces: Array<{ name: string; path: string }> = []
  before(() => {
    requireRoot()
    execFileSync(process.execPath, [join(root, 'packages/cni-plugin/scripts/build.mjs')], { stdio: 'ignore' })
    for (let i = 0; i < N; i++) namespaces.push(scope.addNetns(`p${i}`))
  })
  after(() => scope.cleanup())

  it('ADD: 0 failures, 0 duplicate addresses; DEL: 0 failures, nothing left', async () => {
    const env = (command: string, i: number) => ({
      PATH: '/usr/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: `par-${scope.id}-${i}`,
      CNI_NETNS: namespaces[i]?.path ?? '',
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/usr/lib/cni'
    })
    const t0 = Date.now()
    const adds = await Promise.all(namespaces.map((_, i) => execPlugin(plugin, env('ADD', i), conf, 120_000)))
    const addMs = Date.now() - t0
    const failed = adds.filter((a) => a.exitCode !== 0)
    assert.deepEqual(
      failed.map((f) => f.stdout),
      [],
      'no ADD failed'
    )
    const answered = adds.map((a) => (a.doc?.['ips'] as Array<{ address: string }>)[0]?.address ?? '')
    assert.equal(new Set(answered).size, N, 'no duplicate address')
    namespaces.forEach((ns, i) =>
      assert.deepEqual(addresses('eth0', ns.name), [answered[i]], `${ns.name} has its address`)
    )
    assert.equal(bridgePorts().length, N)
    assert.equal(count('endpoints'), N)

    const t1 = Date.now()
    const dels = await Promise.all(namespaces.map((_, i) => execPlugin(plugin, env('DEL', i), conf, 120_000)))
    const delMs = Date.now() - t1
    assert.deepEqual(
      dels.filter((d) => d.exitCode !== 0).map((d) => d.stdout),
      [],
      'no DEL failed'
    )
    assert.deepEqual(bridgePorts(), [], 'no link left on the bridge')
    assert.equal(count('endpoints'), 0, 'no endpoint record left')
    assert.equal(count('sandboxes'), 0, 'no sandbox record left')
    assert.equal(count('leases'), 1, "only the gateway's lease is left")
    assert.ok(
      namespaces.every((ns) => addresses('eth0', ns.name).length === 0),
      'no address left in any namespace'
    )
    assert.deepEqual(
      firewallLines('isthmus:ep:').filter((l) => l.includes(scope.chainPrefix)),
      [],
      'no endpoint rule left'
    )
    console.log(`# ${N} parallel ADDs: ${addMs} ms wall; ${N} parallel DELs: ${delMs} ms wall`)
  })
})
