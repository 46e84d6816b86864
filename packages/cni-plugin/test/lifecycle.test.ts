/**
 * ADD, CHECK, DEL, GC and STATUS on the real kernel, through the envelope with the real ports
 * (file store in a temp state directory, iproute2/iptables dataplane): addresses and routes
 * inside the namespaces, ping between them (IPv4 and IPv6), records and leases in the state
 * directory, failed ADDs that leave nothing, DEL in every degraded situation, GC, STATUS 50.
 */
import { strict as assert } from 'node:assert'
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { Cni } from '@isthmus/cni-exec'
import {
  addresses,
  cniEnv,
  firewallLines,
  invoke,
  link,
  linkNames,
  pings,
  realRuntime,
  requireRoot,
  routes,
  Scope,
  sh
} from './support.js'

const scope = new Scope()
const runtime = realRuntime()
const stateDir = scope.tmpDir('state')
const bridge = scope.bridge('l')
const logFile = join(stateDir, 'cni.log')
const conf = (over: Record<string, unknown> = {}) => ({
  cniVersion: '1.0.0',
  name: `life-${scope.id}`,
  type: 'isthmus',
  bridge,
  isGateway: true,
  stateDir,
  chainPrefix: scope.chainPrefix,
  logFile,
  logLevel: 'debug',
  ipam: {
    ranges: [[{ subnet: '10.231.1.0/24' }], [{ subnet: 'fd00:231:1::/64' }]],
    routes: [{ dst: '10.231.0.0/16' }, { dst: 'fd00:231::/48' }]
  },
  ...over
})
const env = (command: string, cid: string, netns: string, ifName = 'eth0') => cniEnv(command, { cid, netns, ifName })
const files = (dir: string): string[] =>
  existsSync(join(stateDir, 'v1', dir))
    ? readdirSync(join(stateDir, 'v1', dir), { recursive: true })
        .map(String)
        .filter((f) => f.endsWith('.json'))
    : []
// Leases held by endpoints (the gateways' are the pool's own), by address.
const leaseFiles = (): string[] =>
  files('leases')
    .map(
      (f) =>
        JSON.parse(readFileSync(join(stateDir, 'v1', 'leases', f), 'utf8')) as {
          data?: { owner?: { kind?: string }; address?: string }
        }
    )
    .filter((l) => l.data?.owner?.kind === 'endpoint')
    .map((l) => l.data?.address ?? '')
    .sort()
const bridgePorts = (): string[] =>
  (JSON.parse(sh('ip', ['-json', 'link', 'show', 'master', bridge])) as Array<{ ifname: string }>).map((l) => l.ifname)

describe('lifecycle on the real kernel', () => {
  before(requireRoot)
  after(() => scope.cleanup())

  const results = new Map<string, Cni.Result100>()

  it('ADD two namespaces: addresses, routes, MACs and bridge as the results say; they ping each other and the gateway', async () => {
    for (const tag of ['a', 'b']) {
      const ns = scope.addNetns(tag)
      const out = await invoke(runtime, env('ADD', `ctr-${tag}`, ns.path), conf())
      assert.equal(out.exitCode, 0, out.stdout)
      const r = out.doc as Cni.Result100
      results.set(tag, r)
      const [br, hostEnd, eth0] = r.interfaces ?? []
      assert.equal(br?.name, bridge)
      assert.equal(br?.mac, link(bridge)?.address)
      assert.equal(hostEnd?.mac, link(hostEnd?.name ?? '')?.address)
      assert.equal(link(hostEnd?.name ?? '')?.master, bridge)
      assert.deepEqual(eth0, { name: 'eth0', mac: link('eth0', ns.name)?.address, sandbox: ns.path })
      assert.ok(link('eth0', ns.name)?.flags.includes('UP'))
      assert.deepEqual(
        addresses('eth0', ns.name),
        r.ips?.map((i) => i.address)
      )
      assert.ok(routes(ns.name, 4).includes('10.231.0.0/16 via 10.231.1.1 dev eth0'))
      assert.ok(routes(ns.name, 6).some((l) => l.startsWith('fd00:231::/48 via fd00:231:1::1 dev eth0')))
      assert.ok(!routes(ns.name, 4).some((l) => l.startsWith('default')), 'exactly ipam.routes: no default route')
    }
    assert.deepEqual(addresses(bridge).sort(), ['10.231.1.1/24', 'fd00:231:1::1/64'], 'the gateways are on the bridge')
    const a = `isthmus-cni-${scope.id}-a`
    assert.ok(pings(a, '10.231.1.3'), 'A reaches B over IPv4')
    assert.ok(pings(a, 'fd00:231:1::3'), 'A reaches B over IPv6')
    assert.ok(pings(a, '10.231.1.1'), 'A reaches the gateway')
    assert.equal(files('endpoints').length, 2, 'two endpoint records in the state directory')
    assert.deepEqual(leaseFiles().length, 4, 'four address leases')
    const log = readFileSync(logFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    assert.ok(
      log.some(
        (l) =>
          l['message'] === 'done' &&
          l['op'] === 'ADD' &&
          l['containerId'] === 'ctr-a' &&
          typeof l['durationMs'] === 'number'
      ),
      'one line per op in logFile'
    )
  })

  it('CHECK passes on the ADD result and fails when the kernel no longer matches it', async () => {
    const a = `isthmus-cni-${scope.id}-a`
    const path = `/var/run/netns/${a}`
    const prevResult = results.get('a')
    const ok = await invoke(runtime, env('CHECK', 'ctr-a', path), conf({ prevResult }))
    assert.deepEqual([ok.exitCode, ok.stdout], [0, ''])
    sh('ip', ['-n', a, 'addr', 'del', '10.231.1.2/24', 'dev', 'eth0'])
    const bad = await invoke(runtime, env('CHECK', 'ctr-a', path), conf({ prevResult }))
    assert.deepEqual(
      [bad.exitCode, bad.doc?.['code'], bad.doc?.['msg'], bad.doc?.['details']],
      [1, 104, 'interface eth0 lacks addresses', '10.231.1.2/24']
    )
    sh('ip', ['-n', a, 'addr', 'add', '10.231.1.2/24', 'dev', 'eth0'])
    const nomac = await invoke(
      runtime,
      env('CHECK', 'ctr-a', path),
      conf({
        prevResult: {
          ...prevResult,
          interfaces: prevResult?.interfaces?.map((i) => (i.name === 'eth0' ? { ...i, mac: '02:00:00:00:00:01' } : i))
        }
      })
    )
    assert.match(String(nomac.doc?.['msg']), /MAC .* does not match prevResult/)
    const unknown = await invoke(runtime, env('CHECK', 'ctr-zz', path), conf({ prevResult }))
    assert.equal(unknown.doc?.['code'], 3)
  })

  it('ADD of an attachment that exists fails and leaves it working', async () => {
    const a = `isthmus-cni-${scope.id}-a`
    const again = await invoke(runtime, env('ADD', 'ctr-a', `/var/run/netns/${a}`), conf())
    assert.deepEqual([again.exitCode, again.doc?.['code']], [1, 7])
    assert.ok(pings(a, '10.231.1.3'))
    assert.equal(leaseFiles().length, 4)
  })

  it('a failed ADD leaves nothing: a missing namespace (code 8), an ifname taken in the namespace', async () => {
    // Host-wide link lists would see other test runs' links: the bridge's ports are ours alone.
    const before = { ports: bridgePorts(), leases: leaseFiles(), endpoints: files('endpoints').length }
    const gone = await invoke(
      runtime,
      env('ADD', 'ctr-x', `/var/run/netns/isthmus-cni-${scope.id}-nonexistent`),
      conf()
    )
    assert.deepEqual([gone.exitCode, gone.doc?.['code']], [1, 8])
    const c = scope.addNetns('c')
    sh('ip', ['-n', c.name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0peer'])
    const taken = await invoke(runtime, env('ADD', 'ctr-c', c.path), conf())
    assert.deepEqual([taken.exitCode, taken.doc?.['code']], [1, 101])
    assert.match(String(taken.doc?.['details']), /File exists/)
    assert.deepEqual(
      linkNames(c.name).sort(),
      ['eth0', 'eth0peer', 'lo'],
      "the namespace's own eth0 is untouched and ours is gone"
    )
    assert.equal(link('eth0', c.name)?.address !== undefined, true)
    assert.deepEqual({ ports: bridgePorts(), leases: leaseFiles(), endpoints: files('endpoints').length }, before)
  })

  it('publishes runtimeConfig.portMappings as DNAT rules under its own chains and withdraws them at DEL', async () => {
    const p = scope.addNetns('p')
    const out = await invoke(
      runtime,
      env('ADD', 'ctr-p', p.path),
      conf({ runtimeConfig: { portMappings: [{ hostPort: 18231, containerPort: 80, protocol: 'tcp' }] } })
    )
    assert.equal(out.exitCode, 0, out.stdout)
    const ip = (out.doc as Cni.Result100).ips?.[0]?.address.split('/')[0]
    assert.ok(
      firewallLines(`${scope.chainPrefix}-DNAT`).some(
        (l) => l.includes('--dport 18231') && l.includes(`--to-destination ${ip}:80`)
      )
    )
    assert.equal((await invoke(runtime, env('DEL', 'ctr-p', p.path), conf())).exitCode, 0)
    assert.ok(!firewallLines(`${scope.chainPrefix}-DNAT`).some((l) => l.includes('--dport 18231')))
  })

  it('DEL removes links, records and leases; again; with the namespace deleted; with an empty CNI_NETNS', async () => {
    const a = `isthmus-cni-${scope.id}-a`
    const b = `isthmus-cni-${scope.id}-b`
    const hostA = results.get('a')?.interfaces?.[1]?.name ?? ''
    const d = await invoke(runtime, env('DEL', 'ctr-a', `/var/run/netns/${a}`), conf())
    assert.deepEqual([d.exitCode, d.stdout], [0, ''])
    assert.deepEqual(linkNames(a), ['lo'])
    assert.ok(!linkNames().includes(hostA))
    assert.equal(files('endpoints').length, 1)
    assert.equal(leaseFiles().length, 2)
    assert.equal((await invoke(runtime, env('DEL', 'ctr-a', `/var/run/netns/${a}`), conf())).exitCode, 0, 'DEL again')
    // The runtime deleted B's namespace first (the veth pair went with it): DEL still frees the addresses.
    scope.dropNetns(b)
    assert.equal((await invoke(runtime, env('DEL', 'ctr-b', `/var/run/netns/${b}`), conf())).exitCode, 0)
    assert.equal((await invoke(runtime, env('DEL', 'ctr-b', ''), conf())).exitCode, 0, 'empty CNI_NETNS')
    assert.deepEqual(leaseFiles(), [])
    assert.deepEqual(files('endpoints'), [])
    assert.deepEqual(bridgePorts(), [])
  })

  it('GC removes every attachment not in cni.dev/valid-attachments, and orphan links and leases on its bridge', async () => {
    const keep = scope.addNetns('g1')
    for (const [cid, ns] of [
      ['g1', keep.path],
      ['g2', scope.addNetns('g2').path],
      ['g3', scope.addNetns('g3').path]
    ] as const) {
      assert.equal((await invoke(runtime, env('ADD', cid, ns), conf())).exitCode, 0)
    }
    // A veth on our bridge with our prefix that no record owns (a crashed ADD).
    const orphan = `istv${scope.id}00000`
    scope.finally(() => void sh('ip', ['link', 'del', orphan]))
    sh('ip', ['link', 'add', orphan, 'master', bridge, 'type', 'veth', 'peer', 'name', `istc${scope.id}00000`])
    assert.equal(bridgePorts().length, 4)
    // Leases of endpoints with no record: one taken two minutes ago (a crashed ADD), one just now
    // (an endpoint creation in flight, such as dockerd's on a shared network): only the first goes.
    const some = files('leases').find((f) => leaseFiles().some((a) => f.endsWith(`/${a}.json`)))!
    const model = JSON.parse(readFileSync(join(stateDir, 'v1', 'leases', some), 'utf8')) as {
      data: Record<string, unknown>
    }
    const orphanLease = (address: string, ageMs: number) =>
      writeFileSync(
        join(stateDir, 'v1', 'leases', some.split('/')[0]!, `${address}.json`),
        JSON.stringify({
          ...model,
          data: {
            ...model.data,
            address,
            owner: { kind: 'endpoint', id: `ghost-${address}` },
            since: new Date(Date.now() - ageMs).toISOString()
          }
        })
      )
    orphanLease('10.231.1.200', 120_000)
    orphanLease('10.231.1.201', 0)
    assert.deepEqual(
      leaseFiles().filter((a) => a.endsWith('.200') || a.endsWith('.201')),
      ['10.231.1.200', '10.231.1.201']
    )
    const gcConf = {
      ...conf({ cniVersion: '1.1.0' }),
      'cni.dev/valid-attachments': [{ containerID: 'g1', ifname: 'eth0' }]
    }
    const out = await invoke(runtime, cniEnv('GC'), gcConf)
    assert.deepEqual([out.exitCode, out.stdout], [0, ''], out.stdout)
    assert.equal(bridgePorts().length, 1)
    assert.ok(!linkNames().includes(orphan))
    assert.equal(leaseFiles().length, 3, "g1's two and the lease in flight")
    assert.ok(leaseFiles().includes('10.231.1.201') && !leaseFiles().includes('10.231.1.200'))
    assert.ok(pings(keep.name, '10.231.1.1'), 'the valid attachment still works')
    assert.equal((await invoke(runtime, env('DEL', 'g1', keep.path), conf())).exitCode, 0)
    rmSync(join(stateDir, 'v1', 'leases', some.split('/')[0]!, '10.231.1.201.json'))
  })

  it('STATUS: ready (exit 0, no output); code 50 when the state directory is unusable', async () => {
    const ok = await invoke(runtime, cniEnv('STATUS'), conf({ cniVersion: '1.1.0' }))
    assert.deepEqual([ok.exitCode, ok.stdout], [0, ''])
    const notADir = join(stateDir, 'plain-file')
    writeFileSync(notADir, 'x')
    const down = await invoke(runtime, cniEnv('STATUS'), conf({ cniVersion: '1.1.0', stateDir: notADir }))
    assert.deepEqual([down.exitCode, down.doc?.['code']], [1, 50])
  })
})
