/**
 * `/IpamDriver.Shutdown` against a real `isthmus serve` (testkit startPlugin: its own state
 * directory, chain prefix and sockets) on the real kernel: a network, an endpoint and its lease
 * made through the plugin socket; a CreateNetwork held in flight on the store lock of its network
 * (a lock directory this test holds); Shutdown answered `{}` first, no new connection taken, the
 * call in flight answered, the process gone with exit code 0 and its socket with it; every record,
 * bridge and iptables chain still there; and a daemon started again on the same state directory
 * serving the same networks, endpoints and leases.
 */
import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { after, describe, it } from 'node:test'
import {
  bridgePorts,
  linkExists,
  pluginCall,
  run,
  startPlugin,
  uniquePrefix,
  waitUntil,
  type PluginProcess
} from '@isthmus/testkit'
import type { Inspect } from '@isthmus/cnm-server/protocol'
import { requireRoot } from '../../cni-plugin/test/support.js'
import { dockerId } from '../../cnm-server/test/support/harness.js'
import { createEndpoint, createNetwork } from '../../cnm-server/test/support/cnmCalls.js'

const prefix = uniquePrefix('ist-shut')
const tag = prefix.replace(/-/g, '').slice(-9)
const octet = 1 + (parseInt(tag.slice(-2), 16) % 120) * 2
const bridges = [`${tag}a`, `${tag}b`]

/** Every file under `dir` but the lock directories (taken and let go as calls come). */
const filesUnder = (dir: string): ReadonlyArray<string> => {
  const out: string[] = []
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name)
      if (statSync(path).isDirectory()) {
        if (name !== 'locks') walk(path)
      } else out.push(relative(dir, path))
    }
  }
  walk(dir)
  return out.sort()
}

const chainsOf = (chainPrefix: string): ReadonlyArray<string> =>
  ['filter', 'nat'].flatMap((table) =>
    execFileSync('iptables', ['-t', table, '-S'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.startsWith(`-N ${chainPrefix}`))
      .map((l) => `${table} ${l.slice(3)}`)
  )

const inspect = async (socket: string) => {
  const networks = await pluginCall(socket, '/IpamDriver.Networks')
  const leases = await pluginCall(socket, '/IpamDriver.Leases')
  assert.equal(networks.status, 200)
  assert.equal(leases.status, 200)
  return { networks: networks.body as Inspect.NetworksResponse, leases: leases.body as Inspect.LeasesResponse }
}

describe('/IpamDriver.Shutdown on a running daemon', () => {
  let p: PluginProcess | undefined
  after(async () => {
    await p?.dispose()
    for (const b of bridges) {
      for (const port of await bridgePorts(b)) await run(['ip', 'link', 'del', 'dev', port.name])
      await run(['ip', 'link', 'del', 'dev', b])
    }
  })

  it('answers {}, lets the call in flight finish, exits 0, keeps every record, and a restart serves the same', async () => {
    requireRoot()
    p = await startPlugin(prefix)
    const net1 = dockerId(`${prefix}-net1`)
    const net2 = dockerId(`${prefix}-net2`)
    const made = await createNetwork(p.socket, { id: net1, subnet: `10.239.${octet}.0/24`, bridge: bridges[0]! })
    assert.equal(made.status, 200, JSON.stringify(made.body))
    const ep = dockerId(`${prefix}-ep1`)
    const { address } = await createEndpoint(p.socket, { networkId: net1, id: ep, poolId: made.poolId })
    const before = await inspect(p.socket)
    assert.deepEqual(
      before.leases.attachments.map((a) => [a.endpointId, a.addresses.map((x) => x.cidr)]),
      [[ep, [address]]]
    )

    // A second network's pool and gateway, then its CreateNetwork held on the store lock of its
    // network, a lock directory this test makes (store-fs: proper-lockfile, `locks/n-<name>.lock`).
    const pool2 = await pluginCall(p.socket, '/IpamDriver.RequestPool', {
      AddressSpace: 'isthmus-local',
      Pool: `10.239.${octet + 1}.0/24`,
      SubPool: '',
      Options: {},
      V6: false
    })
    const gw2 = await pluginCall(p.socket, '/IpamDriver.RequestAddress', {
      PoolID: (pool2.body as { PoolID: string }).PoolID,
      Address: '',
      Options: { RequestAddressType: 'com.docker.network.gateway' }
    })
    const lock = join(p.stateDir, 'v1', 'locks', `n-network%3A${net2}.lock`)
    mkdirSync(lock)
    const answered: string[] = []
    const inFlight = pluginCall(p.socket, '/NetworkDriver.CreateNetwork', {
      NetworkID: net2,
      Options: {
        'com.docker.network.enable_ipv6': false,
        'com.docker.network.generic': { 'com.docker.network.bridge.name': bridges[1] }
      },
      IPv4Data: [
        {
          AddressSpace: 'isthmus-local',
          Gateway: (gw2.body as { Address: string }).Address,
          Pool: `10.239.${octet + 1}.0/24`
        }
      ],
      IPv6Data: []
    }).then((r) => {
      answered.push('CreateNetwork')
      return r
    })
    try {
      await new Promise((r) => setTimeout(r, 700))
      assert.equal(answered.length, 0, 'CreateNetwork waits on the lock this test holds')

      const shutdown = await pluginCall(p.socket, '/IpamDriver.Shutdown')
      answered.push('Shutdown')
      assert.deepEqual(shutdown, { status: 200, body: {} })
      // no new connection is taken (the socket file goes with the listener)
      await waitUntil(
        'the listener to close',
        () =>
          pluginCall(p!.socket, '/Plugin.Activate').then(
            () => false,
            () => true
          ),
        10_000
      )
      assert.equal(p.exit(), undefined, 'still running: a call is in flight')
    } finally {
      rmSync(lock, { recursive: true, force: true })
    }
    const late = await inFlight
    assert.deepEqual(late, { status: 200, body: {} })
    assert.deepEqual(answered, ['Shutdown', 'CreateNetwork'])

    await waitUntil('the daemon to exit', () => Promise.resolve(p!.exit() !== undefined), 30_000)
    assert.deepEqual(p.exit(), { code: 0, signal: null })
    assert.ok(!existsSync(p.socket), 'its socket is gone')
    const stopping = p
      .logs()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { message: string; by?: string })
      .filter((l) => l.message === 'stopping')
    assert.deepEqual(
      stopping.map((l) => l.by),
      ['IpamDriver.Shutdown']
    )

    // nothing removed: records, bridges, chains
    const files = filesUnder(p.stateDir)
    for (const [kind, id] of [
      ['networks', net1],
      ['networks', net2],
      ['endpoints', ep]
    ] as const) {
      assert.ok(files.includes(join('v1', kind, `${id}.json`)), `${kind}/${id} kept: ${files.join(' ')}`)
    }
    // both gateways and the endpoint's address
    assert.equal(files.filter((f) => f.startsWith(join('v1', 'leases'))).length, 3, files.join(' '))
    for (const b of bridges) assert.ok(await linkExists(b), `bridge ${b} kept`)
    assert.ok(chainsOf(p.chainPrefix).length > 0, 'iptables chains kept')

    // the same state, served again
    await p.start()
    const again = await inspect(p.socket)
    assert.deepEqual(again.leases.attachments, before.leases.attachments)
    for (const r of before.leases.reserved) {
      assert.ok(again.leases.reserved.some((x) => JSON.stringify(x) === JSON.stringify(r)))
    }
    assert.deepEqual(
      again.networks.networks.find((n) => n.id === net1),
      before.networks.networks.find((n) => n.id === net1)
    )
    assert.deepEqual(
      again.networks.networks.map((n) => n.id).sort(),
      [net1, net2].sort(),
      'the network created while stopping is served too'
    )
    assert.deepEqual(
      filesUnder(p.stateDir).filter((f) => !files.includes(f)),
      [],
      'nothing new on a restart'
    )
  })
})

describe('a SIGTERM while the daemon starts', () => {
  let p: PluginProcess | undefined
  after(async () => {
    await p?.dispose()
  })

  it('stops it cleanly once started: exit 0, its socket gone, the stop logged', async () => {
    requireRoot()
    // Resolved as soon as the socket file exists, while the daemon is still starting (CNI
    // hand-off, spares); where the signal lands in the start varies, hence several rounds.
    p = await startPlugin(`${prefix}-early`, [], { readyWhen: 'socket' })
    for (let round = 0; round < 5; round++) {
      if (round > 0) await p.start()
      const logged = p.logs().length
      await p.kill('SIGTERM')
      assert.deepEqual(p.exit(), { code: 0, signal: null }, `round ${round}: ${p.logs().slice(-2000)}`)
      assert.ok(!existsSync(p.socket), 'its socket is gone')
      const messages = p
        .logs()
        .slice(logged)
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => (JSON.parse(l) as { message: string }).message)
      assert.ok(messages.includes('stopping') && messages.includes('stopped'), messages.join(', '))
    }
  })
})
