/**
 * End to end with the real dockerd: `isthmus serve --contrail-api … --vrouter-agent …` against
 * the simulators. `docker network create -d P --ipam-driver P -o tenant=demo -o network=blue`
 * binds the Docker network to the Contrail virtual network; `docker run` gets the address the
 * controller allocated and the MAC it derived, the agent holds the port, two containers reach
 * each other, and `docker rm` removes instance-ip, interface, VM and agent port.
 * Subnet: a random /24 of 10.253.128.0/17; traffic only between the containers made here.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import { macFromUuid } from '@isthmus/contrail/testing'
import {
  containerNetwork,
  ensureBusyboxImage,
  ensureDockerd,
  inContainer,
  mustDocker,
  pings,
  removeDockerObjects,
  startPlugin,
  uniquePrefix,
  waitUntil,
  type DockerDaemon,
  type PluginProcess
} from '@isthmus/testkit'
import { startSims, TENANT, VN, type Sims } from './support/helpers.js'

describe('docker on a Contrail network (real dockerd, simulated controller and agent)', { timeout: 180_000 }, () => {
  const prefix = uniquePrefix('ctrl')
  const name = (s: string) => `${prefix}-${s}`
  const third = 128 + Math.floor(Math.random() * 120)
  const cidr = `10.253.${third}.0/24`
  let daemon: DockerDaemon | undefined
  let plugin: PluginProcess | undefined
  let sims: Sims | undefined
  let image = ''
  let P = ''

  before(async () => {
    daemon = await ensureDockerd()
    image = await ensureBusyboxImage()
    sims = await startSims({}, cidr)
    plugin = await startPlugin(name('plugin'), [
      '--contrail-api',
      sims.contrail.url,
      '--vrouter-agent',
      sims.agent.url,
      '--contrail-owner',
      prefix
    ])
    P = plugin.name
  })

  after(async () => {
    await removeDockerObjects(prefix)
    await plugin?.dispose()
    await sims?.close()
    await daemon?.stop()
  })

  it('containers get the controller’s address and MAC, the agent holds their ports, they reach each other, and docker rm removes everything', async () => {
    const s = sims!
    const net = name('blue')
    await mustDocker(
      'network',
      'create',
      '-d',
      P,
      '--ipam-driver',
      P,
      '-o',
      `tenant=${TENANT}`,
      '-o',
      `network=${VN}`,
      '--subnet',
      cidr,
      net
    )
    assert.equal(
      s.contrail.created().length,
      0,
      'a network creates nothing in the controller: the virtual network is the operator’s'
    )

    const run = async (c: string) => {
      await mustDocker('run', '-d', '--name', name(c), '--net', net, image, 'sleep', '600')
      const n = await containerNetwork(name(c), net)
      const vmi = s.contrail.objects('virtual-machine-interface').find((o) => o.fq_name[2] === n.EndpointID)
      assert.ok(vmi !== undefined, `an interface named by the endpoint ${n.EndpointID}`)
      const iip = s.contrail
        .objects('instance-ip')
        .find((o) =>
          (o.props['virtual_machine_interface_refs'] as Array<{ uuid: string }> | undefined)?.some(
            (r) => r.uuid === vmi.uuid
          )
        )
      assert.ok(iip !== undefined, 'an instance-ip on that interface')
      assert.match(
        String(iip.fq_name[0]),
        /^isthmus-reservation-/,
        'the reservation RequestAddress made, taken over at CreateEndpoint'
      )
      assert.equal(n.IPAddress, iip.props['instance_ip_address'], 'docker shows the controller’s address')
      assert.equal(n.IPPrefixLen, 24)
      assert.equal(n.Gateway, `10.253.${third}.1`)
      assert.equal(n.MacAddress, macFromUuid(vmi.uuid), 'and the controller’s MAC')
      const inside = (await inContainer(name(c), 'ip', 'addr', 'show', 'eth0')).stdout
      assert.match(inside, new RegExp(`inet ${n.IPAddress.replace(/\./g, '\\.')}/24`))
      assert.match(inside, new RegExp(`link/ether ${n.MacAddress}`))
      assert.ok(await s.agent.waitForPort(vmi.uuid, 5_000), 'the agent holds the port')
      assert.equal(s.agent.ports().get(vmi.uuid)?.['vm-project-id'], s.projectId)
      assert.equal(s.agent.ports().get(vmi.uuid)?.['ip-address'], n.IPAddress)
      return { n, vmi: vmi.uuid, iip: iip.uuid }
    }
    const a = await run('a')
    const b = await run('b')
    // first free from the bottom, after the gateway (.1) and the DNS address (.2)
    assert.deepEqual([a.n.IPAddress, b.n.IPAddress], [`10.253.${third}.3`, `10.253.${third}.4`])
    assert.ok(await pings(name('a'), b.n.IPAddress, 3), 'a reaches b')
    assert.ok(await pings(name('b'), a.n.IPAddress, 3), 'b reaches a')

    await mustDocker('rm', '-f', name('a'))
    await waitUntil(
      'the controller to forget container a',
      async () => s.contrail.get(a.vmi) === undefined,
      10_000,
      100
    )
    assert.equal(s.contrail.get(a.iip), undefined, 'instance-ip gone')
    assert.equal(
      s.contrail.objects('virtual-machine').filter((o) => o.fq_name[0] === a.n.EndpointID).length,
      0,
      'VM gone'
    )
    assert.ok(!s.agent.has(a.vmi), 'agent port gone')
    assert.ok(s.agent.has(b.vmi), 'b untouched')

    await mustDocker('rm', '-f', name('b'))
    await mustDocker('network', 'rm', net)
    await waitUntil(
      'the controller to hold nothing of ours',
      async () => s.contrail.created().length === 0,
      10_000,
      100
    )
    assert.equal(s.agent.ports().size, 0)
    // the plugin reported no failed request along the way
    assert.doesNotMatch(plugin!.logs(), /"level":"error"/)
  })
})
