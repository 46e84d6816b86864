/**
 * Test support for the real-kernel tests: namespaces, links and iptables chains that each test
 * file creates under names of its own run (`isthmus-test-<hex>`, bridges `itb<hex>`, chains
 * `ITT<hex>-*`) and removes in `after`, also on failure; TCP servers and clients started inside
 * namespaces with `ip netns exec <ns> node -e ...` and killed by PID.
 *
 * Traffic stays on loopback and inside the bridges and namespaces made here (10.240.0.0/16,
 * fd00:240::/48).
 */
import { strict as assert } from 'node:assert'
import { after, before } from 'node:test'
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import * as E from 'fp-ts/lib/Either.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import {
  describe as describeError,
  Endpoint,
  Network,
  type CoreError,
  type EndpointId,
  hostIfName,
  peerIfName,
  type Endpoint as EndpointT,
  type Network as NetworkT
} from '@isthmus/core'
import { defaultSpawnerBinary, type LinuxDataplane } from '../src/index.js'

/** Fail (never skip) when the tests cannot touch the kernel. */
export const requireRoot = (): void => {
  assert.equal(
    process.getuid?.(),
    0,
    'the dataplane-linux tests create namespaces, bridges and iptables chains: run them as root (CI does)'
  )
}

export const hex = (n: number): string => randomBytes(n).toString('hex')

/** Build the spawner if it is older than its sources (the root build does it too); its path. */
export const buildSpawner = (): string => {
  const script = fileURLToPath(new URL('../scripts/build-spawner.mjs', import.meta.url))
  execFileSync(process.execPath, [script], { stdio: 'ignore' })
  const binary = defaultSpawnerBinary()
  assert.ok(binary !== undefined && existsSync(binary), 'the spawner was not built: is go (golang-go) installed?')
  return binary
}

/** Run a command that must succeed; returns stdout. */
export const sh = (file: string, args: ReadonlyArray<string>, input?: string): string =>
  execFileSync(file, [...args], {
    encoding: 'utf8',
    input: input ?? '',
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: 10_000
  })

/** Run a command whose failure is fine (cleanup). */
export const shQuiet = (file: string, args: ReadonlyArray<string>): void => {
  try {
    execFileSync(file, [...args], { stdio: 'ignore', timeout: 10_000 })
  } catch {
    // already gone
  }
}

/** Unwrap a TaskEither that must succeed, with the error's description on failure. */
export const ok = async <A>(te: TE.TaskEither<CoreError, A>): Promise<A> => {
  const r = await te()
  if (E.isLeft(r)) assert.fail(`expected success, got ${r.left._tag}: ${describeError(r.left)}`)
  return r.right
}

/** Run a TaskEither that must fail; returns the error. */
export const fails = async <A>(te: TE.TaskEither<CoreError, A>): Promise<CoreError> => {
  const r = await te()
  if (E.isRight(r)) assert.fail(`expected a failure, got ${JSON.stringify(r.right)}`)
  return r.left
}

// -------------------------------------------------------------------------------------
// the run's names and cleanup
// -------------------------------------------------------------------------------------

/**
 * The network a describe block works on: made before its tests (as root), removed after them
 * with the firewall chains and everything `scope` created, also when a test failed.
 */
export const withNetwork = (scope: Scope, dp: LinuxDataplane, net: NetworkT): void => {
  before(async () => {
    requireRoot()
    await ok(dp.ensureNetwork(net))
  })
  after(async () => {
    await dp.deleteNetwork(net)()
    await dp.removeFirewall()()
    await scope.cleanup()
  })
}

/** Everything one test file creates, and its removal. */
export class Scope {
  readonly id = hex(3)
  readonly chainPrefix = `ITT${this.id}`
  private readonly netns: string[] = []
  private readonly links: string[] = []
  private readonly pids: ChildProcess[] = []
  private readonly finalizers: Array<() => Promise<void>> = []

  bridge(tag: string): string {
    const name = `itb${this.id}${tag}`.slice(0, 15)
    this.links.push(name)
    return name
  }

  /** A link name to remove at the end (veths made by a test, dummies, Docker-style peers). */
  track(link: string): string {
    this.links.push(link)
    return link
  }

  addNetns(tag: string): { readonly name: string; readonly path: string } {
    const name = `isthmus-test-${this.id}-${tag}`
    this.netns.push(name)
    sh('ip', ['netns', 'add', name])
    return { name, path: `/var/run/netns/${name}` }
  }

  process(p: ChildProcess): ChildProcess {
    this.pids.push(p)
    return p
  }

  finally(f: () => Promise<void>): void {
    this.finalizers.push(f)
  }

  async cleanup(): Promise<void> {
    for (const p of this.pids) {
      if (p.pid !== undefined && p.exitCode === null && p.signalCode === null) {
        try {
          process.kill(p.pid, 'SIGKILL')
        } catch {
          // exited meanwhile
        }
      }
    }
    for (const f of this.finalizers.reverse()) {
      try {
        await f()
      } catch {
        // keep cleaning
      }
    }
    for (const n of this.netns) shQuiet('ip', ['netns', 'del', n])
    for (const l of this.links) shQuiet('ip', ['link', 'del', 'dev', l])
  }
}

// -------------------------------------------------------------------------------------
// model values
// -------------------------------------------------------------------------------------

export interface NetworkParams {
  readonly id: string
  readonly bridge: string
  readonly v4?: { readonly subnet: string; readonly gateway: string }
  readonly v6?: { readonly subnet: string; readonly gateway: string }
  readonly internal?: boolean
  readonly ipMasquerade?: boolean
  readonly mtu?: number
}

export const network = (p: NetworkParams): NetworkT => {
  const r = Network.decode({
    id: p.id,
    name: p.id,
    addressSpace: 'isthmus-local',
    ipv4: p.v4 === undefined ? [] : [p.v4],
    ipv6: p.v6 === undefined ? [] : [p.v6],
    internal: p.internal ?? false,
    ipMasquerade: p.ipMasquerade ?? true,
    options: {},
    createdAt: new Date(0).toISOString(),
    bridge: p.bridge,
    ...(p.mtu === undefined ? {} : { mtu: p.mtu })
  })
  if (E.isLeft(r)) throw new Error('bad test network')
  return r.right
}

export interface EndpointParams {
  readonly id: string
  readonly network: NetworkT
  readonly v4?: string
  readonly v6?: string
  readonly mac?: string
  readonly routes?: ReadonlyArray<{ readonly dst: string; readonly gw?: string }>
}

export const endpoint = (p: EndpointParams): EndpointT => {
  const id = p.id as EndpointId
  const r = Endpoint.decode({
    id,
    networkId: p.network.id,
    owner: { kind: 'docker', endpointId: id },
    addresses: [...(p.v4 === undefined ? [] : [{ cidr: p.v4 }]), ...(p.v6 === undefined ? [] : [{ cidr: p.v6 }])],
    hostIfName: hostIfName(id),
    peerIfName: peerIfName(id),
    // Without explicit routes, what createEndpoint records: a default route per family via the
    // network's gateway, none on an internal network (the dataplane installs exactly these).
    routes:
      p.routes ??
      (p.network.internal
        ? []
        : [
            ...(p.v4 !== undefined && p.network.ipv4[0]?.gateway !== undefined
              ? [{ dst: '0.0.0.0/0', gw: p.network.ipv4[0].gateway }]
              : []),
            ...(p.v6 !== undefined && p.network.ipv6[0]?.gateway !== undefined
              ? [{ dst: '::/0', gw: p.network.ipv6[0].gateway }]
              : [])
          ]),
    portMappings: [],
    createdAt: new Date(0).toISOString(),
    ...(p.mac === undefined ? {} : { mac: p.mac })
  })
  if (E.isLeft(r)) throw new Error('bad test endpoint')
  return r.right
}

// -------------------------------------------------------------------------------------
// kernel state
// -------------------------------------------------------------------------------------

interface JsonLink {
  readonly ifname: string
  readonly address?: string
  readonly mtu: number
  readonly flags: ReadonlyArray<string>
  readonly master?: string
  readonly ifalias?: string
  readonly addr_info?: ReadonlyArray<{ readonly local: string; readonly prefixlen: number; readonly family: string }>
}

const nsArgs = (ns?: string): string[] => (ns === undefined ? [] : ['-n', ns])

/** The link `dev` (with addresses) in the host or in netns `ns`, or undefined. */
export const link = (dev: string, ns?: string): JsonLink | undefined => {
  try {
    return (JSON.parse(sh('ip', [...nsArgs(ns), '-json', 'addr', 'show', 'dev', dev])) as JsonLink[])[0]
  } catch {
    return undefined
  }
}

/** Names of every link in the host or in netns `ns`. */
export const linkNames = (ns?: string): ReadonlyArray<string> =>
  (JSON.parse(sh('ip', [...nsArgs(ns), '-json', 'link', 'show'])) as JsonLink[]).map((l) => l.ifname)

/** `ip route show` lines in netns `ns` for one family. */
export const routes = (ns: string, family: 4 | 6): ReadonlyArray<string> =>
  sh('ip', ['-n', ns, `-${family}`, 'route', 'show'])
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')

/** The host's neighbour entry for `address` on `dev`, if any. */
export const neighbour = (
  address: string,
  dev: string
): { readonly lladdr?: string; readonly state?: ReadonlyArray<string> } | undefined => {
  const all = JSON.parse(sh('ip', ['-json', 'neigh', 'show', 'dev', dev])) as Array<{
    dst: string
    lladdr?: string
    state?: string[]
  }>
  const e = all.find((n) => n.dst === address)
  return e === undefined
    ? undefined
    : { ...(e.lladdr === undefined ? {} : { lladdr: e.lladdr }), ...(e.state === undefined ? {} : { state: e.state }) }
}

/** Every rule line of our chains in `iptables-save` (or ip6tables-save) output, but the generation marker. */
export const ourRules = (prefix: string, family: 4 | 6 = 4): ReadonlyArray<string> =>
  sh(family === 4 ? 'iptables-save' : 'ip6tables-save', [])
    .split('\n')
    .filter((l) => l.includes(`${prefix}-`) && l.startsWith('-A') && !l.startsWith(`-A ${prefix}-GEN `))

// -------------------------------------------------------------------------------------
// traffic
// -------------------------------------------------------------------------------------

const SERVER = `
const net = require('net')
const [port, tag] = process.argv.slice(1)
net.createServer((s) => s.end(tag + ' ' + s.remoteAddress.replace(/^::ffff:/, ''))).listen(Number(port), '::', () => console.log('ready'))
`

/** A TCP server in netns `ns` answering `<tag> <client address>`; resolves once it listens. */
export const serveIn = async (scope: Scope, ns: string, port: number, tag: string): Promise<void> => {
  const child = scope.process(
    spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER, String(port), tag], {
      stdio: ['ignore', 'pipe', 'pipe']
    })
  )
  await new Promise<void>((resolve, reject) => {
    let err = ''
    const timer = setTimeout(() => reject(new Error(`server in ${ns} did not start: ${err}`)), 10_000)
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()))
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server in ${ns} exited (${code}): ${err}`))
    })
  })
}

const CLIENT = `
const net = require('net')
const [host, port] = process.argv.slice(1)
const s = net.connect({ host, port: Number(port) })
let d = ''
s.setTimeout(2000, () => { console.log('ERR timeout'); process.exit(0) })
s.on('data', (x) => (d += x))
s.on('end', () => { console.log(d); process.exit(0) })
s.on('error', (e) => { console.log('ERR ' + e.code); process.exit(0) })
`

/**
 * Connect from netns `ns` (or from the host when `ns` is undefined) to host:port; resolves with
 * the server's answer, or `ERR <code>` (ECONNREFUSED, ENETUNREACH, timeout).
 */
export const call = async (ns: string | undefined, host: string, port: number): Promise<string> => {
  const argv =
    ns === undefined
      ? [process.execPath, '-e', CLIENT, host, String(port)]
      : ['ip', 'netns', 'exec', ns, process.execPath, '-e', CLIENT, host, String(port)]
  return new Promise((resolve, reject) => {
    execFile(argv[0] ?? '', argv.slice(1), { timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) =>
      err === null ? resolve(stdout.trim()) : reject(new Error(`client failed: ${err.message} ${stderr}`))
    )
  })
}
