/**
 * In-memory fakes of every port except the Store (see `memoryStore`), for isthmus's own flow
 * tests and for integrators testing their code against the core.
 *
 * Every fake with TaskEither methods is a `Fake<P, S>`:
 *   - `port`:  the port record to put into an `Env`; it is wrapped by `instrument`, so its calls
 *              land in a journal and `probe.failAt({ method, nth?, error? })` makes a call fail
 *              without running it (the fake's state is then untouched, as after a real failure);
 *   - `probe`: that instrument handle (`calls`, `callsOf`, `failAt`, `reset`);
 *   - `state`: a live view of what the fake holds (for assertions such as "no link left" or
 *              "the link is in sandbox X as eth0"), plus a few set-up helpers whose names say
 *              they change the world behind the port's back (`addDevice`, `addStrayLink`,
 *              `runtimeMove`).
 * The logger and the clock have no TaskEither methods, so they are `Handle<P, S>` = `{ port, state }`.
 * `testEnv()` builds a whole `Env` from `memoryStore()` and these fakes, sharing one journal.
 */
import * as E from 'fp-ts/lib/Either.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import {
  addressInUse,
  dataplane as dataplaneError,
  invalidConfig,
  invalidNetns,
  notFound,
  poolExhausted,
  type CoreError
} from '../errors.js'
import {
  DEFAULT_LOCAL_SPACE,
  HOST_IF_PREFIX,
  PEER_IF_PREFIX,
  type AddressSpace,
  type EndpointId,
  type IfName,
  type NetworkId,
  type PoolId,
  type SandboxKey
} from '../ids.js'
import {
  boundsOf,
  contains,
  familyOf,
  fromBigInt,
  joinCidr,
  splitCidr,
  type Cidr,
  type Family,
  type IpAddress,
  type MacAddress,
  type Subnet
} from '../model/Address.js'
import type { EndpointAddress, PortMapping, Route } from '../model/Endpoint.js'
import type { Network, NetworkSubnet } from '../model/Network.js'
import type { Agent } from '../ports/Agent.js'
import type { Clock } from '../ports/Clock.js'
import type { AddressRequest, ControlPlane, EndpointBinding, NetworkBinding } from '../ports/ControlPlane.js'
import type { Dataplane, HostNetwork } from '../ports/Dataplane.js'
import type { Env, Flow } from '../ports/Env.js'
import type { LogFields, Logger } from '../ports/Logger.js'
import type { Store } from '../ports/Store.js'
import { instrument, journal as newJournal, type Journal, type Probe } from './instrument.js'
import { memoryStore } from './memoryStore.js'

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** An instrumented fake port: the port, its probe, and a live view of what it holds. @category testing */
export interface Fake<P, S> {
  readonly port: P
  readonly probe: Probe
  readonly state: S
}

/** A fake whose port has no TaskEither methods to instrument (logger, clock). @category testing */
export interface Handle<P, S> {
  readonly port: P
  readonly state: S
}

// Every fake method does its work inside the returned task, never when it is called: `instrument`
// decides at run time whether the call fails, and an injected failure must leave the state alone.
const task =
  <A>(f: () => E.Either<CoreError, A>): TE.TaskEither<CoreError, A> =>
  () =>
    Promise.resolve(f())

const ok = E.right(undefined)

// FNV-1a 32 with a seed: deterministic bytes for MACs, no crypto import in core.
const fnv1a32 = (s: string, seed: number): number => {
  let h = (0x811c9dc5 ^ seed) >>> 0
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

/**
 * A deterministic, locally administered unicast MAC (`02:…`) derived from `seed`: the fakes'
 * stand-in for the kernel's random veth MAC, so tests can predict it.
 *
 * @category testing
 */
export const fakeMac = (seed: string): MacAddress => {
  const a = fnv1a32(seed, 1)
  const b = fnv1a32(seed, 2)
  const bytes = [2, (a >>> 24) & 0xff, (a >>> 16) & 0xff, (a >>> 8) & 0xff, a & 0xff, b & 0xff]
  return bytes.map((x) => x.toString(16).padStart(2, '0')).join(':') as MacAddress
}

// -------------------------------------------------------------------------------------
// dataplane
// -------------------------------------------------------------------------------------

/** Where a link is: the host namespace, or inside a sandbox under another name. @category testing */
export type LinkLocation =
  { readonly _tag: 'Host' } | { readonly _tag: 'Sandbox'; readonly sandbox: SandboxKey; readonly ifName: IfName }

/** One link of the fake host. @category testing */
export interface FakeLink {
  /** The name it was created with (its name whenever it is in the host namespace). */
  readonly name: IfName
  /** The endpoint it was made for; absent for stray links planted by a test. */
  readonly endpointId?: EndpointId
  /** Which end of a veth pair: the host end (on the device) or the end meant for the sandbox. */
  readonly side: 'host' | 'sandbox'
  readonly peer?: IfName
  readonly mac: MacAddress
  /** The network device the host end hangs on. */
  readonly device?: string
  readonly location: LinkLocation
  /** Set when the dataplane placed it (PluginMoves). */
  readonly addresses: ReadonlyArray<Cidr>
  readonly routes: ReadonlyArray<Route>
}

/** A network the fake dataplane knows. @category testing */
export interface FakeHostNetwork {
  readonly networkId: NetworkId
  readonly device: string
}

/** @category testing */
export interface FakeDataplaneState {
  readonly networks: () => ReadonlyArray<FakeHostNetwork>
  /** Devices on the host, with whether this fake created them. */
  readonly devices: () => ReadonlyArray<{ readonly name: string; readonly createdByUs: boolean }>
  readonly links: () => ReadonlyArray<FakeLink>
  readonly link: (name: IfName) => FakeLink | undefined
  /** The link inside `sandbox` named `ifName`, if any. */
  readonly linkIn: (sandbox: SandboxKey, ifName: IfName) => FakeLink | undefined
  readonly linksOf: (id: EndpointId) => ReadonlyArray<FakeLink>
  /** Port mappings currently published for an endpoint. */
  readonly published: (id: EndpointId) => ReadonlyArray<PortMapping>
  /** Set-up: a device that existed before isthmus (an operator's bridge); ensureNetwork reuses it. */
  readonly addDevice: (name: string) => void
  /**
   * Set-up: a link left behind by a crashed run; with `peer`, a veth pair both in the host; with
   * `endpointId`, one that names the endpoint it was made for (as every link isthmus makes does).
   */
  readonly addStrayLink: (name: IfName, peer?: IfName, device?: string, endpointId?: EndpointId) => void
  /** Set-up: the runtime moves a link itself (Docker at Join, and back at DeleteEndpoint). */
  readonly runtimeMove: (name: IfName, to: LinkLocation) => void
}

/** @category testing */
export interface FakeDataplaneOptions {
  /** When given, only these sandboxes exist: placing into another fails with InvalidNetns. */
  readonly sandboxes?: ReadonlyArray<SandboxKey>
}

/** @category testing */
export type FakeDataplane = Fake<Dataplane, FakeDataplaneState>

const isOurs = (name: string): boolean => name.startsWith(HOST_IF_PREFIX) || name.startsWith(PEER_IF_PREFIX)

/**
 * A fake host network: devices, veth pairs by name with MAC and location, and published ports.
 * Behaves as the Dataplane contract says: `ensure*` return what exists, deletes of absent things
 * succeed, removing one end of a veth pair removes the other (as the kernel does).
 *
 * @category testing
 */
export const fakeDataplane = (options: FakeDataplaneOptions = {}, shared?: Journal): FakeDataplane => {
  const devices = new Map<string, { createdByUs: boolean }>()
  const networks = new Map<NetworkId, FakeHostNetwork>()
  const links = new Map<IfName, FakeLink>()
  const published = new Map<EndpointId, ReadonlyArray<PortMapping>>()
  const sandboxes = options.sandboxes === undefined ? undefined : new Set<string>(options.sandboxes)

  const deviceName = (n: Network): string => n.bridge ?? `br-${n.id.slice(0, 12)}`
  const removeLinkAndPeer = (name: IfName): void => {
    const l = links.get(name)
    links.delete(name)
    if (l?.peer !== undefined) links.delete(l.peer)
  }
  const inSandbox = (sandbox: SandboxKey, ifName: IfName): FakeLink | undefined =>
    [...links.values()].find(
      (l) => l.location._tag === 'Sandbox' && l.location.sandbox === sandbox && l.location.ifName === ifName
    )

  const port: Dataplane = {
    ensureNetwork: (network) =>
      task((): E.Either<CoreError, HostNetwork> => {
        const known = networks.get(network.id)
        if (known !== undefined) return E.right({ device: known.device, created: false })
        const device = deviceName(network)
        const created = !devices.has(device)
        if (created) devices.set(device, { createdByUs: true })
        networks.set(network.id, { networkId: network.id, device })
        return E.right({ device, created })
      }),
    deleteNetwork: (network) =>
      task(() => {
        const known = networks.get(network.id)
        if (known === undefined) return ok
        networks.delete(network.id)
        const shared = [...networks.values()].some((n) => n.device === known.device)
        // An operator's device stays: isthmus removes only what it created.
        if (!shared && devices.get(known.device)?.createdByUs === true) devices.delete(known.device)
        return ok
      }),
    ensureEndpoint: ({ endpoint, network }) =>
      task(() => {
        const host = networks.get(network.id)
        if (host === undefined) return E.left(notFound('network', network.id))
        const existing = links.get(endpoint.peerIfName)
        if (existing !== undefined) return E.right({ mac: existing.mac })
        const mac = endpoint.mac ?? fakeMac(endpoint.id)
        links.set(endpoint.hostIfName, {
          name: endpoint.hostIfName,
          endpointId: endpoint.id,
          side: 'host',
          peer: endpoint.peerIfName,
          mac: fakeMac(`host:${endpoint.id}`),
          device: host.device,
          location: { _tag: 'Host' },
          addresses: [],
          routes: []
        })
        links.set(endpoint.peerIfName, {
          name: endpoint.peerIfName,
          endpointId: endpoint.id,
          side: 'sandbox',
          peer: endpoint.hostIfName,
          mac,
          location: { _tag: 'Host' },
          addresses: [],
          routes: []
        })
        return E.right({ mac })
      }),
    place: ({ endpoint }, placement) =>
      task(() => {
        const link = links.get(endpoint.peerIfName)
        if (link === undefined) return E.left(notFound('endpoint', endpoint.id))
        if (placement._tag === 'RuntimeMoves') return E.right({ ifName: link.name, mac: link.mac })
        const { sandbox, ifName } = placement
        if (sandboxes !== undefined && !sandboxes.has(sandbox)) {
          return E.left(invalidNetns(sandbox, 'no such network namespace'))
        }
        const occupant = inSandbox(sandbox, ifName)
        if (occupant !== undefined && occupant.name !== link.name) {
          // CNI SPEC §ADD: an interface of that name already in the container is an error.
          const argv = ['ip', 'link', 'set', link.name, 'name', ifName]
          return E.left(dataplaneError(argv, 2, 'RTNETLINK answers: File exists'))
        }
        links.set(link.name, {
          ...link,
          location: { _tag: 'Sandbox', sandbox, ifName },
          addresses: endpoint.addresses.map((a) => a.cidr),
          routes: [...endpoint.routes]
        })
        return E.right({ ifName, mac: link.mac, sandbox })
      }),
    deleteEndpoint: ({ endpoint }) =>
      task(() => {
        removeLinkAndPeer(endpoint.hostIfName)
        removeLinkAndPeer(endpoint.peerIfName)
        return ok
      }),
    publishPorts: ({ endpoint }, ports) =>
      task(() => {
        published.set(endpoint.id, [...ports])
        return ok
      }),
    unpublishPorts: ({ endpoint }) =>
      task(() => {
        published.delete(endpoint.id)
        return ok
      }),
    inventory: (scope) =>
      task(() =>
        E.right({
          // Only the host namespace is visible from the host: a link inside a sandbox is not listed.
          links: [...links.values()]
            .filter((l) => l.location._tag === 'Host' && isOurs(l.name))
            .filter((l) => scope === undefined || (l.side === 'host' && scope.some((n) => deviceName(n) === l.device)))
            .map((l) => l.name),
          // As the Linux dataplane's aliases do: the endpoint each link was made for.
          endpoints: Object.fromEntries(
            [...links.values()].flatMap((l) => (l.endpointId === undefined ? [] : [[l.name, l.endpointId] as const]))
          ),
          networks: [...devices.entries()].filter(([, d]) => d.createdByUs).map(([name]) => name)
        })
      ),
    removeLink: (name) =>
      task(() => {
        removeLinkAndPeer(name)
        return ok
      })
  }

  const [instrumented, probe] = instrument('dataplane', port, shared)
  const state: FakeDataplaneState = {
    networks: () => [...networks.values()],
    devices: () => [...devices.entries()].map(([name, d]) => ({ name, createdByUs: d.createdByUs })),
    links: () => [...links.values()],
    link: (name) => links.get(name),
    linkIn: inSandbox,
    linksOf: (id) => [...links.values()].filter((l) => l.endpointId === id),
    published: (id) => published.get(id) ?? [],
    addDevice: (name) => {
      devices.set(name, { createdByUs: false })
    },
    addStrayLink: (name, peer, device, endpointId) => {
      const stray = (n: IfName, p: IfName | undefined, side: FakeLink['side']): FakeLink => ({
        name: n,
        ...(endpointId !== undefined ? { endpointId } : {}),
        side,
        ...(p !== undefined ? { peer: p } : {}),
        ...(device !== undefined && side === 'host' ? { device } : {}),
        mac: fakeMac(`stray:${n}`),
        location: { _tag: 'Host' },
        addresses: [],
        routes: []
      })
      links.set(name, stray(name, peer, 'host'))
      if (peer !== undefined) links.set(peer, stray(peer, name, 'sandbox'))
    },
    runtimeMove: (name, to) => {
      const l = links.get(name)
      if (l !== undefined) links.set(name, { ...l, location: to })
    }
  }
  return { port: instrumented, probe, state }
}

// -------------------------------------------------------------------------------------
// control plane
// -------------------------------------------------------------------------------------

/** One address the fake control plane holds for an endpoint. @category testing */
export interface HeldAddress {
  readonly addressSpace: AddressSpace
  readonly address: IpAddress
  readonly networkId: NetworkId
  readonly endpointId: EndpointId
}

/** @category testing */
export interface FakeControlPlaneState {
  readonly networks: () => ReadonlyArray<NetworkId>
  readonly binding: (id: NetworkId) => NetworkBinding | undefined
  readonly endpoints: () => ReadonlyArray<EndpointId>
  readonly held: () => ReadonlyArray<HeldAddress>
  readonly heldBy: (id: EndpointId) => ReadonlyArray<HeldAddress>
}

/** @category testing */
export interface FakeControlPlaneOptions {
  /** Give each endpoint a MAC and a controller identity, as an SDN controller (Contrail) does. */
  readonly identity?: boolean
}

/** @category testing */
export type FakeControlPlane = Fake<ControlPlane, FakeControlPlaneState>

// How far the fake searches a subnet for a free address: enough for tests, bounded for IPv6.
const SEARCH_LIMIT = 4096n

/**
 * A trivial control plane: a subnet left open gets the next of 10.250.k.0/24 or fd00:250:k::/64,
 * the gateway is the first host unless given, and addresses are handed out lowest first. It keeps
 * what it holds so a test can assert "nothing held" after a rollback. It does not write the
 * Store's leases: the built-in control plane does that.
 *
 * @category testing
 */
export const fakeControlPlane = (options: FakeControlPlaneOptions = {}, shared?: Journal): FakeControlPlane => {
  const networks = new Map<NetworkId, NetworkBinding>()
  const endpoints = new Map<EndpointId, EndpointBinding>()
  const held = new Map<string, HeldAddress>()
  let picked = 0
  const key = (space: AddressSpace, address: IpAddress): string => `${space}\0${address}`

  const subnetOf = (network: Network, address: IpAddress): NetworkSubnet | undefined =>
    [...network.ipv4, ...network.ipv6].find((s) => contains(s.subnet, address))

  const firstFree = (network: Network, family: Family): E.Either<CoreError, EndpointAddress> => {
    const subnets = family === 4 ? network.ipv4 : network.ipv6
    for (const s of subnets) {
      const { first, last } = boundsOf(s.subnet)
      const end = family === 4 ? last - 1n : last
      for (let n = first + 1n; n <= end && n - first <= SEARCH_LIMIT; n++) {
        const a = fromBigInt(n, family)
        if (a === s.gateway || held.has(key(network.addressSpace, a))) continue
        return E.right(toAddress(joinCidr(a, splitCidr(s.subnet).prefix), s))
      }
    }
    return E.left(poolExhausted(subnets[0]?.poolId ?? subnets[0]?.subnet ?? `IPv${family} of ${network.id}`))
  }
  const toAddress = (cidr: Cidr, s: NetworkSubnet | undefined): EndpointAddress => ({
    cidr,
    ...(s?.poolId !== undefined ? { poolId: s.poolId } : {}),
    ...(s?.gateway !== undefined ? { gateway: s.gateway } : {})
  })
  const one = (network: Network, r: AddressRequest): E.Either<CoreError, EndpointAddress> => {
    switch (r._tag) {
      case 'Any':
        return firstFree(network, r.family)
      case 'Static':
      case 'Assigned': {
        const address = r._tag === 'Static' ? r.address : splitCidr(r.cidr).address
        const s = subnetOf(network, address)
        if (s === undefined) return E.left(invalidConfig(`${address} is in no subnet of network ${network.id}`))
        if (address === s.gateway) return E.left(addressInUse(address, network.addressSpace, 'the gateway'))
        const holder = held.get(key(network.addressSpace, address))
        if (holder !== undefined) {
          return E.left(addressInUse(address, network.addressSpace, `endpoint ${holder.endpointId}`))
        }
        const cidr = r._tag === 'Static' ? joinCidr(address, splitCidr(s.subnet).prefix) : r.cidr
        return E.right(toAddress(cidr, s))
      }
    }
  }

  const port: ControlPlane = {
    ensureNetwork: (spec) =>
      task(() => {
        const known = networks.get(spec.id)
        if (known !== undefined) return E.right(known)
        const addressSpace = spec.addressSpace ?? DEFAULT_LOCAL_SPACE
        const subnets = spec.subnets.map((r): NetworkSubnet => {
          const subnet =
            r.subnet ?? ((r.family === 4 ? `10.250.${picked}.0/24` : `fd00:250:${picked.toString(16)}::/64`) as Subnet)
          if (r.subnet === undefined) picked++
          const poolId = r.poolId ?? (spec.managedAddresses ? (`fake/${addressSpace}/${subnet}` as PoolId) : undefined)
          const gateway = r.gateway ?? fromBigInt(boundsOf(subnet).first + 1n, familyOf(subnet))
          return { subnet, gateway, ...(poolId !== undefined ? { poolId } : {}) }
        })
        const binding: NetworkBinding = {
          addressSpace,
          ipv4: subnets.filter((s) => familyOf(s.subnet) === 4),
          ipv6: subnets.filter((s) => familyOf(s.subnet) === 6),
          ...(spec.controller !== undefined ? { controller: spec.controller } : {})
        }
        networks.set(spec.id, binding)
        return E.right(binding)
      }),
    deleteNetwork: (network) =>
      task(() => {
        networks.delete(network.id)
        return ok
      }),
    createEndpoint: (network, request) =>
      task((): E.Either<CoreError, EndpointBinding> => {
        if (!networks.has(network.id)) return E.left(notFound('network', network.id))
        const known = endpoints.get(request.id)
        if (known !== undefined) return E.right(known)
        const addresses: EndpointAddress[] = []
        const hold = (a: EndpointAddress): void => {
          const address = splitCidr(a.cidr).address
          held.set(key(network.addressSpace, address), {
            addressSpace: network.addressSpace,
            address,
            networkId: network.id,
            endpointId: request.id
          })
        }
        for (const r of request.addresses) {
          const got = one(network, r)
          if (E.isLeft(got)) {
            // All or nothing: give back what this call already took.
            for (const a of addresses) held.delete(key(network.addressSpace, splitCidr(a.cidr).address))
            return got
          }
          hold(got.right)
          addresses.push(got.right)
        }
        const binding: EndpointBinding = {
          addresses,
          ...(options.identity === true
            ? {
                mac: request.mac ?? fakeMac(`controller:${request.id}`),
                controller: { interfaceId: `vmi-${request.id}` }
              }
            : {})
        }
        endpoints.set(request.id, binding)
        return E.right(binding)
      }),
    deleteEndpoint: (network, endpoint) =>
      task(() => {
        endpoints.delete(endpoint.id)
        for (const [k, h] of [...held.entries()]) {
          if (h.endpointId === endpoint.id && h.networkId === network.id) held.delete(k)
        }
        return ok
      })
  }

  const [instrumented, probe] = instrument('controlPlane', port, shared)
  const state: FakeControlPlaneState = {
    networks: () => [...networks.keys()],
    binding: (id) => networks.get(id),
    endpoints: () => [...endpoints.keys()],
    held: () => [...held.values()],
    heldBy: (id) => [...held.values()].filter((h) => h.endpointId === id)
  }
  return { port: instrumented, probe, state }
}

// -------------------------------------------------------------------------------------
// agent, logger, clock
// -------------------------------------------------------------------------------------

/** @category testing */
export interface FakeAgentState {
  readonly ports: () => ReadonlyArray<{ readonly endpointId: EndpointId; readonly networkId: NetworkId }>
  readonly has: (id: EndpointId) => boolean
}

/** @category testing */
export type FakeAgent = Fake<Agent, FakeAgentState>

/** A forwarding agent that remembers the ports it was told about. @category testing */
export const fakeAgent = (shared?: Journal): FakeAgent => {
  const ports = new Map<EndpointId, NetworkId>()
  const port: Agent = {
    addPort: (network, endpoint) =>
      task(() => {
        ports.set(endpoint.id, network.id)
        return ok
      }),
    deletePort: (_network, endpoint) =>
      task(() => {
        ports.delete(endpoint.id)
        return ok
      })
  }
  const [instrumented, probe] = instrument('agent', port, shared)
  return {
    port: instrumented,
    probe,
    state: {
      ports: () => [...ports.entries()].map(([endpointId, networkId]) => ({ endpointId, networkId })),
      has: (id) => ports.has(id)
    }
  }
}

/** @category testing */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

/** @category testing */
export interface LogEntry {
  readonly level: LogLevel
  readonly msg: string
  readonly fields: LogFields
}

/** @category testing */
export interface RecordingLoggerState {
  /** Every entry, oldest first (a live array). */
  readonly entries: ReadonlyArray<LogEntry>
  readonly at: (level: LogLevel) => ReadonlyArray<LogEntry>
  readonly clear: () => void
}

/** @category testing */
export type RecordingLogger = Handle<Logger, RecordingLoggerState>

/** A logger that keeps its entries. @category testing */
export const recordingLogger = (): RecordingLogger => {
  const entries: LogEntry[] = []
  const at =
    (level: LogLevel) =>
    (msg: string, fields: LogFields = {}): void => {
      entries.push({ level, msg, fields })
    }
  return {
    port: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
    state: {
      entries,
      at: (level) => entries.filter((e) => e.level === level),
      clear: () => {
        entries.length = 0
      }
    }
  }
}

/** @category testing */
export interface FixedClockState {
  readonly set: (date: Date) => void
  readonly advance: (ms: number) => void
}

/** @category testing */
export type FixedClock = Handle<Clock, FixedClockState>

/** A clock that says `date` until told otherwise. @category testing */
export const fixedClock = (date: Date = new Date('2024-01-01T00:00:00.000Z')): FixedClock => {
  let now = date.getTime()
  return {
    port: { now: () => new Date(now) },
    state: {
      set: (d) => {
        now = d.getTime()
      },
      advance: (ms) => {
        now += ms
      }
    }
  }
}

// -------------------------------------------------------------------------------------
// a whole environment
// -------------------------------------------------------------------------------------

/** @category testing */
export interface TestEnvOptions {
  readonly now?: Date
  readonly dataplane?: FakeDataplaneOptions
  readonly controlPlane?: FakeControlPlaneOptions
  /** Ports to use instead of the fakes (the replaced fake is still returned, unused). */
  readonly env?: Partial<Env>
}

/** @category testing */
export interface TestEnv {
  readonly env: Env
  /** Calls of every instrumented port (store included), in the order they ran. */
  readonly journal: Journal
  readonly store: { readonly port: Store; readonly probe: Probe }
  readonly dataplane: FakeDataplane
  readonly controlPlane: FakeControlPlane
  readonly agent: FakeAgent
  readonly log: RecordingLogger
  readonly clock: FixedClock
  /** Run a flow against `env`. */
  readonly run: <A>(flow: Flow<A>) => Promise<E.Either<CoreError, A>>
}

/**
 * An Env of `memoryStore()` and the fakes, all instrumented into one journal.
 *
 * @example
 * const t = testEnv()
 * t.dataplane.probe.failAt({ method: 'ensureEndpoint' })
 * const r = await t.run(createEndpoint(networkId, request))
 *
 * @category testing
 */
export const testEnv = (options: TestEnvOptions = {}): TestEnv => {
  const j = newJournal()
  const [store, storeProbe] = instrument('store', memoryStore(), j)
  const dataplane = fakeDataplane(options.dataplane, j)
  const controlPlane = fakeControlPlane(options.controlPlane, j)
  const agent = fakeAgent(j)
  const log = recordingLogger()
  const clock = fixedClock(options.now)
  const env: Env = {
    store,
    dataplane: dataplane.port,
    controlPlane: controlPlane.port,
    agent: agent.port,
    log: log.port,
    clock: clock.port,
    ...options.env
  }
  return {
    env,
    journal: j,
    store: { port: store, probe: storeProbe },
    dataplane,
    controlPlane,
    agent,
    log,
    clock,
    run: (flow) => flow(env)()
  }
}
