/**
 * Acceptance fuzz of the plugin socket (fast-check, fixed seed): sequences of calls to every
 * method (Plugin.Activate, every NetworkDriver and IpamDriver method, the inspection routes, and
 * paths no method serves) with bodies that are valid-shaped, mutated (a field replaced by another
 * type, any JSON, a huge string or an array nested up to 6,000 deep; a field dropped; a field
 * added), truncated, random bytes or empty, sent to a real `isthmus serve` over its real socket.
 *
 * Asserted: the daemon never dies or logs a bug; every answer is protocol-shaped (200 with a
 * JSON object; else `{"Err"}`, with `Error` for IpamDriver; 404 only for unknown paths; no stack
 * trace); and once everything the run made is deleted through the protocol, nothing is left: no
 * network, endpoint, lease or pool record, no link of its networks or endpoints, no rule in its
 * iptables chains. Subnets: 10.246.0.0/16 and fd00:246::/32; every address a mutation could make
 * outside them is replaced, so nothing reaches the host's other routes.
 *
 * ISTHMUS_FUZZ_SEED and ISTHMUS_FUZZ_RUNS override the seed and the number of sequences;
 * ISTHMUS_FUZZ_LOG=<file> keeps the daemon's log, ISTHMUS_FUZZ_TRACE prints every call.
 */
import { strict as assert } from 'node:assert'
import { createHash } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import * as E from 'fp-ts/lib/Either.js'
import { Cidr, HOST_IF_PREFIX, IpAddress, PEER_IF_PREFIX, causeText, isIfName } from '@isthmus/core'
import {
  bridgePorts,
  hostLinks,
  pluginCall,
  pluginRequest,
  startPlugin,
  uniquePrefix,
  waitUntil,
  type PluginProcess,
  type RawReply
} from '@isthmus/testkit'
import { assertProtocolShaped, Made, ownedRulesUnder } from './support/protocol.js'
import { readState } from './support/state.js'

const SEED = Number(process.env['ISTHMUS_FUZZ_SEED'] ?? 20_261_206)
const RUNS = Number(process.env['ISTHMUS_FUZZ_RUNS'] ?? 60)

// -------------------------------------------------------------------------------------
// bodies
// -------------------------------------------------------------------------------------

/** An array nested `depth` deep, written out only when the body is serialised. */
class Deep {
  constructor(readonly depth: number) {}
}

type Body = unknown

const serialise = (v: Body): string => {
  if (v instanceof Deep) return `${'['.repeat(v.depth)}${']'.repeat(v.depth)}`
  if (Array.isArray(v)) return `[${v.map(serialise).join(',')}]`
  if (typeof v === 'object' && v !== null) {
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${JSON.stringify(k)}:${serialise(x)}`)
      .join(',')}}`
  }
  return JSON.stringify(v) ?? 'null'
}

const BRIDGE_KEYS = new Set(['com.docker.network.bridge.name', 'bridge'])
const ALLOWED_ADDRESS = /^(10\.246\.|fd00:246:|127\.0\.0\.1$)/

/**
 * Keep a generated body away from the host's real networks: an address or subnet outside the
 * test's blocks becomes a string that is neither, and a bridge name that is a valid interface
 * name but not this run's (`eth0`, `docker0`) becomes one of this run's.
 */
const sanitise = (v: Body, bridge: string, key = ''): Body => {
  if (v instanceof Deep) return v
  if (typeof v === 'string') {
    const address = E.isRight(Cidr.decode(v)) || E.isRight(IpAddress.decode(v))
    if (address && !ALLOWED_ADDRESS.test(v.trim().toLowerCase())) return 'not-an-address'
    if (BRIDGE_KEYS.has(key) && isIfName(v) && !v.startsWith(bridge)) return `${bridge}9`
    return v
  }
  if (Array.isArray(v)) return v.map((x) => sanitise(x, bridge))
  if (typeof v === 'object' && v !== null) {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, sanitise(x, bridge, k)]))
  }
  return v
}

type Path = ReadonlyArray<string | number>

const pathsOf = (v: Body, at: Path = []): ReadonlyArray<Path> => {
  if (at.length >= 5 || typeof v !== 'object' || v === null || v instanceof Deep) return []
  const entries: Array<[string | number, unknown]> = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v)
  return entries.flatMap(([k, x]) => [[...at, k], ...pathsOf(x, [...at, k])])
}

/** `v` with the value at `path` replaced by `f`'s answer, or removed when `f` answers DROP. */
const setAt = (v: Body, path: Path, f: (old: unknown) => unknown): Body => {
  if (path.length === 0) return f(v)
  const [head, ...rest] = path
  if (Array.isArray(v)) {
    const out = [...(v as ReadonlyArray<unknown>)]
    const next = setAt(out[head as number], rest, f)
    if (next === DROP) out.splice(head as number, 1)
    else out[head as number] = next
    return out
  }
  const out = { ...(v as Record<string, unknown>) }
  const next = setAt(out[head as string], rest, f)
  if (next === DROP) delete out[head as string]
  else out[head as string] = next
  return out
}
const DROP = Symbol('drop')

/** A value of another kind for a field: any JSON, a wrong type, a huge string, a deep array. */
const replacement: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: fc.constantFrom(null, true, false, 0, -1, 65_536, 1e308, '', [], {}, '0', 'null') },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1_000, max: 300_000 }).map((n) => 'é\u0000"\\'.repeat(Math.ceil(n / 4)).slice(0, n))
  },
  { weight: 1, arbitrary: fc.integer({ min: 10, max: 6_000 }).map((n) => new Deep(n)) }
)

type Mutation =
  | { readonly kind: 'none' }
  | { readonly kind: 'replace'; readonly pick: number; readonly value: unknown }
  | { readonly kind: 'drop'; readonly pick: number }
  | { readonly kind: 'add'; readonly key: string; readonly value: unknown }
  | { readonly kind: 'whole'; readonly value: unknown }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 5, arbitrary: fc.constant<Mutation>({ kind: 'none' }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('replace' as const), pick: fc.nat(), value: replacement }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('add' as const), key: fc.string({ maxLength: 12 }), value: replacement })
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('whole' as const), value: replacement }) }
)

const mutate = (v: Body, m: Mutation): Body => {
  const paths = pathsOf(v)
  switch (m.kind) {
    case 'none':
      return v
    case 'whole':
      return m.value
    case 'add':
      return typeof v === 'object' && v !== null && !Array.isArray(v) ? { ...v, [m.key]: m.value } : v
    case 'replace':
      return paths.length === 0 ? m.value : setAt(v, paths[m.pick % paths.length]!, () => m.value)
    case 'drop':
      return paths.length === 0 ? v : setAt(v, paths[m.pick % paths.length]!, () => DROP)
  }
}

/** How the body goes on the wire. */
type Wire =
  | { readonly kind: 'json' }
  | { readonly kind: 'truncated'; readonly at: number }
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array }
  | { readonly kind: 'empty' }

const wire: fc.Arbitrary<Wire> = fc.oneof(
  { weight: 12, arbitrary: fc.constant<Wire>({ kind: 'json' }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncated' as const), at: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('bytes' as const), bytes: fc.uint8Array({ maxLength: 2_048 }) })
  },
  { weight: 1, arbitrary: fc.constant<Wire>({ kind: 'empty' }) }
)

// -------------------------------------------------------------------------------------
// valid-shaped requests
// -------------------------------------------------------------------------------------

interface World {
  readonly nets: ReadonlyArray<string>
  readonly eps: ReadonlyArray<string>
  /** The run's bridge-name prefix (a bridge name option is this plus a digit). */
  readonly bridge: string
}

const idOf = (seed: string): string => createHash('sha256').update(seed).digest('hex')

/** The first host of a subnet, with its prefix: `10.246.1.128/25` → `10.246.1.129/25`. */
const firstHost = (subnet: string): string => {
  const [a, p] = subnet.split('/')
  if (a!.includes(':')) return `${a}1/${p}`
  const o = a!.split('.').map(Number)
  return `${o[0]}.${o[1]}.${o[2]}.${o[3]! + 1}/${p}`
}

const requests = (w: World): fc.Arbitrary<{ readonly path: string; readonly body: Body }> => {
  const idx = fc.integer({ min: 0, max: 2 })
  const net = fc.constantFrom(...w.nets)
  const ep = fc.constantFrom(...w.eps)
  const v4 = fc.oneof(
    idx.map((i) => `10.246.${i}.0/24`),
    fc.constant('10.246.0.0/16'),
    idx.map((i) => `10.246.${i}.128/25`)
  )
  const v6 = idx.map((i) => `fd00:246:${i}::/64`)
  const ipamData = (subnet: fc.Arbitrary<string>) =>
    subnet.chain((s) =>
      fc.record(
        {
          AddressSpace: fc.constantFrom('LocalDefault', 'isthmus-local'),
          Pool: fc.constant(s),
          Gateway: fc.constantFrom(firstHost(s), ''),
          AuxAddresses: fc.constantFrom(null, {}, { a: firstHost(s).replace(/\.\d+\//, '.200/') })
        },
        { requiredKeys: ['AddressSpace', 'Pool'] }
      )
    )
  const anyGeneric = fc.record(
    {
      'com.docker.network.bridge.name': fc.constantFrom(`${w.bridge}0`, `${w.bridge}1`, 'zz+', '-x', 'a!b', ''),
      'com.docker.network.driver.mtu': fc.constantFrom('1400', '9000', 'abc', '67'),
      'com.docker.network.bridge.enable_ip_masquerade': fc.constantFrom('true', 'false', 'maybe'),
      'com.docker.network.container_iface_prefix': fc.constantFrom('net', '9bad'),
      routes: fc.constantFrom('10.246.99.0/24 via 10.246.0.5', '10.246.98.0/24', 'junk'),
      'address-space': fc.constantFrom('isthmus-local', 'fuzz-space', 'bad space'),
      'cni-network': fc.constantFrom('none-such', '')
    },
    { requiredKeys: [] }
  )
  // mostly options that are all good, so that networks get made and the flows behind them run
  const goodGeneric = fc.record(
    {
      'com.docker.network.bridge.name': fc.constantFrom(`${w.bridge}0`, `${w.bridge}1`),
      'com.docker.network.driver.mtu': fc.constantFrom('1400', '1500'),
      'com.docker.network.bridge.enable_ip_masquerade': fc.constantFrom('true', 'false'),
      routes: fc.constant('10.246.99.0/24 via 10.246.0.5')
    },
    { requiredKeys: [] }
  )
  const generic = fc.oneof({ weight: 3, arbitrary: goodGeneric }, { weight: 1, arbitrary: anyGeneric })
  // network i is mostly on 10.246.i.0/24 (and fd00:246:i::/64), and its endpoints mostly in it
  const createNetwork = idx.chain((i) =>
    fc.record({
      NetworkID: fc.oneof({ weight: 4, arbitrary: fc.constant(w.nets[i]!) }, { weight: 1, arbitrary: net }),
      Options: fc.record(
        {
          'com.docker.network.enable_ipv6': fc.boolean(),
          'com.docker.network.internal': fc.boolean(),
          'com.docker.network.generic': generic
        },
        { requiredKeys: [] }
      ),
      IPv4Data: fc.oneof(
        { weight: 4, arbitrary: fc.tuple(ipamData(fc.constant(`10.246.${i}.0/24`))) },
        { weight: 1, arbitrary: fc.array(ipamData(v4), { maxLength: 2 }) }
      ),
      IPv6Data: fc.oneof(
        { weight: 3, arbitrary: fc.constant([]) },
        { weight: 1, arbitrary: fc.tuple(ipamData(fc.constant(`fd00:246:${i}::/64`))) }
      )
    })
  )
  const portBinding = fc.record({
    Proto: fc.constantFrom(6, 17, 132),
    IP: fc.constant(''),
    Port: fc.integer({ min: 1, max: 100 }),
    HostIP: fc.constantFrom('', '127.0.0.1'),
    HostPort: fc.integer({ min: 47_000, max: 47_099 }),
    HostPortEnd: fc.constant(0)
  })
  const createEndpoint = idx.chain((i) =>
    fc.record({
      NetworkID: fc.oneof({ weight: 4, arbitrary: fc.constant(w.nets[i]!) }, { weight: 1, arbitrary: net }),
      EndpointID: ep,
      Interface: fc.record({
        Address: fc.integer({ min: 2, max: 20 }).map((h) => `10.246.${i}.${h}/24`),
        AddressIPv6: fc.constantFrom('', `fd00:246:${i}::9/64`),
        MacAddress: fc.constantFrom('', '02:42:0a:f6:00:09')
      }),
      Options: fc.record({
        'com.docker.network.portmap': fc.array(portBinding, { maxLength: 3 }),
        'com.docker.network.endpoint.exposedports': fc.constant([])
      })
    })
  )
  const netRef = fc.record({ NetworkID: net })
  const epRef = fc.record({ NetworkID: net, EndpointID: ep })
  const poolId = fc.oneof(
    v4.map((s) => `isthmus-local/${s}`),
    fc.constantFrom('fuzz-space/10.246.1.0/24', 'isthmus-local/fd00:246:0::/64', 'nope')
  )
  const address = fc.constantFrom(
    '',
    '10.246.0.9',
    '10.246.1.1',
    '10.246.0.0',
    '10.246.0.255',
    '10.246.1.130',
    'fd00:246:0::9'
  )
  const none = fc.constant({})
  // [path, body, weight]: the calls that make things come more often, so that the others find something
  const table: ReadonlyArray<readonly [string, fc.Arbitrary<Body>, number?]> = [
    ['/Plugin.Activate', none],
    ['/NetworkDriver.GetCapabilities', none],
    ['/NetworkDriver.CreateNetwork', createNetwork, 8],
    ['/NetworkDriver.AllocateNetwork', createNetwork],
    ['/NetworkDriver.DeleteNetwork', netRef],
    ['/NetworkDriver.FreeNetwork', netRef],
    ['/NetworkDriver.CreateEndpoint', createEndpoint, 8],
    ['/NetworkDriver.EndpointOperInfo', epRef],
    [
      '/NetworkDriver.Join',
      fc.record({
        NetworkID: net,
        EndpointID: ep,
        SandboxKey: fc.oneof(
          { weight: 5, arbitrary: fc.constant('/var/run/docker/netns/fuzz0') },
          { weight: 1, arbitrary: fc.constant('relative') }
        ),
        Options: none
      }),
      3
    ],
    ['/NetworkDriver.Leave', epRef],
    ['/NetworkDriver.DeleteEndpoint', epRef],
    ['/NetworkDriver.ProgramExternalConnectivity', fc.record({ NetworkID: net, EndpointID: ep, Options: none })],
    ['/NetworkDriver.RevokeExternalConnectivity', epRef],
    [
      '/NetworkDriver.DiscoverNew',
      fc.record({ DiscoveryType: fc.integer({ min: 0, max: 2 }), DiscoveryData: fc.jsonValue({ maxDepth: 2 }) })
    ],
    [
      '/NetworkDriver.DiscoverDelete',
      fc.record({ DiscoveryType: fc.integer({ min: 0, max: 2 }), DiscoveryData: fc.jsonValue({ maxDepth: 2 }) })
    ],
    ['/IpamDriver.GetCapabilities', none],
    ['/IpamDriver.GetDefaultAddressSpaces', none],
    [
      '/IpamDriver.RequestPool',
      fc.record(
        {
          AddressSpace: fc.constantFrom('isthmus-local', 'LocalDefault', 'fuzz-space'),
          Pool: fc.oneof(v4, v6),
          SubPool: fc.constantFrom('', '10.246.1.128/25'),
          Options: fc.constantFrom({}, { 'address-space': 'fuzz-space' }, null),
          V6: fc.boolean()
        },
        { requiredKeys: ['AddressSpace'] }
      ),
      3
    ],
    ['/IpamDriver.ReleasePool', fc.record({ PoolID: poolId })],
    [
      '/IpamDriver.RequestAddress',
      fc.record(
        {
          PoolID: poolId,
          Address: address,
          Options: fc.constantFrom(
            null,
            {},
            { RequestAddressType: 'com.docker.network.gateway' },
            { 'com.docker.network.endpoint.macaddress': '02:42:0a:f6:00:09' }
          )
        },
        { requiredKeys: ['PoolID'] }
      ),
      4
    ],
    ['/IpamDriver.ReleaseAddress', fc.record({ PoolID: poolId, Address: address })],
    ['/IpamDriver.Leases', fc.record({ network: fc.constantFrom(...w.nets, 'nope', '') }, { requiredKeys: [] })],
    ['/IpamDriver.Networks', none],
    ['/IpamDriver.Metrics', none],
    ['/IpamDriver.Version', none],
    ['/IpamDriver.Configuration', none]
  ]
  const known = fc.oneof(
    ...table.map(([path, body, weight]) => ({ weight: weight ?? 1, arbitrary: body.map((b) => ({ path, body: b })) }))
  )
  const unknown = fc
    .constantFrom('/NetworkDriver.Nope', '/IpamDriver.Nope', '/Foo.Bar', '/', '/Plugin.Activate/x')
    .map((path) => ({ path, body: {} }))
  return fc.oneof({ weight: 60, arbitrary: known }, { weight: 1, arbitrary: unknown })
}

// -------------------------------------------------------------------------------------
// the test
// -------------------------------------------------------------------------------------

const KNOWN = new Set([
  '/Plugin.Activate',
  ...[
    'GetCapabilities',
    'CreateNetwork',
    'AllocateNetwork',
    'DeleteNetwork',
    'FreeNetwork',
    'CreateEndpoint',
    'EndpointOperInfo',
    'Join',
    'Leave',
    'DeleteEndpoint',
    'ProgramExternalConnectivity',
    'RevokeExternalConnectivity',
    'DiscoverNew',
    'DiscoverDelete'
  ].map((m) => `/NetworkDriver.${m}`),
  ...[
    'GetCapabilities',
    'GetDefaultAddressSpaces',
    'RequestPool',
    'ReleasePool',
    'RequestAddress',
    'ReleaseAddress',
    'Leases',
    'Networks',
    'Metrics',
    'Version',
    'Configuration'
  ].map((m) => `/IpamDriver.${m}`)
])

const withTimeout = <A>(what: string, p: Promise<A>, ms: number): Promise<A> =>
  Promise.race([
    p,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms).unref()
    )
  ])

describe('fuzz: every plugin method over the real socket', { timeout: 300_000 }, () => {
  const prefix = uniquePrefix()
  const world: World = {
    nets: [0, 1, 2].map((i) => idOf(`${prefix}-net-${i}`)),
    eps: [0, 1, 2, 3].map((i) => idOf(`${prefix}-ep-${i}`)),
    bridge: prefix.replace('-', '')
  }
  let plugin: PluginProcess
  const made = new Made()
  const statuses = new Map<number, number>()
  // every network and endpoint id that was answered 200 once: their links must all be gone
  const networkIds = new Set<string>()
  const bridges = new Set<string>()
  const hostIfs = new Set<string>()

  before(async () => {
    plugin = await startPlugin(`${prefix}-fz`)
  })
  after(async () => {
    const keep = process.env['ISTHMUS_FUZZ_LOG']
    if (keep !== undefined && plugin !== undefined) await writeFile(keep, plugin.logs())
    if (plugin !== undefined) await made.takeDown(plugin.socket)
    await plugin?.dispose()
  })

  const send = async (path: string, body: Body, how: Wire): Promise<RawReply> => {
    const text = `${serialise(body)}\n`
    const raw =
      how.kind === 'json'
        ? text
        : how.kind === 'truncated'
          ? text.slice(0, how.at % text.length)
          : how.kind === 'bytes'
            ? how.bytes
            : ''
    return withTimeout(path, pluginRequest(plugin.socket, path, raw), 20_000)
  }

  // What a 200 made, to take down through the protocol afterwards.
  const record = (path: string, body: Body, reply: RawReply): void => {
    if (reply.status !== 200 || typeof body !== 'object' || body === null) return
    const b = body as Record<string, unknown>
    const answer = JSON.parse(reply.text) as Record<string, unknown>
    if (path === '/NetworkDriver.CreateNetwork' && typeof b['NetworkID'] === 'string') {
      networkIds.add(made.network(b['NetworkID']))
    }
    if (
      path === '/NetworkDriver.CreateEndpoint' &&
      typeof b['NetworkID'] === 'string' &&
      typeof b['EndpointID'] === 'string'
    ) {
      made.endpoint(b['NetworkID'], b['EndpointID'])
    }
    if (path === '/IpamDriver.RequestPool' && typeof answer['PoolID'] === 'string') made.pool(answer['PoolID'])
    if (
      path === '/IpamDriver.RequestAddress' &&
      typeof b['PoolID'] === 'string' &&
      typeof answer['Address'] === 'string'
    ) {
      made.address(b['PoolID'], answer['Address'].split('/')[0]!)
    }
  }

  // What the daemon has on the host now: the bridges its inspection names, every port on them
  // (endpoints' veths and the spare pairs), and each veth's peer.
  const noteLinks = async (): Promise<void> => {
    const nets = (await pluginCall(plugin.socket, '/IpamDriver.Networks')).body as {
      networks: Array<{ bridge?: string }>
    }
    for (const n of nets.networks) if (n.bridge !== undefined) bridges.add(n.bridge)
    const leases = (await pluginCall(plugin.socket, '/IpamDriver.Leases')).body as {
      attachments: Array<{ hostIfName: string }>
    }
    const hostEnds = leases.attachments.map((a) => a.hostIfName)
    for (const b of bridges) hostEnds.push(...(await bridgePorts(b)).map((l) => l.name))
    for (const h of hostEnds) {
      hostIfs.add(h)
      if (h.startsWith(HOST_IF_PREFIX)) hostIfs.add(`${PEER_IF_PREFIX}${h.slice(HOST_IF_PREFIX.length)}`)
    }
  }

  it(`survives ${RUNS} sequences of generated and mutated calls (seed ${SEED}), answering each in protocol form, and leaves nothing behind`, async () => {
    const call = fc.tuple(requests(world), mutation, wire).map(([r, m, how]) => ({
      path: r.path,
      body: sanitise(mutate(r.body, m), world.bridge),
      how
    }))
    const started = Date.now()
    let sent = 0
    const result = await fc.check(
      fc.asyncProperty(fc.array(call, { minLength: 5, maxLength: 30 }), async (calls) => {
        for (const c of calls) {
          const reply = await send(c.path, c.body, c.how)
          sent++
          statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1)
          if (process.env['ISTHMUS_FUZZ_TRACE'] !== undefined) {
            console.log(`TRACE ${c.path} ${c.how.kind} ${reply.status} ${reply.text.slice(0, 160)}`)
          }
          assertProtocolShaped(c.path, KNOWN.has(c.path), reply)
          record(c.path, c.body, reply)
        }
        await noteLinks()
        const failures = await made.takeDown(plugin.socket)
        assert.deepEqual(failures, [], 'everything the sequence made is deleted through the protocol')
        assert.doesNotThrow(() => process.kill(plugin.pid(), 0), 'the daemon lives')
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true }
    )
    if (result.failed) {
      assert.fail(
        `fuzz failed (seed ${SEED}, path ${result.counterexamplePath ?? '?'}; rerun with ISTHMUS_FUZZ_SEED=${SEED}): ` +
          causeText(result.errorInstance)
      )
    }
    const took = Date.now() - started
    console.log(
      `fuzz: ${sent} calls in ${took} ms, seed ${SEED}; statuses ${JSON.stringify(Object.fromEntries(statuses))}`
    )
    assert.ok((statuses.get(200) ?? 0) > sent / 5, 'a good share of calls went through (the fuzz reaches the flows)')

    // the daemon is alive and logged no bug
    assert.equal((await pluginCall(plugin.socket, '/Plugin.Activate')).status, 200)
    assert.doesNotMatch(plugin.logs(), /"message":"bug:/)

    // nothing left: records, links (veth removal runs just after the answer), rules
    const state = await readState(plugin.stateDir)
    assert.deepEqual(
      {
        networks: state.networks.length,
        endpoints: state.endpoints.length,
        leases: state.leases.length,
        pools: state.pools.length
      },
      { networks: 0, endpoints: 0, leases: 0, pools: 0 },
      JSON.stringify({
        networks: state.networks.map((n) => n.id),
        leases: state.leases.map((l) => `${l.address} ${JSON.stringify(l.owner)}`),
        pools: state.pools.map((p) => p.id)
      })
    )
    assert.ok(networkIds.size > 0 && bridges.size > 0 && hostIfs.size > 0, 'the run made networks and endpoints')
    const mine = (links: ReadonlyArray<string>) =>
      links.filter((l) => bridges.has(l) || hostIfs.has(l) || l.startsWith(world.bridge))
    await waitUntil('the run’s links to be gone', async () => mine(await hostLinks()).length === 0, 10_000, 100).catch(
      async () => assert.deepEqual(mine(await hostLinks()), [])
    )
    assert.deepEqual(await ownedRulesUnder(plugin.chainPrefix), [])
  })
})
