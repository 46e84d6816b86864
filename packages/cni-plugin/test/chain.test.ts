/**
 * Chaining through a real libcni client: a small Go runtime (minicni/main.go) built here from
 * Debian's golang-go and golang-github-appc-cni-dev (libcni 1.1.2, podman 4.3's), which injects
 * runtimeConfig and prevResult, caches results and runs DEL in reverse order. The `isthmus` in
 * CNI_PATH is the native client (no Node fallback beside it) and a running `isthmus serve` does
 * every isthmus call: each test finds its calls, in order, in the daemon's log.
 *
 * - isthmus → portmap → tuning: the final result is isthmus's with tuning's MAC; the kernel has
 *   tuning's MAC and sysctl and portmap's DNAT (a TCP connection to the host port reaches the
 *   container); CHECK passes; DEL leaves nothing.
 * - isthmus as the IPAM of the reference bridge: only allocates and answers an IPAM result.
 * - isthmus delegating its IPAM to host-local in CNI_PATH.
 * - capabilities (ips, mac, portMappings) and CNI_ARGS as libcni passes them.
 */
import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { bridgeIfName } from '@isthmus/core'
import { waitUntil } from '@isthmus/testkit'
import {
  addresses,
  buildExecutables,
  fetchTcp,
  firewallLines,
  installClient,
  link,
  linkNames,
  requireRoot,
  Scope,
  serveDaemon,
  serveIn,
  sh,
  type DaemonCall,
  type ServedDaemon
} from './support.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const scope = new Scope()
const dir = scope.tmpDir('chain')
const binDir = join(dir, 'bin')
const cacheDir = join(dir, 'cache')
let daemon: ServedDaemon | undefined
const driver = join(dir, 'minicni')
const cniPath = `${binDir}:/usr/lib/cni`

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}
const minicni = (cmd: string, conflist: string, cid: string, netns: string, caps = '', args = ''): Run => {
  try {
    const stdout = execFileSync(driver, [cmd, conflist, cid, netns, 'eth0', cacheDir, cniPath, caps, args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000
    })
    return { code: 0, stdout, stderr: '' }
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string }
    return { code: err.status ?? 1, stdout: String(err.stdout ?? ''), stderr: String(err.stderr ?? '') }
  }
}
const ok = (r: Run): Run => {
  assert.equal(r.code, 0, r.stderr)
  return r
}
const writeList = (name: string, plugins: unknown[], cniVersion = '1.0.0'): string => {
  const file = join(dir, `${name}.conflist`)
  writeFileSync(file, JSON.stringify({ cniVersion, name, plugins }))
  return file
}
const ourLeases = (prefix: string): string[] => {
  const d = join(daemon!.netconf.stateDir, 'v1', 'leases', 'isthmus-local')
  return existsSync(d)
    ? readdirSync(d)
        // A name starting with '.' is never a record (the daemon's spare files, a temp file).
        .filter((f) => !f.startsWith('.'))
        .map(
          (f) => JSON.parse(readFileSync(join(d, f), 'utf8')) as { data: { address: string; owner: { kind: string } } }
        )
        .filter((l) => l.data.owner.kind === 'endpoint')
        .map((l) => l.data.address)
        .filter((a) => a.startsWith(prefix))
        .sort()
    : []
}
// The daemon's socket, state directory and chains: its own session serves the calls.
const isthmus = (over: Record<string, unknown>) => ({
  type: 'isthmus',
  isGateway: true,
  ...daemon!.netconf,
  ...over
})
/** The calls of container `cid` in the daemon's log, once there are `expected.length` of them. */
const daemonRan = async (cid: string, expected: Array<[string, number]>): Promise<void> => {
  const of = (cs: DaemonCall[]): DaemonCall[] => cs.filter((c) => c.containerId === cid)
  const calls = await daemon!.callsOnce(`${expected.length} calls of ${cid}`, (cs) => of(cs).length >= expected.length)
  assert.deepEqual(
    of(calls).map((c) => [c.command, c.exitCode]),
    expected,
    `the daemon ran ${cid}'s calls`
  )
}
/** The daemon removes a sandbox's pair after answering DEL: wait (bounded) for it to go. */
const emptied = (ns: string): Promise<void> =>
  waitUntil(`${ns} to hold only lo`, () => Promise.resolve(linkNames(ns).join() === 'lo'), 5_000, 20)

describe('chaining through libcni (minicni)', () => {
  before(async () => {
    requireRoot()
    buildExecutables()
    installClient(binDir)
    daemon = await serveDaemon(scope, 'c')
    const src = join(dir, 'gopath/src/minicni')
    mkdirSync(src, { recursive: true })
    copyFileSync(join(here, 'minicni/main.go'), join(src, 'main.go'))
    execFileSync('go', ['build', '-o', driver, '.'], {
      cwd: src,
      env: {
        ...process.env,
        GO111MODULE: 'off',
        GOFLAGS: '',
        GOPATH: `${join(dir, 'gopath')}:/usr/share/gocode`,
        GOCACHE: join(dir, 'gocache')
      },
      stdio: 'ignore',
      timeout: 300_000
    })
  })
  after(() => scope.cleanup())

  it("isthmus → portmap → tuning: tuning's MAC and sysctl, portmap's DNAT to isthmus's address, CHECK, DEL", async () => {
    const ns = scope.addNetns('chain')
    const bridge = scope.bridge('c')
    const list = writeList(`chain-${scope.id}`, [
      isthmus({ bridge, ipam: { ranges: [[{ subnet: '10.231.50.0/24' }], [{ subnet: 'fd00:231:50::/64' }]] } }),
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      { type: 'tuning', capabilities: { mac: true }, sysctl: { 'net.ipv4.conf.eth0.rp_filter': '2' } }
    ])
    const caps = JSON.stringify({
      portMappings: [{ hostPort: 18250, containerPort: 80, protocol: 'tcp' }],
      mac: '02:31:50:00:00:42'
    })
    scope.finally(() => void minicni('del', list, 'chain1', ns.path, caps))
    const r = JSON.parse(ok(minicni('add', list, 'chain1', ns.path, caps)).stdout) as {
      interfaces: Array<{ name: string; mac: string; sandbox?: string }>
      ips: Array<{ address: string }>
    }
    assert.deepEqual(
      r.interfaces.map((i) => i.name),
      [bridge, r.interfaces[1]?.name, 'eth0'],
      "isthmus's interfaces carried through the chain"
    )
    assert.equal(r.interfaces[2]?.mac, '02:31:50:00:00:42', "tuning's MAC in the final result")
    assert.equal(link('eth0', ns.name)?.address, '02:31:50:00:00:42')
    assert.equal(sh('ip', ['netns', 'exec', ns.name, 'cat', '/proc/sys/net/ipv4/conf/eth0/rp_filter']).trim(), '2')
    assert.deepEqual(
      r.ips.map((i) => i.address),
      ['10.231.50.2/24', 'fd00:231:50::2/64']
    )
    const name = `chain-${scope.id}`
    const dnatChain = firewallLines(`"dnat name: \\"${name}\\"`)[0]?.split(' -j ')[1]
    assert.ok(dnatChain !== undefined, `portmap made its chain for ${name}`)
    assert.ok(
      firewallLines(dnatChain).some((l) => l.includes('--to-destination 10.231.50.2:80')),
      "portmap DNATs to isthmus's address"
    )
    await serveIn(scope, ns.name, 80, 'hello from the container')
    assert.equal(
      await fetchTcp('10.231.50.1', 18250),
      'hello from the container',
      'host port → container through the chain'
    )
    // portmap v1.1.1's own CHECK is broken (plugins#819: it looks for its IPv4 rules in ip6tables),
    // so CHECK runs over the same network without it: libcni hands isthmus and tuning the cached
    // final result, whose eth0 MAC is tuning's.
    const noPortmap = join(dir, 'chain-check.conflist')
    const parsed = JSON.parse(readFileSync(list, 'utf8')) as { plugins: Array<{ type: string }> }
    writeFileSync(noPortmap, JSON.stringify({ ...parsed, plugins: parsed.plugins.filter((p) => p.type !== 'portmap') }))
    ok(minicni('check', noPortmap, 'chain1', ns.path, caps))
    ok(minicni('del', list, 'chain1', ns.path, caps))
    await emptied(ns.name)
    assert.deepEqual(firewallLines(dnatChain), [], "portmap's rules gone")
    assert.deepEqual(ourLeases('10.231.50.'), [])
    assert.deepEqual(ourLeases('fd00:231:50:'), [])
    await daemonRan('chain1', [
      ['ADD', 0],
      ['CHECK', 0],
      ['DEL', 0]
    ])
  })

  it('isthmus as the IPAM of the reference bridge: allocates, answers an IPAM result, makes no link; CHECK and DEL', async () => {
    const ns = scope.addNetns('ipam')
    const bridge = scope.bridge('b')
    const name = `ipam-${scope.id}`
    const list = writeList(name, [
      {
        type: 'bridge',
        bridge,
        isGateway: true,
        // read by isthmus as the IPAM (the bridge hands it the whole netconf)
        ...daemon!.netconf,
        ipam: { type: 'isthmus', ranges: [[{ subnet: '10.231.51.0/24' }]], routes: [{ dst: '10.231.0.0/16' }] }
      }
    ])
    scope.finally(() => void minicni('del', list, 'ipam1', ns.path))
    const r = JSON.parse(ok(minicni('add', list, 'ipam1', ns.path)).stdout) as {
      ips: Array<{ address: string; gateway: string }>
    }
    assert.deepEqual(
      r.ips.map((i) => [i.address, i.gateway]),
      [['10.231.51.2/24', '10.231.51.1']]
    )
    assert.deepEqual(addresses('eth0', ns.name), ['10.231.51.2/24'])
    assert.deepEqual(addresses(bridge), ['10.231.51.1/24'], "the reference bridge put isthmus's gateway on its bridge")
    assert.ok(sh('ip', ['-n', ns.name, 'route']).includes('10.231.0.0/16 via 10.231.51.1 dev eth0'))
    assert.equal(link(bridgeIfName(name as never)), undefined, 'isthmus made no bridge of its own')
    assert.deepEqual(ourLeases('10.231.51.'), ['10.231.51.2'])
    // isthmus answers routes with their gateway, so the reference's CHECK (plugins#886) passes.
    ok(minicni('check', list, 'ipam1', ns.path))
    ok(minicni('del', list, 'ipam1', ns.path))
    assert.deepEqual(ourLeases('10.231.51.'), [])
    assert.deepEqual(linkNames(ns.name), ['lo'])
    await daemonRan('ipam1', [
      ['ADD', 0],
      ['CHECK', 0],
      ['DEL', 0]
    ])
  })

  it("isthmus delegating its IPAM to host-local: host-local's file holds the address; CHECK and DEL forwarded", async () => {
    const ns = scope.addNetns('hl')
    const bridge = scope.bridge('h')
    const dataDir = join(dir, 'host-local')
    const name = `hl-${scope.id}`
    const list = writeList(name, [
      isthmus({
        bridge,
        ipam: {
          type: 'host-local',
          dataDir,
          ranges: [[{ subnet: '10.231.52.0/24' }]],
          routes: [{ dst: '10.231.0.0/16', gw: '10.231.52.1' }]
        }
      })
    ])
    scope.finally(() => void minicni('del', list, 'hl1', ns.path))
    const r = JSON.parse(ok(minicni('add', list, 'hl1', ns.path)).stdout) as {
      ips: Array<{ address: string; interface: number }>
    }
    assert.deepEqual(r.ips, [{ address: '10.231.52.2/24', gateway: '10.231.52.1', interface: 2 }])
    assert.equal(readFileSync(join(dataDir, name, '10.231.52.2'), 'utf8'), 'hl1\r\neth0', "host-local's reservation")
    assert.deepEqual(addresses('eth0', ns.name), ['10.231.52.2/24'])
    assert.deepEqual(addresses(bridge), ['10.231.52.1/24'])
    assert.deepEqual(ourLeases('10.231.52.'), [], 'isthmus reserved nothing itself')
    ok(minicni('check', list, 'hl1', ns.path))
    ok(minicni('del', list, 'hl1', ns.path))
    assert.ok(!existsSync(join(dataDir, name, '10.231.52.2')), 'host-local released it')
    await emptied(ns.name)
    await daemonRan('hl1', [
      ['ADD', 0],
      ['CHECK', 0],
      ['DEL', 0]
    ])
  })

  it('capabilities ips, mac and portMappings, and CNI_ARGS with IgnoreUnknown and K8S_POD_*', async () => {
    const ns = scope.addNetns('caps')
    const bridge = scope.bridge('p')
    const list = writeList(`caps-${scope.id}`, [
      isthmus({
        bridge,
        capabilities: { ips: true, mac: true, portMappings: true },
        ipam: { ranges: [[{ subnet: '10.231.53.0/24' }]] }
      })
    ])
    const caps = JSON.stringify({
      ips: ['10.231.53.50/24'],
      mac: '02:31:53:00:00:50',
      portMappings: [{ hostPort: 18253, containerPort: 8080, protocol: 'tcp' }],
      bandwidth: { ingressRate: 1 }
    })
    scope.finally(() => void minicni('del', list, 'caps1', ns.path, caps))
    const r = JSON.parse(
      ok(
        minicni(
          'add',
          list,
          'caps1',
          ns.path,
          caps,
          'IgnoreUnknown=1;K8S_POD_NAME=p1;K8S_POD_NAMESPACE=default;FOO=bar'
        )
      ).stdout
    ) as { ips: Array<{ address: string }>; interfaces: Array<{ mac: string }> }
    assert.equal(r.ips[0]?.address, '10.231.53.50/24')
    assert.equal(r.interfaces[2]?.mac, '02:31:53:00:00:50')
    assert.equal(link('eth0', ns.name)?.address, '02:31:53:00:00:50')
    await serveIn(scope, ns.name, 8080, 'published by isthmus')
    assert.equal(
      await fetchTcp('10.231.53.1', 18253),
      'published by isthmus',
      "isthmus's own DNAT for runtimeConfig.portMappings"
    )
    // Without IgnoreUnknown an unknown CNI_ARGS key is refused, as the reference plugins do.
    const ns2 = scope.addNetns('caps2')
    const refused = minicni('add', list, 'caps2', ns2.path, '', 'FOO=bar')
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /ARGS: unknown args \["FOO=bar"\]/)
    ok(minicni('del', list, 'caps2', ns2.path))
    ok(minicni('del', list, 'caps1', ns.path, caps))
    assert.ok(!firewallLines(`${daemon!.netconf.chainPrefix}-DNAT`).some((l) => l.includes('18253')))
    assert.deepEqual(ourLeases('10.231.53.'), [])
    await emptied(ns.name)
    await daemonRan('caps1', [
      ['ADD', 0],
      ['DEL', 0]
    ])
    await daemonRan('caps2', [
      ['ADD', 1],
      ['DEL', 0]
    ])
  })
})
