/**
 * IPAM inspection after a mixed workload in one state directory: Docker containers on an
 * isthmus network through the real dockerd 20.10 and `isthmus serve --metrics-addr`, and CNI
 * attachments made by the plugin executable (ADD) beside them, some of each removed again
 * (docker rm, CNI DEL). `isthmus leases --json`, `/IpamDriver.Leases` and the store's records
 * must agree, and match the containers' real addresses and MACs; `/metrics` must parse and
 * count the workload; `/readyz` must follow the store; a non-loopback --metrics-addr is refused.
 * Subnets: two random /24s of 10.241.0.0/16; traffic only to the bridges and namespaces made here.
 */
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import type * as t from 'io-ts'
import { linuxDataplane } from '@isthmus/dataplane-linux'
import {
  containerNetwork,
  ensureBusyboxImage,
  ensureDockerd,
  mustDocker,
  mustRun,
  pluginCall,
  removeDockerObjects,
  run,
  startPlugin,
  uniquePrefix,
  waitUntil,
  type DockerDaemon,
  type PluginProcess,
  type RunResult
} from '@isthmus/testkit'
import { Inspect } from '../src/protocol/index.js'
import { parseMetrics, sample } from './support/prometheus.js'
import { readState } from './support/state.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const fromSource = (
  bin: string,
  args: ReadonlyArray<string>,
  opts: Parameters<typeof run>[1] = {}
): Promise<RunResult> =>
  run([process.execPath, '--import', 'tsx', '--conditions=@isthmus/source', join(root, bin), ...args], opts)
/** `isthmus <args>` from the sources, as `pnpm --silent isthmus` runs the build. */
const isthmus = (...args: string[]) => fromSource('packages/cli/src/bin/isthmus.ts', args)
/** The documented command itself: `pnpm --silent isthmus <args>` from the repository root (the build). */
const pnpmIsthmus = (...args: string[]) =>
  mustRun(['sh', '-c', `cd '${root}' && exec pnpm --silent isthmus "$@"`, 'sh', ...args])

const decoded = <A>(codec: t.Type<A, unknown>, u: unknown): A => {
  const r = codec.decode(u)
  assert.ok(E.isRight(r), `${codec.name}: ${JSON.stringify(u).slice(0, 500)}`)
  return r.right
}

interface CniAdd {
  readonly ip: string
  readonly mac: string
}

describe('leases and metrics after Docker and CNI attachments in one state directory', { timeout: 240_000 }, () => {
  const prefix = uniquePrefix()
  const name = (s: string) => `${prefix}-${s}`
  const block = 16 + 2 * Math.floor(Math.random() * 110)
  const dockerNet = `10.241.${block}`
  const cniNet = `10.241.${block + 1}`
  const chainPrefix = `ICL${randomBytes(3).toString('hex')}`
  const bridge = `${prefix}b`
  const namespaces = ['a', 'b', 'c'].map((tag) => name(tag))
  const added = new Map<string, CniAdd>()
  let daemon: DockerDaemon | undefined
  let plugin: PluginProcess | undefined
  let image = ''
  let metricsAddr = ''
  let networkId = ''

  const conf = () => ({
    cniVersion: '1.0.0',
    name: name('cni'),
    type: 'isthmus',
    bridge,
    isGateway: true,
    ipMasq: false,
    stateDir: plugin!.stateDir,
    chainPrefix,
    ipam: { ranges: [[{ subnet: `${cniNet}.0/24` }]] }
  })
  const cni = (command: 'ADD' | 'DEL', ns: string) =>
    fromSource('packages/cni-plugin/src/bin/cni-exec.ts', [], {
      input: JSON.stringify(conf()),
      env: {
        PATH: process.env['PATH'],
        CNI_COMMAND: command,
        CNI_CONTAINERID: `ctr-${ns}`,
        CNI_NETNS: `/var/run/netns/${ns}`,
        CNI_IFNAME: 'eth0',
        CNI_PATH: '/usr/lib/cni'
      }
    })
  const cniAdd = async (ns: string): Promise<void> => {
    const r = await cni('ADD', ns)
    assert.equal(r.code, 0, r.stdout + r.stderr)
    const result = JSON.parse(r.stdout) as {
      ips: Array<{ address: string }>
      interfaces: Array<{ name: string; mac: string; sandbox?: string }>
    }
    added.set(ns, { ip: result.ips[0]!.address, mac: result.interfaces.find((i) => i.sandbox !== undefined)!.mac })
  }
  const runDetached = (ctr: string, ...args: string[]) =>
    mustDocker('run', '-d', '--name', name(ctr), '--net', name('net'), ...args, image, 'sleep', '600')
  const metrics = async () => {
    const r = await fetch(`http://${metricsAddr}/metrics`)
    assert.equal(r.status, 200)
    return parseMetrics(await r.text())
  }
  const readyz = async () => (await fetch(`http://${metricsAddr}/readyz`)).status

  before(async () => {
    daemon = await ensureDockerd()
    image = await ensureBusyboxImage()
    plugin = await startPlugin(name('lsd'), ['--metrics-addr', '127.0.0.1:0'])
    await waitUntil('the metrics listener', async () => /"message":"metrics"/.test(plugin!.logs()))
    metricsAddr = (
      JSON.parse(
        plugin
          .logs()
          .split('\n')
          .find((l) => l.includes('"message":"metrics"'))!
      ) as { address: string }
    ).address

    const P = plugin.name
    networkId = (
      await mustDocker(
        'network',
        'create',
        '-d',
        P,
        '--ipam-driver',
        P,
        '--subnet',
        `${dockerNet}.0/24`,
        '--aux-address',
        `printer=${dockerNet}.10`,
        name('net')
      )
    ).stdout.trim()
    await runDetached('c1')
    await runDetached('c2')
    await runDetached('c3', '--ip', `${dockerNet}.50`, '--mac-address', '02:42:0a:f1:00:32')
    for (const ns of namespaces) {
      await mustRun(['ip', 'netns', 'add', ns])
      await cniAdd(ns)
    }
    // some of each go again
    await mustDocker('rm', '-f', name('c2'))
    const del = await cni('DEL', namespaces[1]!)
    assert.equal(del.code, 0, del.stdout + del.stderr)
    added.delete(namespaces[1]!)
  })

  after(async () => {
    await removeDockerObjects(prefix)
    if (plugin !== undefined) for (const ns of added.keys()) await cni('DEL', ns)
    for (const ns of namespaces) await run(['ip', 'netns', 'del', ns])
    await run(['ip', 'link', 'del', 'dev', bridge])
    await linuxDataplane({ chainPrefix }).removeFirewall()()
    await plugin?.dispose()
    await daemon?.stop()
  })

  it('lists exactly the live attachments, the same from the CLI and the socket, as the store holds them', async () => {
    const cli = await pnpmIsthmus('leases', '--state-dir', plugin!.stateDir, '--json')
    const fromCli = decoded(Inspect.LeasesResponse, JSON.parse(cli.stdout))
    const fromSocket = await pluginCall(plugin!.socket, '/IpamDriver.Leases', {})
    assert.equal(fromSocket.status, 200)
    assert.deepEqual(fromSocket.body, JSON.parse(cli.stdout), 'one document, from either side')

    const state = await readState(plugin!.stateDir)
    assert.equal(state.endpoints.length, 4, 'c1, c3, CNI a and c')
    assert.deepEqual(
      fromCli.attachments
        .map((a) => `${a.endpointId} ${a.addresses.map((x) => x.cidr).join()} ${a.mac} ${a.since} ${a.sandbox}`)
        .sort(),
      state.endpoints
        .map((e) => `${e.id} ${e.addresses.map((x) => x.cidr).join()} ${e.mac} ${e.createdAt} ${e.sandbox}`)
        .sort()
    )
    // every held address is listed once: as an attachment's or as a reservation
    const listed = [
      ...fromCli.attachments.flatMap((a) => a.addresses.map((x) => x.cidr.split('/')[0])),
      ...fromCli.reserved.map((r) => r.address)
    ]
    assert.deepEqual([...listed].sort(), state.leases.map((l) => l.address).sort())
  })

  it('matches the real containers: Docker endpoints by docker inspect, CNI attachments by their ADD results', async () => {
    const v = decoded(Inspect.LeasesResponse, (await pluginCall(plugin!.socket, '/IpamDriver.Leases', {})).body)
    for (const c of ['c1', 'c3']) {
      const att = await containerNetwork(name(c), name('net'))
      const a = v.attachments.find((x) => x.endpointId === att.EndpointID)
      assert.ok(a !== undefined, `${c} is listed`)
      assert.deepEqual(a.owner, { kind: 'docker', endpointId: att.EndpointID })
      assert.deepEqual(
        [a.addresses.map((x) => x.cidr), a.mac, a.networkId],
        [[`${att.IPAddress}/${att.IPPrefixLen}`], att.MacAddress, networkId]
      )
      assert.match(String(a.sandbox), /^\/var\/run\/docker\/netns\//, 'joined')
    }
    assert.equal(
      v.attachments.find((x) => x.mac === '02:42:0a:f1:00:32')?.addresses[0]?.cidr,
      `${dockerNet}.50/24`,
      '--ip and --mac-address of c3'
    )
    for (const [ns, add] of added) {
      const a = v.attachments.find((x) => x.owner.kind === 'container' && x.owner.containerId === `ctr-${ns}`)
      assert.ok(a !== undefined, `${ns} is listed`)
      assert.deepEqual(
        [a.owner, a.addresses.map((x) => x.cidr), a.mac, a.sandbox],
        [{ kind: 'container', containerId: `ctr-${ns}`, ifName: 'eth0' }, [add.ip], add.mac, `/var/run/netns/${ns}`]
      )
    }
    assert.equal(
      v.attachments.some((x) => x.owner.kind === 'container' && x.owner.containerId === `ctr-${namespaces[1]}`),
      false,
      'CNI DEL removed b'
    )
    assert.deepEqual(
      v.reserved.map((r) => `${r.kind} ${r.address}`).sort(),
      [`gateway ${cniNet}.1`, `gateway ${dockerNet}.1`, `runtime ${dockerNet}.10`].sort(),
      'the gateways, and the aux address Docker asked for with RequestAddress'
    )
  })

  it('filters by network, prints a table without --json, and lists networks the same from CLI and socket', async () => {
    const only = await isthmus('leases', '--state-dir', plugin!.stateDir, '--network', networkId.slice(0, 12), '--json')
    const v = decoded(Inspect.LeasesResponse, JSON.parse(only.stdout))
    assert.deepEqual(
      v.attachments.map((a) => a.owner.kind),
      ['docker', 'docker']
    )
    const table = await isthmus('leases', '--state-dir', plugin!.stateDir)
    assert.equal(table.code, 0)
    assert.match(table.stdout, /^NETWORK\s+OWNER\s+ADDRESSES\s+MAC/)
    // container ids shortened to 12 characters, as docker ps does
    assert.match(
      table.stdout,
      new RegExp(
        `cni ${`ctr-${namespaces[0]}`.slice(0, 12)}/eth0 +${added.get(namespaces[0]!)!.ip.replace(/\./g, '\\.')}`
      )
    )
    const missing = await isthmus('leases', '--state-dir', plugin!.stateDir, '--network', 'no-such-net', '--json')
    assert.deepEqual(
      [missing.code, missing.stdout, missing.stderr],
      [1, '', 'isthmus: network no-such-net not found\n']
    )

    const nets = await isthmus('networks', '--state-dir', plugin!.stateDir, '--json')
    assert.equal(nets.code, 0, nets.stderr)
    assert.deepEqual(JSON.parse(nets.stdout), (await pluginCall(plugin!.socket, '/IpamDriver.Networks', {})).body)
    const n = decoded(Inspect.NetworksResponse, JSON.parse(nets.stdout))
    assert.deepEqual(
      n.networks.map((x) => `${x.subnets[0]?.subnet} endpoints=${x.endpoints} used=${x.pools[0]?.used}`).sort(),
      [`${cniNet}.0/24 endpoints=2 used=3`, `${dockerNet}.0/24 endpoints=2 used=4`].sort()
    )
  })

  it('exports Prometheus text counting the workload', async () => {
    const m = await metrics()
    assert.equal(sample(m, 'isthmus_endpoints'), 4)
    assert.equal(sample(m, 'isthmus_networks'), 2)
    assert.equal(
      sample(m, 'isthmus_ipam_pool_used', { pool: `isthmus-local/${dockerNet}.0/24` }),
      4,
      'gateway, aux, c1, c3'
    )
    assert.equal(sample(m, 'isthmus_ipam_pool_size', { pool: `isthmus-local/${dockerNet}.0/24` }), 254)
    assert.equal(sample(m, 'isthmus_ipam_leases', { holder: 'attachment' }), 4)
    assert.equal(
      sample(m, 'isthmus_cnm_requests_total', { op: 'NetworkDriver.CreateEndpoint', outcome: 'ok' }),
      3,
      'c1, c2, c3'
    )
    assert.ok(
      (sample(m, 'isthmus_cnm_requests_total', { op: 'NetworkDriver.DeleteEndpoint', outcome: 'ok' }) ?? 0) >= 1,
      'docker rm of c2'
    )
    assert.ok((sample(m, 'process_resident_memory_bytes') ?? 0) > 0, 'process metrics too')

    await runDetached('c4')
    const after = await metrics()
    assert.equal(sample(after, 'isthmus_endpoints'), 5)
    assert.equal(sample(after, 'isthmus_cnm_requests_total', { op: 'NetworkDriver.CreateEndpoint', outcome: 'ok' }), 4)
    await mustDocker('rm', '-f', name('c4'))
  })

  it('is ready while the store works and answers 503 while it does not', async () => {
    assert.equal(await readyz(), 200)
    const away = `${plugin!.stateDir}.away`
    await rename(plugin!.stateDir, away)
    try {
      assert.equal(await readyz(), 503)
      assert.equal((await fetch(`http://${metricsAddr}/healthz`)).status, 200, 'still alive')
    } finally {
      await rename(away, plugin!.stateDir)
    }
    assert.equal(await readyz(), 200)
  })

  it('refuses a --metrics-addr that is not loopback, before it opens anything', async () => {
    const dir = await mkdtemp(join(tmpdir(), `${prefix}-refuse-`))
    try {
      const socket = join(dir, 'refused.sock')
      const r = await isthmus(
        'serve',
        '--metrics-addr',
        '0.0.0.0:9323',
        '--socket',
        socket,
        '--state-dir',
        join(dir, 'state')
      )
      assert.equal(r.code, 2)
      assert.match(r.stderr, /--metrics-addr 0\.0\.0\.0:9323: 0\.0\.0\.0 is not a loopback address/)
      assert.equal(r.stdout, '')
      assert.deepEqual([existsSync(socket), existsSync(join(dir, 'state'))], [false, false])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
