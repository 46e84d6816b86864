/**
 * The ciao launcher against the real dockerd 20.10 and kernel: the plugin embedded in this
 * process on TCP loopback (discovery file in /etc/docker/plugins), two tenants on the SAME subnet
 * (a random 10.243.x.0/24), each with a CNCI stand-in (a netns holding the gateway), two
 * containers each on pre-created VNICs. Tenant A's containers are .2 and .3, tenant B's .3 and .4:
 * .3 exists in both (the answer must come from the own tenant's MAC), .2 and .4 in one only (the
 * other tenant must not reach it). Traffic goes only to the namespaces and containers made here.
 */
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import {
  containerNetwork,
  docker,
  ensureBusyboxImage,
  ensureDockerd,
  hostLinks,
  inContainer,
  mustRun,
  pings,
  removeDockerObjects,
  run,
  waitUntil,
  type DockerDaemon
} from '@isthmus/testkit'
import { createCnci, deleteCnci } from '../src/host.js'
import { startLauncher, vnics, type Instance, type Launcher, type Tenant } from '../src/launcher.js'

const hex = randomBytes(3).toString('hex')
const PLUGIN = `ciaotest${hex}`
const LINKS = `c${hex}`
const X = 100 + Math.floor(Math.random() * 100)
const SUBNET = `10.243.${X}.0/24`
const ip = (n: number) => `10.243.${X}.${n}`
const mac = (tenant: number, n: number) =>
  `02:c1:a0:${hex.slice(0, 2)}:${tenant}${hex.slice(2, 3)}:${n.toString(16).padStart(2, '0')}`
const cnci = (t: string) => ({ netns: `${LINKS}${t}cnci`, hostIf: `${LINKS}g${t}` })

/** The MAC a container's neighbour table holds for `address` (after a ping). */
const neighbourMac = async (container: string, address: string): Promise<string | undefined> =>
  /lladdr ([0-9a-f:]{17})/.exec((await inContainer(container, 'ip', 'neigh', 'show', address)).stdout)?.[1]

const linksOfRun = async () => (await hostLinks()).filter((l) => l.startsWith(LINKS))

describe('ciao launcher: two tenants on one subnet over VNICs', { timeout: 240_000 }, () => {
  let daemon: DockerDaemon | undefined
  let launcher: Launcher | undefined
  let stateDir = ''
  let image = ''
  const tenants: Tenant[] = []
  const instances: Record<string, Instance> = {}

  before(async () => {
    daemon = await ensureDockerd()
    image = await ensureBusyboxImage()
    stateDir = await mkdtemp(join(tmpdir(), `${PLUGIN}-`))
    launcher = await startLauncher({ pluginName: PLUGIN, stateDir, linkPrefix: LINKS })
    for (const [t, id] of [
      ['a', 'ta'],
      ['b', 'tb']
    ] as const) {
      const tenant = await launcher.addTenant({ id, subnet: SUBNET, gateway: ip(1) })
      tenants.push(tenant)
      await createCnci(cnci(t).netns, tenant.bridge, cnci(t).hostIf, `${ip(1)}/24`)
    }
    const [ta, tb] = tenants as [Tenant, Tenant]
    const start = async (key: string, tenant: Tenant, t: number, n: number) => {
      instances[key] = await launcher!.startInstance(tenant, {
        name: `${PLUGIN}-${key}`,
        address: ip(n),
        mac: mac(t, n),
        image,
        command: ['sleep', '600']
      })
    }
    await start('a2', ta, 1, 2)
    await start('a3', ta, 1, 3)
    await start('b3', tb, 2, 3)
    await start('b4', tb, 2, 4)
  })

  // Everything this run made, whatever state a failure left: containers and networks by name,
  // links and namespaces by prefix, the discovery file with the plugin, the state directory.
  after(async () => {
    await removeDockerObjects(PLUGIN)
    await launcher?.close()
    for (const t of ['a', 'b']) await deleteCnci(cnci(t).netns, cnci(t).hostIf).catch(() => undefined)
    for (const l of await linksOfRun()) await run(['ip', 'link', 'del', l])
    const rules = (await run(['iptables', '-S', 'FORWARD'])).stdout
      .split('\n')
      .filter((r) => r.includes(`isthmus-ciao:${LINKS}`))
    for (const r of rules) {
      await run([
        'iptables',
        ...r
          .replace(/^-A /, '-D ')
          .split(' ')
          .map((w) => w.replace(/^"|"$/g, ''))
      ])
    }
    await rm(stateDir, { recursive: true, force: true })
    await daemon?.stop()
  })

  it('gives each container its VNIC: the MAC and address inside are the ones the launcher registered', async () => {
    for (const inst of Object.values(instances)) {
      const att = await containerNetwork(inst.name, inst.tenant.network)
      assert.equal(att.IPAddress, inst.address, inst.name)
      assert.equal(att.MacAddress, inst.mac, inst.name)
      assert.match(
        (await inContainer(inst.name, 'ip', '-o', 'addr', 'show', 'eth0')).stdout,
        new RegExp(`inet ${inst.address.replace(/\./g, '\\.')}/24 `)
      )
      assert.match(
        (await inContainer(inst.name, 'ip', 'link', 'show', 'eth0')).stdout,
        new RegExp(`link/ether ${inst.mac} `)
      )
      // Docker moved the VNIC's container side in: it is no longer in the host's namespace
      assert.ok(!(await hostLinks()).includes(inst.vnic.peer), `${inst.vnic.peer} is inside ${inst.name}`)
    }
    const bound = (await vnics(launcher!)).map((v) => [v.instance, v.addressSpace, v.endpointId !== undefined])
    assert.deepEqual(
      bound.sort(),
      [
        [`${PLUGIN}-a2`, 'ta', true],
        [`${PLUGIN}-a3`, 'ta', true],
        [`${PLUGIN}-b3`, 'tb', true],
        [`${PLUGIN}-b4`, 'tb', true]
      ].sort()
    )
  })

  it('lets each container reach its own peer and gateway, answered by their own tenant MACs', async () => {
    const gatewayMac = async (t: string) =>
      /link\/ether ([0-9a-f:]{17})/.exec(
        (await mustRun(['ip', '-n', cnci(t).netns, 'link', 'show', 'cnci0'])).stdout
      )?.[1]
    const checks: Array<[string, number, string | undefined]> = [
      ['a2', 3, mac(1, 3)],
      ['a3', 2, mac(1, 2)],
      ['b3', 4, mac(2, 4)],
      ['b4', 3, mac(2, 3)],
      ['a2', 1, await gatewayMac('a')],
      ['b4', 1, await gatewayMac('b')]
    ]
    for (const [from, n, want] of checks) {
      const c = instances[from]!.name
      assert.ok(await pings(c, ip(n), 3), `${from} -> .${n}`)
      assert.equal(await neighbourMac(c, ip(n)), want, `${from}: .${n} answered from its own tenant`)
    }
    assert.notEqual(await gatewayMac('a'), await gatewayMac('b'))
  })

  it('does not let a container reach the other tenant: .4 only in B, .2 only in A', async () => {
    assert.equal(await pings(instances['a2']!.name, ip(4), 2), false, 'a2 -> .4 (tenant B only)')
    assert.equal(await pings(instances['a3']!.name, ip(4), 1), false, 'a3 -> .4 (tenant B only)')
    assert.equal(await pings(instances['b3']!.name, ip(2), 2), false, 'b3 -> .2 (tenant A only)')
    assert.equal(await pings(instances['b4']!.name, ip(2), 1), false, 'b4 -> .2 (tenant A only)')
  })

  it('keeps the VNICs through docker rm and docker network rm, then leaves nothing after teardown', async () => {
    const L = launcher!
    for (const inst of Object.values(instances)) await L.stopInstance(inst)
    for (const t of tenants) await docker('network', 'rm', t.network)
    await waitUntil(
      'every VNIC to be unbound',
      async () => (await vnics(L)).every((v) => v.endpointId === undefined),
      15_000
    )
    const links = await hostLinks()
    for (const inst of Object.values(instances)) {
      assert.ok(links.includes(inst.vnic.host), `${inst.vnic.host} kept`)
      assert.ok(links.includes(inst.vnic.peer), `${inst.vnic.peer} back in the host namespace, kept`)
      const master = (await mustRun(['ip', '-o', 'link', 'show', inst.vnic.host])).stdout
      assert.match(master, new RegExp(`master ${inst.tenant.bridge} `), `${inst.vnic.host} still on its bridge`)
    }
    assert.equal((await vnics(L)).length, 4, 'still registered')

    // the launcher's teardown: VNICs, CNCIs, bridges (networks are gone already), the plugin
    for (const inst of Object.values(instances)) await L.destroyInstance(inst)
    for (const t of ['a', 'b']) await deleteCnci(cnci(t).netns, cnci(t).hostIf)
    for (const t of tenants) await L.removeTenant(t)
    const specFile = L.plugin.specFile!
    assert.equal(specFile, `/etc/docker/plugins/${PLUGIN}.spec`)
    await L.close()
    launcher = undefined

    assert.deepEqual(await vnics(L), [])
    assert.deepEqual(await linksOfRun(), [], 'no link or bridge left')
    assert.deepEqual(
      (await mustRun(['ip', 'netns', 'list'])).stdout.split('\n').filter((n) => n.startsWith(LINKS)),
      [],
      'no namespace left'
    )
    assert.equal(
      (await docker('network', 'ls', '-q', '--filter', `name=${PLUGIN}`)).stdout.trim(),
      '',
      'no docker network left'
    )
    assert.equal((await docker('ps', '-aq', '--filter', `name=${PLUGIN}`)).stdout.trim(), '', 'no container left')
    assert.ok(
      !(await run(['iptables', '-S', 'FORWARD'])).stdout.includes(`isthmus-ciao:${LINKS}`),
      'no iptables rule left'
    )
    await assert.rejects(stat(specFile), /ENOENT/, 'no discovery file left')
  })
})
