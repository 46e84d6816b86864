/**
 * Containers against the real dockerd 20.10 and `isthmus serve` (one plugin process for the
 * file, killed and started again in the middle): reachability, --ip/--mac-address, connect and
 * disconnect, published ports, pool exhaustion, 50 `docker run --rm` cycles, and a SIGKILL of
 * the plugin under running containers, ending with everything removed and nothing left.
 * Subnets: a random block of 10.250.128.0/17; host ports 18080-18099; traffic only to the
 * containers and bridges made here and to loopback.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import { bridgeIfName, type NetworkId } from '@isthmus/core'
import {
  bridgePorts,
  containerNetwork,
  containerNetworks,
  docker,
  ensureBusyboxImage,
  ensureDockerd,
  httpGet,
  httpGetFrom,
  inContainer,
  linkExists,
  mustDocker,
  mustRun,
  pings,
  removeDockerObjects,
  startPlugin,
  uniquePrefix,
  waitUntil,
  type DockerDaemon,
  type PluginProcess
} from '@isthmus/testkit'
import { endpointIdsInLog, failedRequestsInLog, linksLeftOf, readState, summary } from './support/state.js'

/**
 * The CLI's stderr without the line docker 20.10's client may add after a failed start: its wait
 * for the container is cancelled ("error waiting for container: context canceled"), a client
 * race that says nothing about the failure.
 */
const cliError = (stderr: string): string =>
  stderr
    .split('\n')
    .filter((l) => !/^time="[^"]*" level=error msg="error waiting for container: context canceled"$/.test(l))
    .join('\n')

/** A regular expression matching `s` literally (addresses hold dots). */
const literal = (s: string) => new RegExp(s.replace(/[.]/g, '\\.'))

describe('docker containers on isthmus', { timeout: 280_000 }, () => {
  const prefix = uniquePrefix()
  const block = 128 + 8 * Math.floor(Math.random() * 16)
  const v4 = (i: number) => `10.250.${block + i}`
  const port = 18080 + Math.floor(Math.random() * 20)
  const name = (s: string) => `${prefix}-${s}`
  const net1 = name('n1')
  const net2 = name('n2')
  const networkIds: string[] = []
  let daemon: DockerDaemon | undefined
  let plugin: PluginProcess | undefined
  let image = ''
  let P = ''

  const create = async (net: string, ...args: string[]) => {
    const id = (await mustDocker('network', 'create', '-d', P, '--ipam-driver', P, ...args, net)).stdout.trim()
    networkIds.push(id)
    return id
  }
  const runDetached = (ctr: string, net: string, ...args: string[]) =>
    mustDocker('run', '-d', '--name', name(ctr), '--net', net, ...args, image, 'sleep', '600')

  before(async () => {
    daemon = await ensureDockerd()
    image = await ensureBusyboxImage()
    plugin = await startPlugin(name('ctrs'))
    P = plugin.name
    await create(net1, '--subnet', `${v4(0)}.0/24`)
    await create(net2, '--subnet', `${v4(1)}.0/24`)
    await Promise.all([runDetached('c1', net1), runDetached('c2', net1)])
  })

  after(async () => {
    await removeDockerObjects(prefix)
    await plugin?.dispose()
    await daemon?.stop()
  })

  it('lets two containers on one network reach each other by address, and each its gateway', async () => {
    const a = await containerNetwork(name('c1'), net1)
    const b = await containerNetwork(name('c2'), net1)
    assert.notEqual(a.IPAddress, b.IPAddress)
    assert.equal(a.Gateway, `${v4(0)}.1`)
    assert.ok(await pings(name('c1'), b.IPAddress), 'c1 -> c2')
    assert.ok(await pings(name('c2'), a.IPAddress), 'c2 -> c1')
    assert.ok(await pings(name('c1'), a.Gateway), 'c1 -> gateway')
    assert.ok(await pings(name('c2'), b.Gateway), 'c2 -> gateway')
  })

  it('honours --ip and --mac-address, and refuses a used --ip with a clear error and no state', async () => {
    const ip = `${v4(0)}.50`
    const mac = `02:42:0a:fa:${(block % 256).toString(16).padStart(2, '0')}:32`
    await runDetached('c3', net1, '--ip', ip, '--mac-address', mac)
    const inside = (await inContainer(name('c3'), 'ip', '-o', 'addr', 'show', 'eth0')).stdout
    assert.match(inside, literal(`inet ${ip}/24`))
    assert.match((await inContainer(name('c3'), 'ip', 'link', 'show', 'eth0')).stdout, new RegExp(`link/ether ${mac}`))
    const att = await containerNetwork(name('c3'), net1)
    assert.equal(att.IPAddress, ip)
    assert.equal(att.MacAddress, mac)

    const before = summary(await readState(plugin!.stateDir))
    const endpointsBefore = endpointIdsInLog(plugin!.logs()).length
    const r = await docker('run', '--name', name('c3dup'), '--net', net1, '--ip', ip, image, 'true')
    assert.equal(r.code, 125)
    assert.equal(
      cliError(r.stderr),
      `docker: Error response from daemon: IpamDriver.RequestAddress: address ${ip} is already in use by endpoint ${att.EndpointID} in address space isthmus-local.\n`
    )
    assert.deepEqual(summary(await readState(plugin!.stateDir)), before, 'no endpoint record, no extra lease')
    assert.equal(endpointIdsInLog(plugin!.logs()).length, endpointsBefore, 'no endpoint, so no link, was made')
    await mustDocker('rm', name('c3dup'))
  })

  it('connects a running container to a second network with --ip, and disconnects it', async () => {
    const ip = `${v4(1)}.77`
    await mustDocker('network', 'connect', '--ip', ip, net2, name('c1'))
    assert.match((await inContainer(name('c1'), 'ip', '-o', 'addr', 'show', 'eth1')).stdout, literal(`inet ${ip}/24`))
    const att = await containerNetwork(name('c1'), net2)
    assert.equal(att.IPAddress, ip)
    assert.ok(await pings(name('c1'), `${v4(1)}.1`), 'the second network gateway')

    await mustDocker('network', 'disconnect', net2, name('c1'))
    assert.doesNotMatch((await inContainer(name('c1'), 'ip', 'link')).stdout, /eth1/)
    assert.equal((await containerNetworks(name('c1')))[net2], undefined)
    const state = await readState(plugin!.stateDir)
    assert.equal(
      state.endpoints.find((e) => e.id === att.EndpointID),
      undefined
    )
    assert.deepEqual(
      state.leases.filter((l) => l.address.startsWith(`${v4(1)}.`)).map((l) => l.address),
      [`${v4(1)}.1`]
    )
    assert.deepEqual(await linksLeftOf([att.EndpointID]), [])
  })

  it(`publishes -p ${port}:80 to the host (loopback and gateway) and other containers, until the container goes`, async () => {
    const web = name('web')
    await mustDocker(
      'run',
      '-d',
      '--name',
      web,
      '--net',
      net1,
      '-p',
      `${port}:80`,
      image,
      'sh',
      '-c',
      'mkdir -p /www && echo isthmus-published > /www/index.html && exec httpd -f -p 80 -h /www'
    )
    const gateway = `${v4(0)}.1`
    await waitUntil(
      'httpd to answer on the published port',
      async () => (await httpGet('127.0.0.1', port, '/index.html')).ok,
      10_000,
      100
    )
    for (const host of ['127.0.0.1', gateway]) {
      const got = await httpGet(host, port, '/index.html')
      assert.ok(
        got.ok && /^HTTP\/1\.[01] 200/.test(got.text) && got.text.includes('isthmus-published'),
        `${host}:${port}: ${JSON.stringify(got)}`
      )
    }
    // another container on the network, through the published port on the gateway (hairpin)
    assert.match(await httpGetFrom(name('c2'), gateway, port, '/index.html'), /isthmus-published/)

    await mustDocker('rm', '-f', web)
    const gone = await httpGet('127.0.0.1', port, '/index.html')
    assert.deepEqual(gone, { ok: false, error: 'ECONNREFUSED' })
    const nat = (await mustRun(['iptables-save', '-t', 'nat'])).stdout
    assert.doesNotMatch(nat, new RegExp(`--dport ${port} .*isthmus`), 'no DNAT rule left')
  })

  it('fails the container after the last free address of a /29 with one sentence, and keeps no state of it', async () => {
    const small = name('n29')
    const smallId = await create(small, '--subnet', `${v4(2)}.0/29`)
    // 8 addresses: network, broadcast, gateway, and 5 for containers
    await Promise.all([1, 2, 3, 4, 5].map((i) => runDetached(`s${i}`, small)))
    const before = summary(await readState(plugin!.stateDir))
    const r = await docker('run', '--name', name('s6'), '--net', small, image, 'true')
    assert.equal(r.code, 125)
    assert.equal(
      cliError(r.stderr),
      `docker: Error response from daemon: IpamDriver.RequestAddress: no free address left in pool isthmus-local/${v4(2)}.0/29.\n`
    )
    assert.deepEqual(summary(await readState(plugin!.stateDir)), before)
    await mustDocker('rm', '-f', ...[1, 2, 3, 4, 5, 6].map((i) => name(`s${i}`)))
    const left = (await readState(plugin!.stateDir)).endpoints.filter((e) => e.networkId === smallId)
    assert.deepEqual(
      left.map((e) => e.id),
      [],
      `every endpoint goes with docker rm; failed calls: ${JSON.stringify(failedRequestsInLog(plugin!.logs()))}`
    )
    await mustDocker('network', 'rm', small)
  })

  it('leaves no link and no address behind after 50 cycles of docker run --rm', async () => {
    const cycles = name('n50')
    const id = await create(cycles, '--subnet', `${v4(3)}.0/24`)
    const started = Date.now()
    for (let i = 0; i < 50; i++) await mustDocker('run', '--rm', '--net', cycles, image, 'true')
    const ms = Date.now() - started
    const ids = endpointIdsInLog(plugin!.logs(), id)
    assert.equal(ids.length, 50, 'fifty endpoints were made')
    assert.deepEqual(await linksLeftOf(ids), [], 'no istv/istc link of them on the host')
    // Most took one of the veth pairs the daemon keeps ready: only its spares are left on the bridge.
    await waitUntil(
      'the spares to be refilled',
      async () => (await bridgePorts(bridgeIfName(id as NetworkId))).length === 2,
      10_000,
      50
    )
    const ports = await bridgePorts(bridgeIfName(id as NetworkId))
    assert.ok(
      ports.every((p) => p.alias === 'isthmus-spare'),
      JSON.stringify(ports)
    )
    const state = await readState(plugin!.stateDir)
    assert.deepEqual(
      state.endpoints.filter((e) => e.networkId === id),
      []
    )
    assert.deepEqual(
      state.leases.filter((l) => l.address.startsWith(`${v4(3)}.`)).map((l) => `${l.address} ${l.owner.kind}`),
      [`${v4(3)}.1 gateway`]
    )
    await mustDocker('network', 'rm', cycles)
    for (const p of ports) assert.equal(await linkExists(p.name), false, `spare ${p.name} goes with the network`)
    console.log(`# 50 x docker run --rm: ${ms} ms (${Math.round(ms / 50)} ms each)`)
  })

  it('survives a SIGKILL of the plugin: running containers still talk, new ones get free addresses, all is removed cleanly', async () => {
    const a = await containerNetwork(name('c1'), net1)
    const b = await containerNetwork(name('c2'), net1)
    const c = await containerNetwork(name('c3'), net1)
    await plugin!.kill('SIGKILL')
    await plugin!.start() // same socket (stale file replaced), same state directory
    assert.ok(await pings(name('c1'), b.IPAddress), 'c1 -> c2 after the restart')
    assert.ok(await pings(name('c2'), a.IPAddress), 'c2 -> c1 after the restart')

    await runDetached('c4', net1)
    const d = await containerNetwork(name('c4'), net1)
    assert.ok(![a.IPAddress, b.IPAddress, c.IPAddress, a.Gateway].includes(d.IPAddress), `${d.IPAddress} is unused`)
    assert.ok(await pings(name('c4'), a.IPAddress), 'the new container reaches the old ones')
    const leases: ReadonlyArray<string> = (await readState(plugin!.stateDir)).leases.map((l) => l.address)
    for (const x of [a, b, c, d]) assert.ok(leases.includes(x.IPAddress), `${x.IPAddress} is leased`)

    // everything goes, and each call of the teardown succeeds
    await mustDocker('rm', '-f', name('c1'), name('c2'), name('c3'), name('c4'))
    const ports = (await Promise.all(networkIds.map((n) => bridgePorts(bridgeIfName(n as NetworkId))))).flat()
    await mustDocker('network', 'rm', net1, net2)
    for (const p of ports) {
      assert.equal(await linkExists(p.name), false, `${p.name} (${p.alias ?? 'no alias'}) goes with its network`)
    }
    const end = await readState(plugin!.stateDir)
    assert.deepEqual(
      {
        networks: end.networks,
        endpoints: end.endpoints,
        pools: end.pools,
        leases: end.leases
      },
      { networks: [], endpoints: [], pools: [], leases: [] }
    )
    assert.deepEqual(await linksLeftOf(endpointIdsInLog(plugin!.logs())), [], 'no isthmus link of this run on the host')
    for (const n of networkIds) {
      assert.equal(await linkExists(bridgeIfName(n as NetworkId)), false, `bridge of ${n.slice(0, 12)}`)
    }
    assert.deepEqual(
      failedRequestsInLog(plugin!.logs()).map((f) => `${f.op} ${f.error}`),
      ['IpamDriver.RequestAddress AddressInUse', 'IpamDriver.RequestAddress PoolExhausted'],
      'no call failed but the two refused on purpose'
    )
  })
})
