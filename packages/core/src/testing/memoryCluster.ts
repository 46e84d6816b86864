/**
 * An in-memory Cluster: the reference semantics of the Cluster port, shared by any number of
 * clients (one per simulated host) in one process. Host registrations hold leases on the cluster's
 * own clock, which a test moves with `advance`: a registration is kept alive while its client is
 * open, and expires `ttlSeconds` after its client is closed (a daemon killed, or cut off from etcd).
 */
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type * as t from 'io-ts'
import { decodeWith } from '../decode.js'
import { alreadyExists, causeText, decodeFailure, notFound, transient, type CoreError } from '../errors.js'
import { overlaps, type IpAddress, type MacAddress, type Subnet } from '../model/Address.js'
import { Block, ClusterNetwork, HostRecord, type ClusterNetworkName, type HostName } from '../model/Cluster.js'
import type { Closable, Cluster, ClusterView } from '../ports/Cluster.js'
import type { Overlay, OverlayPeer, Vtep } from '../ports/Overlay.js'
import { instrument, type Probe } from './instrument.js'

/** @category testing */
export interface MemoryClusterOptions {
  /** The cluster clock's start (the default: 2024-01-01). */
  readonly now?: Date
}

/** One client of the memory cluster, with its probe (record calls, inject failures). @category testing */
export interface MemoryClusterClient {
  readonly port: Cluster
  readonly probe: Probe
}

/** @category testing */
export interface MemoryClusterState {
  /** Another client of the same cluster: another host's daemon. */
  readonly connect: () => MemoryClusterClient
  /** Move the cluster's clock: registrations of closed clients past their TTL expire (a view follows). */
  readonly advance: (ms: number) => void
  readonly now: () => Date
  /**
   * End a host's registration now, as etcd does when its lease was not kept alive (the host was
   * cut off for longer than its TTL); its client stays open and may register again.
   */
  readonly expire: (host: string) => void
  /** Every call of every client fails with `Transient` (etcd unreachable) until `heal`. */
  readonly partition: () => void
  readonly heal: () => void
  /** What the cluster holds now, at once (expired hosts left out). */
  readonly snapshot: () => ClusterView
}

/** @category testing */
export interface MemoryCluster extends MemoryClusterClient {
  readonly state: MemoryClusterState
}

interface Registration {
  readonly id: number
  readonly record: HostRecord
  readonly ttlMs: number
  readonly client: number
  /** Epoch ms after which it is gone; undefined while its client keeps it alive. */
  deadline: number | undefined
}

interface Watcher {
  readonly client: number
  readonly onView: (view: ClusterView) => void
  readonly onError: (e: CoreError) => void
  closed: boolean
  scheduled: boolean
}

const blockKey = (network: ClusterNetworkName, cidr: Subnet): string => `${network}\0${cidr}`

// Stored as JSON and decoded on read, as a real store does: a caller cannot change what it holds.
const copy = <A>(codec: t.Type<A, unknown>, a: A): E.Either<CoreError, A> =>
  pipe(
    E.tryCatch(
      () => JSON.parse(JSON.stringify(codec.encode(a))) as unknown,
      (e) => decodeFailure(codec.name, [`not representable as JSON (${causeText(e)})`])
    ),
    E.chain(decodeWith(codec))
  )

/**
 * A Cluster in memory, with its first client. `state.connect()` makes more clients of the same
 * cluster; closing a client stops its watches and lets its registrations expire on the clock.
 *
 * @category testing
 */
export const memoryCluster = (options: MemoryClusterOptions = {}): MemoryCluster => {
  let now = (options.now ?? new Date('2024-01-01T00:00:00.000Z')).getTime()
  let revision = 1
  let nextId = 1
  let down = false
  const hosts = new Map<HostName, Registration>()
  const networks = new Map<ClusterNetworkName, ClusterNetwork>()
  const blocks = new Map<string, Block>()
  const watchers = new Set<Watcher>()
  const closedClients = new Set<number>()

  const live = (): HostRecord[] => [...hosts.values()].map((r) => r.record)

  const view = (): ClusterView => ({
    revision: String(revision),
    hosts: live(),
    networks: [...networks.values()],
    blocks: [...blocks.values()]
  })

  // Deliver later, coalesced: a burst of changes gives one view of the latest state.
  const schedule = (w: Watcher): void => {
    if (w.scheduled || w.closed) return
    w.scheduled = true
    setImmediate(() => {
      w.scheduled = false
      // A watch hears nothing during an outage; `heal` sends the view then.
      if (!w.closed && !down) w.onView(view())
    })
  }

  const changed = (): void => {
    revision += 1
    for (const w of watchers) schedule(w)
  }

  const expire = (): void => {
    let any = false
    for (const [name, r] of hosts) {
      if (r.deadline !== undefined && r.deadline <= now) {
        hosts.delete(name)
        any = true
      }
    }
    if (any) changed()
  }

  const makeClient = (client: number): Cluster => {
    // Every call checks the partition and expiry when it runs, not when it is built.
    const op =
      <A>(f: () => E.Either<CoreError, A>): TE.TaskEither<CoreError, A> =>
      () => {
        if (down) return Promise.resolve(E.left(transient('the cluster store cannot be reached (partitioned)')))
        expire()
        return Promise.resolve(f())
      }

    const port: Cluster = {
      hosts: {
        register: (host, ttlSeconds) =>
          op(() =>
            pipe(
              copy(HostRecord, host),
              E.map((record): Closable => {
                const id = nextId++
                hosts.set(record.name, {
                  id,
                  record,
                  ttlMs: ttlSeconds * 1000,
                  client,
                  deadline: closedClients.has(client) ? now + ttlSeconds * 1000 : undefined
                })
                changed()
                return {
                  close: () => {
                    // Only this registration's record: a newer one of the same name stays.
                    if (hosts.get(record.name)?.id === id) {
                      hosts.delete(record.name)
                      changed()
                    }
                    return Promise.resolve()
                  }
                }
              })
            )
          ),
        list: () => op(() => E.right(live()))
      },
      networks: {
        define: (network) =>
          op(() =>
            pipe(
              copy(ClusterNetwork, network),
              E.chain((n) => {
                const stored = networks.get(n.name)
                if (stored !== undefined) return E.right(stored)
                for (const other of networks.values()) {
                  if (other.vni === n.vni) {
                    return E.left(
                      alreadyExists('network', n.name, `VXLAN id ${n.vni} belongs to cluster network ${other.name}`)
                    )
                  }
                  if (overlaps(other.subnet, n.subnet)) {
                    return E.left(
                      alreadyExists(
                        'network',
                        n.name,
                        `subnet ${n.subnet} overlaps cluster network ${other.name} (${other.subnet})`
                      )
                    )
                  }
                }
                networks.set(n.name, n)
                changed()
                return E.right(n)
              })
            )
          ),
        get: (name) => op(() => E.right(O.fromNullable(networks.get(name)))),
        list: () => op(() => E.right([...networks.values()])),
        remove: (name) =>
          op(() => {
            if (!networks.has(name)) return E.right(true)
            if ([...blocks.values()].some((b) => b.network === name)) return E.right(false)
            networks.delete(name)
            changed()
            return E.right(true)
          })
      },
      blocks: {
        claim: (block) =>
          op(() =>
            pipe(
              copy(Block, block),
              E.chain((b) => {
                if (!networks.has(b.network)) return E.left(notFound('network', `cluster network ${b.network}`))
                const k = blockKey(b.network, b.cidr)
                if (blocks.has(k)) return E.right(false)
                blocks.set(k, b)
                changed()
                return E.right(true)
              })
            )
          ),
        release: (network, cidr, host) =>
          op(() => {
            const k = blockKey(network, cidr)
            if (blocks.get(k)?.host === host) {
              blocks.delete(k)
              changed()
            }
            return E.right(undefined)
          }),
        list: (network) =>
          op(() => E.right([...blocks.values()].filter((b) => network === undefined || b.network === network)))
      },
      watch: (onView, onError) =>
        op(() => {
          const w: Watcher = { client, onView, onError, closed: false, scheduled: false }
          watchers.add(w)
          schedule(w)
          return E.right({
            close: () => {
              w.closed = true
              watchers.delete(w)
              return Promise.resolve()
            }
          })
        }),
      ping: () => op(() => E.right(undefined)),
      close: () => {
        closedClients.add(client)
        for (const w of watchers) {
          if (w.client === client) {
            w.closed = true
            watchers.delete(w)
          }
        }
        // Its keep-alives stop: its registrations now expire on the clock.
        for (const r of hosts.values()) {
          if (r.client === client && r.deadline === undefined) r.deadline = now + r.ttlMs
        }
        return Promise.resolve()
      }
    }
    return port
  }

  let clients = 0
  const connect = (): MemoryClusterClient => {
    const [port, probe] = instrument('cluster', makeClient(clients++))
    return { port, probe }
  }

  const first = connect()
  return {
    ...first,
    state: {
      connect,
      advance: (ms) => {
        now += ms
        expire()
      },
      now: () => new Date(now),
      expire: (name) => {
        if (hosts.delete(name as HostName)) changed()
      },
      // As a real adapter's watch: the outage is reported, and a fresh view follows the reconnection.
      partition: () => {
        down = true
        for (const w of watchers) w.onError(transient('the cluster store cannot be reached (partitioned)'))
      },
      heal: () => {
        down = false
        for (const w of watchers) schedule(w)
      },
      snapshot: () => {
        expire()
        return view()
      }
    }
  }
}

// -------------------------------------------------------------------------------------
// a recording Overlay
// -------------------------------------------------------------------------------------

/** What the fake overlay holds: per network id, its VNI and the peers last set. @category testing */
export interface FakeOverlayState {
  readonly devices: Map<string, { readonly vni: number; readonly bridge: string | undefined }>
  readonly peers: Map<string, ReadonlyArray<OverlayPeer>>
  /** The hosts a network's overlay points at now, sorted. */
  readonly hostsOf: (networkId: string) => ReadonlyArray<string>
}

/** @category testing */
export interface FakeOverlay {
  readonly port: Overlay
  readonly probe: Probe
  readonly state: FakeOverlayState
}

/**
 * An Overlay that keeps in memory what the kernel would hold (a device per network, the peers
 * set for it), records its calls and fails on demand (`probe.failAt`).
 *
 * @category testing
 */
export const fakeOverlay = (vtep: Vtep = FAKE_VTEP, overhead = 50): FakeOverlay => {
  const devices: FakeOverlayState['devices'] = new Map()
  const peers: FakeOverlayState['peers'] = new Map()
  const done =
    <A>(f: () => A): TE.TaskEither<CoreError, A> =>
    () =>
      Promise.resolve(E.right(f()))
  const raw: Overlay = {
    overhead,
    vtep: () => done(() => vtep),
    ensure: (spec) =>
      done(() => {
        devices.set(spec.network.id, { vni: spec.vni, bridge: spec.network.bridge })
      }),
    setPeers: (spec, ps) => () =>
      Promise.resolve(
        devices.has(spec.network.id)
          ? E.right(void peers.set(spec.network.id, ps))
          : E.left(notFound('network', `overlay of ${spec.network.id}`))
      ),
    remove: (spec) =>
      done(() => {
        devices.delete(spec.network.id)
        peers.delete(spec.network.id)
      })
  }
  const [port, probe] = instrument('overlay', raw)
  return {
    port,
    probe,
    state: {
      devices,
      peers,
      hostsOf: (id) => (peers.get(id) ?? []).map((p) => p.host).sort()
    }
  }
}

const FAKE_VTEP: Vtep = { underlay: '192.0.2.1' as IpAddress, mac: '02:00:00:00:00:01' as MacAddress }
