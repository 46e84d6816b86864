/**
 * 100 parallel ADDs into 100 namespaces, each a process of the installed native client (as
 * runtimes run plugins): no failure, 100 distinct addresses, each inside its own namespace; then
 * 100 parallel DELs: no failure and nothing left: no lease, no endpoint record, no port on the
 * bridge, no address, no endpoint rule.
 *
 * First through a running `isthmus serve` (no Node fallback installed, so a call it did not take
 * fails with code 11; its log shows the 200 calls), then through the Node fallback beside the
 * client with no daemon. The wall times are printed as diagnostics.
 */
import { strict as assert } from 'node:assert'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it, type TestContext } from 'node:test'
import { waitUntil } from '@isthmus/testkit'
import {
  addresses,
  buildExecutables,
  execPlugin,
  firewallLines,
  installClient,
  requireRoot,
  Scope,
  serveDaemon,
  sh,
  type ServedDaemon
} from './support.js'

const N = 100

interface Setup {
  readonly scope: Scope
  readonly client: string
  readonly conf: Record<string, unknown>
  readonly stateDir: string
  readonly chainPrefix: string
  readonly bridge: string
  readonly namespaces: ReadonlyArray<{ readonly name: string; readonly path: string }>
}

const count = (s: Setup, d: string): number =>
  existsSync(join(s.stateDir, 'v1', d))
    ? readdirSync(join(s.stateDir, 'v1', d), { recursive: true }).filter((f) => String(f).endsWith('.json')).length
    : 0
// The links on the bridge, less the spare pairs a daemon keeps there for Docker's endpoints
// (dataplane-linux spares.ts: alias isthmus-spare; a CNI ADD never takes one).
const bridgePorts = (bridge: string): string[] =>
  (JSON.parse(sh('ip', ['-json', 'link', 'show', 'master', bridge])) as Array<{ ifname: string; ifalias?: string }>)
    .filter((l) => l.ifalias !== 'isthmus-spare')
    .map((l) => l.ifname)
const cid = (s: Setup, i: number): string => `par-${s.scope.id}-${i}`

/**
 * N parallel ADDs, then N parallel DELs, with every assertion on the host; resolves the wall
 * times (and how long the pairs took to go after the last DEL answered: a daemon removes them
 * after answering).
 */
const addAndDelete = async (s: Setup): Promise<{ addMs: number; delMs: number; goneMs: number }> => {
  const env = (command: string, i: number) => ({
    PATH: '/usr/bin',
    CNI_COMMAND: command,
    CNI_CONTAINERID: cid(s, i),
    CNI_NETNS: s.namespaces[i]?.path ?? '',
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/usr/lib/cni'
  })
  const t0 = Date.now()
  const adds = await Promise.all(s.namespaces.map((_, i) => execPlugin(s.client, env('ADD', i), s.conf, 120_000)))
  const addMs = Date.now() - t0
  assert.deepEqual(
    adds.filter((a) => a.exitCode !== 0).map((f) => f.stdout + f.stderr),
    [],
    'no ADD failed'
  )
  const answered = adds.map((a) => (a.doc?.['ips'] as Array<{ address: string }>)[0]?.address ?? '')
  assert.equal(new Set(answered).size, N, 'no duplicate address')
  s.namespaces.forEach((ns, i) =>
    assert.deepEqual(addresses('eth0', ns.name), [answered[i]], `${ns.name} has its address`)
  )
  assert.equal(bridgePorts(s.bridge).length, N)
  assert.equal(count(s, 'endpoints'), N)

  const t1 = Date.now()
  const dels = await Promise.all(s.namespaces.map((_, i) => execPlugin(s.client, env('DEL', i), s.conf, 120_000)))
  const delMs = Date.now() - t1
  assert.deepEqual(
    dels.filter((d) => d.exitCode !== 0).map((d) => d.stdout + d.stderr),
    [],
    'no DEL failed'
  )
  assert.equal(count(s, 'endpoints'), 0, 'no endpoint record left')
  assert.equal(count(s, 'leases'), 1, "only the gateway's lease is left")
  await waitUntil('every pair to go', () => Promise.resolve(bridgePorts(s.bridge).length === 0), 30_000, 50)
  const goneMs = Date.now() - t1 - delMs
  assert.ok(
    s.namespaces.every((ns) => addresses('eth0', ns.name).length === 0),
    'no address left in any namespace'
  )
  assert.deepEqual(
    firewallLines('isthmus:ep:').filter((l) => l.includes(s.chainPrefix)),
    [],
    'no endpoint rule left'
  )
  return { addMs, delMs, goneMs }
}

const setup = (
  scope: Scope,
  client: string,
  net: { readonly daemon: string; readonly stateDir: string; readonly chainPrefix: string },
  subnet: string
): Setup => {
  const bridge = scope.bridge('x')
  const namespaces = Array.from({ length: N }, (_, i) => scope.addNetns(`p${i}`))
  const conf = {
    cniVersion: '1.0.0',
    name: `par-${scope.id}`,
    type: 'isthmus',
    bridge,
    ipMasq: true,
    ...net,
    ipam: { ranges: [[{ subnet }]] }
  }
  return { scope, client, conf, stateDir: net.stateDir, chainPrefix: net.chainPrefix, bridge, namespaces }
}

describe(`${N} parallel ADDs and DELs through the native client and the daemon`, () => {
  const scope = new Scope()
  let daemon: ServedDaemon | undefined
  let s: Setup | undefined
  before(async () => {
    requireRoot()
    buildExecutables()
    const client = installClient(scope.tmpDir('bin'))
    daemon = await serveDaemon(scope, 'd')
    s = setup(scope, client, daemon.netconf, '10.231.60.0/24')
  })
  after(() => scope.cleanup())

  it('ADD: 0 failures, 0 duplicate addresses; DEL: 0 failures, nothing left; the daemon ran all 200 calls', async (t: TestContext) => {
    const { addMs, delMs, goneMs } = await addAndDelete(s!)
    const calls = await daemon!.callsOnce(`${2 * N} calls`, (cs) => cs.length >= 2 * N)
    for (const command of ['ADD', 'DEL']) {
      const ran = calls.filter((c) => c.command === command)
      assert.deepEqual(
        ran.filter((c) => c.exitCode !== 0),
        [],
        `every ${command} succeeded in the daemon`
      )
      assert.deepEqual(
        ran.map((c) => c.containerId).sort(),
        s!.namespaces.map((_, i) => cid(s!, i)).sort(),
        `the daemon ran one ${command} per container`
      )
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0
    const inDaemon = (command: string) => median(calls.filter((c) => c.command === command).map((c) => c.durationMs))
    t.diagnostic(
      `native client + daemon: ${N} parallel ADDs ${addMs} ms wall, ${N} parallel DELs ${delMs} ms wall ` +
        `(pairs gone ${goneMs} ms later); in the daemon, median ADD ${inDaemon('ADD')} ms, DEL ${inDaemon('DEL')} ms`
    )
  })
})

describe(`${N} parallel ADDs and DELs through the native client and its Node fallback (no daemon)`, () => {
  const scope = new Scope()
  let s: Setup | undefined
  before(() => {
    requireRoot()
    buildExecutables()
    const bin = scope.tmpDir('bin')
    const client = installClient(bin, { fallback: true })
    // nobody listens there: every call goes to isthmus-node
    const net = { daemon: join(bin, 'none.sock'), stateDir: scope.tmpDir('state'), chainPrefix: scope.chainPrefix }
    s = setup(scope, client, net, '10.231.61.0/24')
  })
  after(() => scope.cleanup())

  it('ADD: 0 failures, 0 duplicate addresses; DEL: 0 failures, nothing left', async (t: TestContext) => {
    const { addMs, delMs } = await addAndDelete(s!)
    t.diagnostic(`Node fallback: ${N} parallel ADDs ${addMs} ms wall, ${N} parallel DELs ${delMs} ms wall`)
  })
})
