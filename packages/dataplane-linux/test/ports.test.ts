import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import { createServer } from 'node:net'
import { linuxDataplane } from '@isthmus/dataplane-linux'
import type { IfName, PortMapping, SandboxKey } from '@isthmus/core'
import { call, endpoint, network, ok, ourRules, Scope, serveIn, withNetwork } from './helpers.js'

const scope = new Scope()
const dp = linuxDataplane({ chainPrefix: scope.chainPrefix })
const P = scope.chainPrefix

const net = network({
  id: `ports-${scope.id}`,
  bridge: scope.bridge('p'),
  v4: { subnet: '10.240.30.0/24', gateway: '10.240.30.1' },
  v6: { subnet: 'fd00:240:30::/64', gateway: 'fd00:240:30::1' }
})

/** A host port nobody listens on, so "refused" after unpublishing means the rule is gone. */
const freePort = async (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0))
    })
  })

describe('published ports (real kernel)', () => {
  withNetwork(scope, dp, net)

  it('reaches a mapped port from the host (127.0.0.1 and the gateway) and from other sandboxes (hairpin), until unpublished or deleted', async () => {
    const client = scope.addNetns('client')
    const server = scope.addNetns('server')
    const epC = endpoint({ id: `c-${scope.id}`, network: net, v4: '10.240.30.2/24', v6: 'fd00:240:30::2/64' })
    const epS = endpoint({ id: `s-${scope.id}`, network: net, v4: '10.240.30.3/24', v6: 'fd00:240:30::3/64' })
    for (const [ep, ns] of [
      [epC, client],
      [epS, server]
    ] as const) {
      await ok(dp.ensureEndpoint({ endpoint: ep, network: net }))
      await ok(
        dp.place(
          { endpoint: ep, network: net },
          { _tag: 'PluginMoves', sandbox: ns.path as SandboxKey, ifName: 'eth0' as IfName }
        )
      )
    }
    await serveIn(scope, server.name, 8080, 'S')
    const hostPort = await freePort()
    const ports: PortMapping[] = [{ protocol: 'tcp', containerPort: 8080, hostPort }]
    const spec = { endpoint: epS, network: net }
    await ok(dp.publishPorts(spec, ports))
    await ok(dp.publishPorts(spec, ports))
    const tag = `"isthmus:ep:${epS.hostIfName}"`
    assert.deepEqual(
      ourRules(P).filter((r) => r.includes(tag)),
      [
        `-A ${P}-DNAT -p tcp -m tcp --dport ${hostPort} -m comment --comment ${tag} -j DNAT --to-destination 10.240.30.3:8080`
      ],
      'one rule, however often published'
    )

    // The server sees the gateway as the client when another sandbox calls through the host
    // (hairpin; first, before the host has ever talked to the server), and when the host calls
    // (masqueraded: a reply to 127.0.0.1 could not leave the sandbox).
    assert.equal(await call(client.name, 'fd00:240:30::1', hostPort), 'S fd00:240:30::1')
    assert.equal(await call(client.name, '10.240.30.1', hostPort), 'S 10.240.30.1')
    assert.equal(
      await call(server.name, '10.240.30.1', hostPort),
      'S 10.240.30.1',
      'a sandbox reaches its own published port'
    )
    assert.equal(await call(undefined, '127.0.0.1', hostPort), 'S 10.240.30.1')
    assert.equal(await call(undefined, '10.240.30.1', hostPort), 'S 10.240.30.1')

    await ok(dp.unpublishPorts(spec))
    assert.deepEqual(
      ourRules(P).filter((r) => r.includes(tag)),
      []
    )
    assert.deepEqual(
      ourRules(P, 6).filter((r) => r.includes(tag)),
      []
    )
    assert.equal(await call(undefined, '127.0.0.1', hostPort), 'ERR ECONNREFUSED')
    await ok(dp.unpublishPorts(spec))

    // Published again, then removed with the endpoint.
    // (the endpoint record names what it publishes, as the flows keep it)
    const both: PortMapping[] = [
      ...ports,
      { protocol: 'udp', containerPort: 53, hostPort, hostIp: '127.0.0.1' as PortMapping['hostIp'] & string }
    ]
    const published = { endpoint: { ...epS, portMappings: both }, network: net }
    await ok(dp.publishPorts(published, both))
    assert.equal(await call(client.name, '10.240.30.1', hostPort), 'S 10.240.30.1')
    assert.equal(ourRules(P).filter((r) => r.includes(tag)).length, 2)
    assert.ok(
      ourRules(P).some(
        (r) => r.includes(tag) && r.startsWith(`-A ${P}-DNAT -d 127.0.0.1/32 -p udp -m udp --dport ${hostPort}`)
      )
    )
    await ok(dp.deleteEndpoint(published))
    assert.deepEqual(
      ourRules(P).filter((r) => r.includes(tag)),
      []
    )
    assert.deepEqual(
      ourRules(P, 6).filter((r) => r.includes(tag)),
      []
    )
    assert.equal(await call(undefined, '127.0.0.1', hostPort), 'ERR ECONNREFUSED')
    await ok(dp.deleteEndpoint({ endpoint: epC, network: net }))
  })
})
