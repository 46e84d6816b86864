/**
 * Talking to a real daemon the way dockerd does, for the tests that send it hostile or racing
 * input: bodies of the NetworkDriver calls, bodies too deep to build as JavaScript values, the
 * daemon's own iptables rules, and "is the reply protocol-shaped".
 */
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { mustRun, pluginCall } from '@isthmus/testkit'

/** A random 64-hex id, as dockerd makes them. */
export const hexId = (): string => randomBytes(32).toString('hex')

/** `CreateNetwork` for one IPv4 subnet of another IPAM (no pool of ours), gateway `.1`. */
export const networkBody = (id: string, subnet: string, generic: Record<string, unknown> = {}) => ({
  NetworkID: id,
  Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': generic },
  IPv4Data: [
    {
      AddressSpace: 'LocalDefault',
      Pool: subnet,
      Gateway: `${subnet.replace(/\.0\/\d+$/, '.1')}/${subnet.split('/')[1]}`
    }
  ],
  IPv6Data: []
})

/** One libnetwork PortBinding (`-p hostPort:port/tcp`). */
export const binding = (port: number, hostPort: number, more: Record<string, unknown> = {}) => ({
  Proto: 6,
  IP: '',
  Port: port,
  HostIP: '',
  HostPort: hostPort,
  HostPortEnd: hostPort,
  ...more
})

/** `CreateEndpoint` with an address and published ports, as dockerd 20.10 sends it. */
export const endpointBody = (networkId: string, id: string, cidr: string, portmap: ReadonlyArray<unknown> = []) => ({
  NetworkID: networkId,
  EndpointID: id,
  Interface: { Address: cidr, AddressIPv6: '', MacAddress: '' },
  Options: {
    'com.docker.network.endpoint.exposedports': portmap.map((p) => ({
      Proto: (p as { Proto?: unknown }).Proto,
      Port: (p as { Port?: unknown }).Port
    })),
    'com.docker.network.portmap': portmap
  }
})

/** JSON text of an array nested `depth` deep: too deep to build as a value and stringify. */
export const deepArrayText = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`

/** JSON text of `value` with the marker string `"<<DEEP>>"` replaced by a `depth`-deep array. */
export const withDeep = (value: unknown, depth: number): string =>
  `${JSON.stringify(value).replace('"<<DEEP>>"', deepArrayText(depth))}\n`

/** The daemon's own iptables rules (both families): every `-A` line in a chain under `prefix`. */
export const rulesUnder = async (prefix: string): Promise<ReadonlyArray<string>> => {
  const out: string[] = []
  for (const save of ['iptables-save', 'ip6tables-save']) {
    const text = (await mustRun([save])).stdout
    out.push(...text.split('\n').filter((l) => l.startsWith(`-A ${prefix}-`)))
  }
  return out
}

/** Rules that a network or an endpoint owns: those under `prefix` other than the generation counter. */
export const ownedRulesUnder = async (prefix: string): Promise<ReadonlyArray<string>> =>
  (await rulesUnder(prefix)).filter((l) => !l.startsWith(`-A ${prefix}-GEN `))

/** Every rule of the host, both families, that names `name` as an interface. */
export const rulesNamingInterface = async (name: string): Promise<ReadonlyArray<string>> => {
  const out: string[] = []
  for (const save of ['iptables-save', 'ip6tables-save']) {
    const text = (await mustRun([save])).stdout
    out.push(
      ...text
        .split('\n')
        .filter(
          (l) =>
            l.includes(` -i ${name} `) ||
            l.includes(` -o ${name} `) ||
            l.endsWith(` -i ${name}`) ||
            l.endsWith(` -o ${name}`)
        )
    )
  }
  return out
}

const STACK = /\n\s+at |\bat [^\s()]+ \(?[^\s()]*:\d+:\d+\)?/

/**
 * A reply as the plugin protocol allows it: 200 with a JSON object; or 4xx/5xx with `{"Err": string}`
 * (and `Error` equal to it for IpamDriver); 404 only for a path no method serves. Never a stack.
 */
export const assertProtocolShaped = (
  path: string,
  known: boolean,
  r: { readonly status: number; readonly text: string }
): void => {
  const where = `${path} answered ${r.status} ${r.text.slice(0, 300)}`
  assert.doesNotMatch(r.text, STACK, `a stack trace in the reply: ${where}`)
  let body: unknown
  try {
    body = JSON.parse(r.text)
  } catch {
    assert.fail(`not JSON: ${where}`)
  }
  assert.ok(typeof body === 'object' && body !== null && !Array.isArray(body), `not a JSON object: ${where}`)
  if (r.status === 200) return
  assert.ok(r.status >= 400 && r.status < 600, `neither 200 nor an error status: ${where}`)
  assert.equal(r.status === 404, !known, `404 is for unknown paths only: ${where}`)
  const b = body as Record<string, unknown>
  assert.equal(typeof b['Err'], 'string', `no Err sentence: ${where}`)
  assert.ok((b['Err'] as string).length > 0, `an empty Err: ${where}`)
  if (known && path.startsWith('/IpamDriver.')) {
    assert.equal(b['Error'], b['Err'], `an IpamDriver failure carries Error too: ${where}`)
  }
}

/**
 * What a test made through the protocol, to take down through the protocol in its `after` hook
 * (also when it failed halfway): endpoints first, then networks, then addresses, then pools.
 */
export class Made {
  private readonly endpoints = new Map<string, string>()
  private readonly networks = new Set<string>()
  private readonly addresses: Array<{ PoolID: string; Address: string }> = []
  private readonly pools: string[] = []

  network(id: string): string {
    this.networks.add(id)
    return id
  }
  endpoint(networkId: string, id: string): string {
    this.endpoints.set(id, networkId)
    return id
  }
  address(PoolID: string, Address: string): void {
    this.addresses.push({ PoolID, Address })
  }
  /** One entry per reference: an identical RequestPool answered twice is released twice. */
  pool(id: string): void {
    this.pools.push(id)
  }

  /** Delete everything recorded; the failures, as sentences (empty when all went). */
  async takeDown(socket: string): Promise<ReadonlyArray<string>> {
    const failures: string[] = []
    const run = async (path: string, body: unknown) => {
      const r = await pluginCall(socket, path, body).catch((e: unknown) => ({ status: 0, body: String(e) }))
      if (r.status !== 200) failures.push(`${path} ${JSON.stringify(body)}: ${r.status} ${JSON.stringify(r.body)}`)
    }
    for (const [EndpointID, NetworkID] of this.endpoints) {
      await run('/NetworkDriver.Leave', { NetworkID, EndpointID })
      await run('/NetworkDriver.DeleteEndpoint', { NetworkID, EndpointID })
    }
    for (const NetworkID of this.networks) await run('/NetworkDriver.DeleteNetwork', { NetworkID })
    for (const a of this.addresses) await run('/IpamDriver.ReleaseAddress', a)
    for (const PoolID of this.pools) await run('/IpamDriver.ReleasePool', { PoolID })
    this.endpoints.clear()
    this.networks.clear()
    this.addresses.length = 0
    this.pools.length = 0
    return failures
  }
}
