/**
 * Networks against the real dockerd 20.10 and `isthmus serve` (one plugin process for the file):
 * create with every IPAM option, inspect, remove; an internal network; the failures a user can
 * cause, each one sentence on the CLI and no state left; isthmus as IPAM driver alone under
 * Docker's bridge driver. Subnets: a random block of 10.250.0.0/17 and fd00:250::/48.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import { bridgeIfName, type NetworkId } from '@isthmus/core'
import {
  containerNetwork,
  docker,
  ensureBusyboxImage,
  ensureDockerd,
  inContainer,
  linkExists,
  linkInfo,
  mustDocker,
  removeDockerObjects,
  startPlugin,
  uniquePrefix,
  type DockerDaemon,
  type PluginProcess
} from '@isthmus/testkit'
import { createdNetworksInLog, readState, summary, type PluginState } from './support/state.js'

interface NetworkInspect {
  readonly Id: string
  readonly Driver: string
  readonly EnableIPv6: boolean
  readonly Internal: boolean
  readonly Options: Record<string, string>
  readonly IPAM: {
    readonly Driver: string
    readonly Config: ReadonlyArray<{
      Subnet: string
      IPRange?: string
      Gateway?: string
      AuxiliaryAddresses?: Record<string, string>
    }>
  }
}

const inspectNetwork = async (name: string): Promise<NetworkInspect> =>
  (JSON.parse((await mustDocker('network', 'inspect', name)).stdout) as NetworkInspect[])[0]!

/** What a state holds in one subnet (pools and leases), for "nothing of it is left". */
const inSubnet = (s: PluginState, base: string) => ({
  pools: s.pools.filter((p) => p.subnet.startsWith(base)).map((p) => p.id),
  leases: s.leases
    .filter((l) => l.address.startsWith(base))
    .map((l) => `${l.address} ${l.owner.kind}`)
    .sort()
})

describe('docker networks on isthmus', { timeout: 240_000 }, () => {
  const prefix = uniquePrefix()
  // eight /24s of 10.250.0.0/17 for this run; the containers file takes 10.250.128.0/17
  const block = 8 * Math.floor(Math.random() * 16)
  const v4 = (i: number) => `10.250.${block + i}`
  // no zero group (fd00:250:0:: prints as fd00:250::), so the text compares as the kernel prints it
  const v6 = (i: number) => `fd00:250:${(0x100 + block + i).toString(16)}:`
  let daemon: DockerDaemon | undefined
  let plugin: PluginProcess | undefined
  let image = ''
  let P = ''

  before(async () => {
    daemon = await ensureDockerd()
    image = await ensureBusyboxImage()
    plugin = await startPlugin(`${prefix}-nets`)
    P = plugin.name
  })

  after(async () => {
    await removeDockerObjects(prefix)
    await plugin?.dispose()
    await daemon?.stop()
  })

  it('creates a network with subnet, gateway, ip-range, aux address, IPv6 and MTU; inspect shows them; rm removes everything', async () => {
    const net = `${prefix}-opts`
    const b = v4(0)
    await mustDocker(
      'network',
      'create',
      '-d',
      P,
      '--ipam-driver',
      P,
      '--subnet',
      `${b}.0/24`,
      '--gateway',
      `${b}.254`,
      '--ip-range',
      `${b}.128/25`,
      '--aux-address',
      `host1=${b}.10`,
      '--ipv6',
      '--subnet',
      `${v6(0)}:/64`,
      '-o',
      'com.docker.network.driver.mtu=1400',
      net
    )
    const ins = await inspectNetwork(net)
    assert.equal(ins.Driver, P)
    assert.equal(ins.IPAM.Driver, P)
    assert.deepEqual(ins.IPAM.Config, [
      { Subnet: `${b}.0/24`, IPRange: `${b}.128/25`, Gateway: `${b}.254`, AuxiliaryAddresses: { host1: `${b}.10` } },
      { Subnet: `${v6(0)}:/64` }
    ])
    assert.equal(ins.EnableIPv6, true)
    assert.equal(ins.Internal, false)
    assert.deepEqual(ins.Options, { 'com.docker.network.driver.mtu': '1400' })

    // the plugin's view: the network, its bridge with the gateways and the MTU, and only the
    // gateway and aux leases while no container runs
    const state = await readState(plugin!.stateDir)
    const record = state.networks.find((n) => n.id === ins.Id)
    assert.ok(record?.bridge !== undefined, 'the network is stored with its bridge')
    assert.equal(record.mtu, 1400)
    const bridge = await linkInfo(record.bridge)
    assert.equal(bridge?.mtu, 1400)
    assert.ok(bridge.addresses.includes(`${b}.254/24`), `bridge addresses ${bridge.addresses.join(' ')}`)
    assert.ok(bridge.addresses.includes(`${v6(0)}:1/64`), `bridge addresses ${bridge.addresses.join(' ')}`)
    assert.deepEqual(inSubnet(state, b).leases, [`${b}.10 runtime`, `${b}.254 gateway`])
    assert.deepEqual(inSubnet(state, v6(0)).leases, [`${v6(0)}:1 gateway`])

    // a container: its address from --ip-range, IPv6 from the v6 subnet, the network's MTU; and
    // --ip may name an address outside --ip-range (Docker's rule)
    const run = await mustDocker('run', '--rm', '--net', net, image, 'ip', '-o', 'addr', 'show', 'eth0')
    const host = Number(new RegExp(`inet ${b.replace(/\./g, '\\.')}\\.(\\d+)/24`).exec(run.stdout)?.[1])
    assert.ok(host >= 128 && host <= 253, `an address of ${b}.128/25: ${run.stdout}`)
    assert.match(run.stdout, new RegExp(`inet6 ${v6(0)}:[0-9a-f]+/64`))
    assert.match(
      (await mustDocker('run', '--rm', '--net', net, image, 'ip', 'link', 'show', 'eth0')).stdout,
      /mtu 1400/
    )
    const fixed = await mustDocker(
      'run',
      '--rm',
      '--net',
      net,
      '--ip',
      `${b}.20`,
      '--ip6',
      `${v6(0)}:20`,
      image,
      'ip',
      '-o',
      'addr',
      'show',
      'eth0'
    )
    assert.match(fixed.stdout, new RegExp(`inet ${b.replace(/\./g, '\\.')}\\.20/24`))
    assert.match(fixed.stdout, new RegExp(`inet6 ${v6(0)}:20/64`))

    await mustDocker('network', 'rm', net)
    assert.equal(await linkExists(record.bridge), false, `bridge ${record.bridge} removed`)
    const afterRm = await readState(plugin!.stateDir)
    assert.equal(
      afterRm.networks.find((n) => n.id === ins.Id),
      undefined
    )
    assert.deepEqual(inSubnet(afterRm, b), { pools: [], leases: [] })
    assert.deepEqual(inSubnet(afterRm, v6(0)), { pools: [], leases: [] })
  })

  it('runs an internal network: containers reach each other, no default route, no docker_gwbridge', async () => {
    const net = `${prefix}-int`
    const b = v4(1)
    await mustDocker('network', 'create', '-d', P, '--ipam-driver', P, '--internal', '--subnet', `${b}.0/24`, net)
    assert.equal((await inspectNetwork(net)).Internal, true)
    await mustDocker('run', '-d', '--name', `${prefix}-int1`, '--net', net, image, 'sleep', '600')
    const first = await containerNetwork(`${prefix}-int1`, net)
    assert.equal(first.Gateway, '', 'Join gave no gateway')
    const r = await mustDocker(
      'run',
      '--rm',
      '--net',
      net,
      image,
      'sh',
      '-c',
      `ip link; echo @@; ip route; echo @@; ping -c1 -W2 ${first.IPAddress}`
    )
    const [links, routes, ping] = r.stdout.split('@@\n')
    assert.match(links!, /eth0/)
    assert.doesNotMatch(links!, /eth1/, 'no docker_gwbridge interface')
    assert.doesNotMatch(routes!, /default/)
    assert.match(routes!, new RegExp(`${b.replace(/\./g, '\\.')}\\.0/24 dev eth0`))
    assert.match(ping!, /1 packets received/)
    // and the running one the same: one network only
    assert.doesNotMatch((await inContainer(`${prefix}-int1`, 'ip', 'link')).stdout, /eth1/)
    await mustDocker('rm', '-f', `${prefix}-int1`)
    await mustDocker('network', 'rm', net)
    assert.deepEqual(inSubnet(await readState(plugin!.stateDir), b), { pools: [], leases: [] })
  })

  it('answers each failing create with one sentence on the CLI and keeps no state of it', async () => {
    const b = v4(2)
    const first = `${prefix}-ov1`
    await mustDocker('network', 'create', '-d', P, '--ipam-driver', P, '--subnet', `${b}.0/24`, first)
    const firstId = (await inspectNetwork(first)).Id
    const before = summary(await readState(plugin!.stateDir))

    const failing: Array<{ args: string[]; stderr: string }> = [
      {
        // overlapping subnet in our address space: refused by the IPAM driver
        args: ['--subnet', `${b}.128/25`],
        stderr: `Error response from daemon: IpamDriver.RequestPool: pool ${b}.128/25 overlaps pool ${b}.0/24 in address space isthmus-local\n`
      },
      {
        // the same subnet: the pool is shared (Docker's identical request), the network refused
        args: ['--subnet', `${b}.0/24`],
        stderr: `Error response from daemon: NetworkDriver.CreateNetwork: invalid configuration: subnet ${b}.0/24 overlaps ${b}.0/24 of network ${firstId.slice(0, 12)} on this host\n`
      },
      {
        // ... and with another gateway, refused before the first network's gateway moves
        args: ['--subnet', `${b}.0/24`, '--gateway', `${b}.9`],
        stderr: `Error response from daemon: failed to allocate gateway (${b}.9): IpamDriver.RequestAddress: invalid configuration: subnet ${b}.0/24 is already used by another network, with gateway ${b}.1\n`
      },
      {
        args: ['--subnet', `${v4(3)}.0/24`, '-o', 'com.docker.network.driver.mtu=abc'],
        stderr:
          'Error response from daemon: NetworkDriver.CreateNetwork: invalid configuration: option com.docker.network.driver.mtu=abc must be a whole number from 68 to 65535\n'
      },
      {
        args: ['--subnet', `${v4(3)}.0/24`, '-o', 'com.docker.network.bridge.name=no/such:name'],
        stderr:
          'Error response from daemon: NetworkDriver.CreateNetwork: invalid configuration: option com.docker.network.bridge.name=no/such:name is not a valid interface name (1 to 15 letters, digits, _ . or -, not starting with . or -)\n'
      }
    ]
    for (const [i, f] of failing.entries()) {
      const name = `${prefix}-bad${i}`
      const r = await docker('network', 'create', '-d', P, '--ipam-driver', P, ...f.args, name)
      assert.equal(r.code, 1, `${f.args.join(' ')}: ${r.stderr}`)
      assert.equal(r.stderr, f.stderr)
      assert.equal((await docker('network', 'inspect', name)).code, 1, `no network ${name}`)
      assert.deepEqual(summary(await readState(plugin!.stateDir)), before, `${f.args.join(' ')} left no state`)
    }
    // networks the driver refused have no bridge either
    const refused = createdNetworksInLog(plugin!.logs()).filter((n) => !n.ok)
    assert.equal(refused.length, 3)
    for (const n of refused) assert.equal(await linkExists(bridgeIfName(n.id)), false)
    // the first network kept its gateway through all of it
    const gw = (await readState(plugin!.stateDir)).pools.find((p) => p.subnet === `${b}.0/24`)?.gateway
    assert.equal(gw, `${b}.1`)

    await mustDocker('network', 'rm', first)
    assert.equal(await linkExists(bridgeIfName(firstId as NetworkId)), false)
    assert.deepEqual(inSubnet(await readState(plugin!.stateDir), b), { pools: [], leases: [] })
  })

  it('works as IPAM driver alone under Docker bridge driver: addresses from its pool, released at rm', async () => {
    const net = `${prefix}-ipam`
    const b = v4(4)
    await mustDocker('network', 'create', '-d', 'bridge', '--ipam-driver', P, '--subnet', `${b}.0/24`, net)
    const ins = await inspectNetwork(net)
    assert.equal(ins.Driver, 'bridge')
    assert.equal(ins.IPAM.Driver, P)
    const created = await readState(plugin!.stateDir)
    assert.equal(
      created.networks.find((n) => n.id === ins.Id),
      undefined,
      'not our network, only our pool'
    )
    assert.deepEqual(inSubnet(created, b).leases, [`${b}.1 gateway`])

    const ctr = `${prefix}-ipam1`
    await mustDocker('run', '-d', '--name', ctr, '--net', net, image, 'sleep', '600')
    const att = await containerNetwork(ctr, net)
    assert.equal(att.Gateway, `${b}.1`)
    assert.match(att.IPAddress, new RegExp(`^${b.replace(/\./g, '\\.')}\\.\\d+$`))
    assert.deepEqual(
      inSubnet(await readState(plugin!.stateDir), b).leases,
      [`${att.IPAddress} runtime`, `${b}.1 gateway`].sort()
    )
    assert.match((await inContainer(ctr, 'ping', '-c1', '-W2', `${b}.1`)).stdout, /1 packets received/)

    await mustDocker('rm', '-f', ctr)
    assert.deepEqual(inSubnet(await readState(plugin!.stateDir), b).leases, [`${b}.1 gateway`], 'released at docker rm')
    await mustDocker('network', 'rm', net)
    assert.deepEqual(
      inSubnet(await readState(plugin!.stateDir), b),
      { pools: [], leases: [] },
      'pool released at network rm'
    )
  })
})
