/**
 * The Dataplane port on Linux, assembled from the bridge, veth, iptables and sysctl modules.
 * Independent steps run in parallel (the bridge and the iptables transaction of a network; the
 * veth deletion and the port rules of an endpoint), since each is a process of its own.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as T from 'fp-ts/lib/Task.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import {
  isChainPrefix,
  describe,
  HOST_IF_PREFIX,
  invalidConfig,
  isIfName,
  NetworkId,
  PEER_IF_PREFIX,
  silentLogger,
  type CoreError,
  type Dataplane,
  type DataplaneInventory,
  type Endpoint,
  type EndpointId,
  type EndpointSpec,
  type HostNetwork,
  type IfName,
  type LogFields,
  type Logger,
  type Network,
  type PortMapping
} from '@isthmus/core'
import { bridgeName, deleteBridge, ensureBridge, OWNER_MARK_PREFIX } from './bridge.js'
import { batchProcesses } from './batchProcess.js'
import { execFileExec, type Exec } from './exec.js'
import { spawnerExec, type SpawnerOptions } from './spawner.js'
import { deleteLinks, findLink, host, ip, showLinks, type Tools } from './ip.js'
import { decodeLinks, kindOf, type IpLink } from './iproute.js'
import {
  DEFAULT_IPTABLES_DEADLINE_MS,
  ownRules,
  removeAll,
  sync,
  type Iptables,
  type IpFamily,
  type Rule
} from './iptables.js'
import { endpointFamilies, endpointTag, networkFamilies, networkRules, networkTag, portRules } from './nat.js'
import { ensureSysctl, procSysctl, type Sysctl } from './sysctl.js'
import { isSpareEnd, makeSpares, SPARE_ALIAS, strayPairs } from './spares.js'
import {
  deleteVeth,
  ensureVeth,
  markedEndpoint,
  mayHaveNeighbours,
  pairNames,
  placeForRuntime,
  placeInSandbox
} from './veth.js'

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** @category model */
export interface LinuxDataplaneOptions {
  /** How commands run; wrap it to log, count or fail commands. Default: `execFileExec()`. */
  readonly exec?: Exec
  /** Kernel settings under /proc/sys. Default: the host's. */
  readonly sysctl?: Sysctl
  /** Command names or paths. Defaults: `ip`, `nsenter`, `iptables-save`, ... found on PATH. */
  readonly commands?: {
    readonly ip?: string
    readonly nsenter?: string
    readonly iptablesSave?: string
    readonly iptablesRestore?: string
    readonly ip6tablesSave?: string
    readonly ip6tablesRestore?: string
  }
  /**
   * Prefix of isthmus's iptables chains (`<prefix>-POSTROUTING`, `-DNAT`, `-FORWARD`, `-INPUT`).
   * Letters, digits and `_`, at most 16. Default `ISTHMUS`. Two dataplanes with different
   * prefixes never touch each other's rules (tests use one per run).
   */
  readonly chainPrefix?: string
  /**
   * Turn on IPv6 forwarding (`net.ipv6.conf.all.forwarding=1`) for non-internal networks with an
   * IPv6 subnet, as dockerd does. On a host that takes its own IPv6 address from router
   * advertisements this stops it accepting them (unless accept_ra=2), so it can be turned off.
   * Default true.
   */
  readonly ipv6Forwarding?: boolean
  /**
   * Let `deleteEndpoint` answer before the kernel has removed the veth pair: removing a veth waits
   * for an RCU grace period (~20 ms), which a long-running daemon need not make its caller wait
   * for (Docker's DeleteEndpoint is on the path of every `docker run --rm`). Published ports go
   * before the answer; the pair goes in the background. Later calls on the same bridge wait for
   * it, and `drain()` waits for all. Off by default: a CNI process exits after its answer.
   */
  readonly deferLinkRemoval?: boolean
  /**
   * Keep this many veth pairs ready on each bridge for endpoints that only need a pair (Docker
   * endpoints without `--mac-address` or published ports), so CreateEndpoint starts no process;
   * the pool is refilled in the background (see spares.ts). For a long-running daemon; default 0.
   */
  readonly spareLinks?: number
  /**
   * Feed host-namespace `ip -batch` work to kept `ip` processes (batchProcess.ts) instead of
   * starting one per batch: for a long-running daemon, whose event loop a process start stalls
   * for ~4 ms. Ended by `close()`. Default false.
   */
  readonly keepIpProcesses?: boolean
  /**
   * Start every command the kept `ip` processes do not take (`ip -n … -batch -` in a sandbox,
   * `-json` reads, nsenter, iptables-save/restore) through a kept spawner process (spawner.ts)
   * instead of a `child_process` of its own: for a long-running daemon, whose event loop each
   * process start blocks ~3.5 ms. The spawner serves the `ip -batch` lines of a CNI ADD and DEL
   * over netlink itself (`netlink`, on by default here: no `ip` process for the work inside the
   * sandbox). `true`, or the spawner's options; `exec`, when given too, is how commands run
   * without the spawner binary and after `close()`. Ended by `close()`. Default false.
   */
  readonly spawner?: boolean | Omit<SpawnerOptions, 'fallback'>
  /**
   * Where failures of work nobody waits for are reported: deferred link removals and their
   * retries, the clean-up after a failed `ensureNetwork`, what `close` could not remove. Default:
   * dropped.
   */
  readonly log?: Logger
  /**
   * How long one firewall change may wait for other writers (the xtables lock, other processes
   * committing to the same table) before it fails with `Transient`, in ms. Default 5000.
   */
  readonly iptablesDeadlineMs?: number
}

/**
 * The Linux dataplane: the port, plus `removeFirewall`, which removes isthmus's chains and jumps
 * (to uninstall, and for tests; published ports and masquerade of live networks go with them).
 *
 * @category model
 */
export interface LinuxDataplane extends Dataplane {
  readonly removeFirewall: () => TE.TaskEither<CoreError, void>
  /**
   * Wait for the background work running now: link removals (a failed one is tried again later,
   * with backoff, for as long as the dataplane lives), spare refills.
   */
  readonly drain: () => Promise<void>
  /**
   * Before the daemon stops: end the kept `ip` processes and the spawner first (what follows runs
   * in processes of its own: a stop signal to the whole process group, as systemd sends it, may
   * already have ended them), remove the spares, finish the background work, and give link
   * removals that still fail one last try. What is left is logged; gc removes it at the next start.
   */
  readonly close: () => Promise<void>
  /** The iptables chain prefix in use. */
  readonly chainPrefix: string
  /** Remove the spare pairs (`spareLinks`) this dataplane keeps ready: before the daemon stops. */
  readonly releaseSpares: () => TE.TaskEither<CoreError, void>
  /**
   * Remove the spares an earlier process left behind (killed before it could release them): on
   * the bridges of `networks`, every spare whose host end is not in `recorded` (the endpoint
   * records' host ends). Call it before serving; returns their names.
   */
  readonly removeStraySpares: (
    recorded: ReadonlySet<string>,
    networks: ReadonlyArray<Network>
  ) => TE.TaskEither<CoreError, ReadonlyArray<string>>
}

/** The default iptables chain prefix. @category constants */
export const DEFAULT_CHAIN_PREFIX = 'ISTHMUS'

// A failed background removal is tried again after this, doubling up to the maximum.
const RETRY_FIRST_MS = 500
const RETRY_MAX_MS = 30_000

// A link of ours with no mark yet may be one whose pair is being made this instant (the mark is
// the next line of the same `ip` process): the inventory looks at such links again after this.
const UNMARKED_LOOK_AGAIN_MS = 1_000

/** A background removal that failed, and is tried again. */
/** A link removal running in the background, and what it may still change on its bridge. */
interface Removal {
  readonly done: Promise<unknown>
  /** The names of the links it removes. */
  readonly links: ReadonlySet<string>
  /** Whether it removes neighbour entries on the bridge too. */
  readonly neighbours: boolean
}

interface Retry {
  readonly what: LogFields
  readonly task: TE.TaskEither<CoreError, void>
  attempt: number
  timer: NodeJS.Timeout | undefined
  running: Promise<void> | undefined
}

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

/**
 * The Dataplane port over iproute2 and iptables. Needs CAP_NET_ADMIN (root) on the host.
 * A bad `chainPrefix` makes every call fail with `InvalidConfig` (nothing here throws).
 *
 * @example
 * import { linuxDataplane } from '@isthmus/dataplane-linux'
 * const dataplane = linuxDataplane()
 * // await dataplane.ensureNetwork(network)()
 *
 * @category constructors
 */
export const linuxDataplane = (options: LinuxDataplaneOptions = {}): LinuxDataplane => {
  const cmd = options.commands ?? {}
  const direct = options.exec ?? execFileExec()
  const spawner =
    options.spawner === undefined || options.spawner === false
      ? undefined
      : spawnerExec({
          ...(options.log === undefined ? {} : { log: options.log }),
          netlink: { ip: cmd.ip ?? 'ip', nsenter: cmd.nsenter ?? 'nsenter' },
          ...(options.spawner === true ? {} : options.spawner),
          fallback: direct
        })
  const base = spawner?.exec ?? direct
  // With the spawner, a batch that finds every kept process busy runs through it at once.
  const kept =
    options.keepIpProcesses === true
      ? batchProcesses(base, { ip: cmd.ip ?? 'ip', overflowToInner: spawner !== undefined })
      : undefined
  // The spawner serves what it can over netlink before a kept `ip` process sees it (~1 ms for a
  // CNI ADD's host-side batch, against ~3 ms for its lines through `ip`).
  const exec = kept === undefined ? base : spawner === undefined ? kept.exec : spawner.netlinkFirst(kept.exec)
  const tools: Tools = { exec, ip: cmd.ip ?? 'ip', nsenter: cmd.nsenter ?? 'nsenter' }
  const prefix = options.chainPrefix ?? DEFAULT_CHAIN_PREFIX
  const log = options.log ?? silentLogger
  const ipt: Iptables = {
    exec,
    prefix,
    deadlineMs: options.iptablesDeadlineMs ?? DEFAULT_IPTABLES_DEADLINE_MS,
    commands: {
      4: { save: cmd.iptablesSave ?? 'iptables-save', restore: cmd.iptablesRestore ?? 'iptables-restore' },
      6: { save: cmd.ip6tablesSave ?? 'ip6tables-save', restore: cmd.ip6tablesRestore ?? 'ip6tables-restore' }
    }
  }
  const sysctl = options.sysctl ?? procSysctl()
  const ipv6Forwarding = options.ipv6Forwarding ?? true

  // Every entry point goes through this: a bad prefix fails the call instead of throwing.
  const guarded = <A>(f: () => TE.TaskEither<CoreError, A>): TE.TaskEither<CoreError, A> =>
    isChainPrefix(prefix) ? f() : TE.left(invalidConfig(`bad iptables chain prefix ${JSON.stringify(prefix)}`))

  const spares = makeSpares(tools, options.spareLinks ?? 0)

  // Link removals running in the background, by bridge (deferLinkRemoval): the first attempt of
  // each, which later calls on that bridge wait for. An endpoint's own calls wait only for the
  // removals that could undo their work: one with neighbour entries on the bridge (a new entry for
  // a reused address would go with them), or one of a link with the endpoint's own names (the same
  // CNI attachment added again). A pod's ADD on a busy node does not wait ~20 ms for the kernel to
  // finish removing another pod's pair.
  const pending = new Map<string, Set<Removal>>()
  const blocking = (bridge: string, endpoint: Endpoint | undefined): ReadonlyArray<Removal> =>
    [...(pending.get(bridge) ?? [])].filter(
      (r) =>
        endpoint === undefined || r.neighbours || r.links.has(endpoint.hostIfName) || r.links.has(endpoint.peerIfName)
    )
  const settled = (bridge: string, endpoint?: Endpoint): Promise<unknown> =>
    Promise.all(blocking(bridge, endpoint).map((r) => r.done))
  // Removals that failed: tried again with backoff for as long as this dataplane lives (a link
  // left by a daemon that died meanwhile is gc's at the next start: it names its endpoint).
  const retrying = new Set<Retry>()
  let closing = false

  const tryAgain = (r: Retry, error: CoreError): void => {
    if (closing) return
    const delayMs = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (r.attempt - 1))
    log.warn('background link removal failed; trying again', {
      ...r.what,
      attempt: r.attempt,
      retryInMs: delayMs,
      error: describe(error)
    })
    r.timer = setTimeout(() => {
      r.timer = undefined
      r.running = again(r)
    }, delayMs)
    // A pending retry does not keep a process alive (a CNI call's, a daemon that was told to stop).
    r.timer.unref()
  }
  const again = async (r: Retry): Promise<void> => {
    r.attempt += 1
    const out = await r.task()
    r.running = undefined
    if (E.isLeft(out)) return tryAgain(r, out.left)
    retrying.delete(r)
    log.info('background link removal done', { ...r.what, attempt: r.attempt })
  }

  const inBackground = (
    bridge: string,
    what: LogFields,
    task: TE.TaskEither<CoreError, void>,
    touches: Pick<Removal, 'links' | 'neighbours'>
  ): void => {
    const running = pending.get(bridge) ?? new Set<Removal>()
    pending.set(bridge, running)
    // Started on the next turn of the event loop: starting a process blocks it for a few ms
    // (fork/exec), which the caller's answer need not wait for.
    const p: Promise<unknown> = new Promise((resolve) => setImmediate(resolve))
      .then(() => task())
      .then((out) => {
        if (E.isRight(out)) return
        const r: Retry = { what, task, attempt: 1, timer: undefined, running: undefined }
        retrying.add(r)
        tryAgain(r, out.left)
      })
      .finally(() => running.delete(removal))
    const removal: Removal = { done: p, ...touches }
    running.add(removal)
  }

  const withBridge = <A>(
    network: Network,
    f: (bridge: string) => TE.TaskEither<CoreError, A>,
    // What a deferred removal on this bridge still does (its neighbour entries, the port) must be
    // done before anything else sets the bridge up; other removals need not wait for it. A network
    // made on the bridge also waits for its spare refills: the name may have been another network's.
    // An endpoint's own calls name it, and wait only for the removals that touch it (`blocking`).
    wait: 'removals' | 'everything' | 'nothing' = 'removals',
    endpoint?: Endpoint
  ): TE.TaskEither<CoreError, A> =>
    guarded(() => {
      const b = bridgeName(network)
      if (typeof b !== 'string') return TE.left(b)
      if (wait === 'nothing' || (wait === 'removals' && blocking(b, endpoint).length === 0)) return f(b)
      return pipe(
        TE.fromTask(() => Promise.all([settled(b, endpoint), wait === 'everything' ? spares.drain(b) : undefined])),
        TE.chain(() => f(b))
      )
    })

  const drain = async (): Promise<void> => {
    await Promise.all([
      ...[...pending.keys()].map((b) => settled(b)),
      spares.drain(),
      ...[...retrying].map((r) => r.running)
    ])
  }

  const close = async (): Promise<void> => {
    // Kept processes first: from here on every command runs as a process of its own.
    await kept?.close()
    await spawner?.close()
    const released = await spares.clearAll()()
    if (E.isLeft(released)) log.warn('cannot remove the spare links', { error: describe(released.left) })
    await drain()
    closing = true
    for (const r of retrying) {
      clearTimeout(r.timer)
      await r.running
      const out = await r.task()
      if (E.isLeft(out)) {
        log.warn('background link removal failed; left for the sweep at the next start', {
          ...r.what,
          error: describe(out.left)
        })
      }
    }
    retrying.clear()
  }

  const syncAll = (
    families: ReadonlyArray<IpFamily>,
    tag: string,
    rules: (f: IpFamily) => ReadonlyArray<Rule>
  ): TE.TaskEither<CoreError, boolean> =>
    pipe(
      TE.sequenceArray(families.map((f) => sync(ipt, f, tag, rules(f)))),
      TE.map((changed) => changed.includes(true))
    )

  // ---------------------------------------------------------------------------------
  // networks
  // ---------------------------------------------------------------------------------

  const networkSysctls = (network: Network, bridge: string): TE.TaskEither<CoreError, void> => {
    const v4 = network.ipv4.length > 0
    const v6 = network.ipv6.length > 0
    const steps = [
      // 127.0.0.1:<port> → sandbox DNAT is routed out of the bridge only with route_localnet.
      ...(v4 ? [ensureSysctl(sysctl, ['net', 'ipv4', 'conf', bridge, 'route_localnet'], '1')] : []),
      ...(v4 && !network.internal ? [ensureSysctl(sysctl, ['net', 'ipv4', 'ip_forward'], '1')] : []),
      ...(v6 && !network.internal && ipv6Forwarding
        ? [ensureSysctl(sysctl, ['net', 'ipv6', 'conf', 'all', 'forwarding'], '1')]
        : [])
    ]
    return pipe(
      TE.sequenceSeqArray(steps),
      TE.map(() => undefined)
    )
  }

  const networkFirewall = (network: Network, bridge: string): TE.TaskEither<CoreError, boolean> =>
    syncAll(networkFamilies(network), networkTag(network), (f) => networkRules(prefix, network, bridge, f))

  const removeNetworkRules = (network: Network): TE.TaskEither<CoreError, boolean> =>
    syncAll(networkFamilies(network), networkTag(network), () => [])

  // What a failed ensureNetwork undoes is logged when it fails: no one else will hear of it.
  const undo = (
    network: Network,
    bridge: string,
    step: string,
    task: TE.TaskEither<CoreError, unknown>
  ): T.Task<void> =>
    pipe(
      task,
      T.map(
        E.fold(
          (e) =>
            log.warn('cannot undo a failed network creation', {
              networkId: network.id,
              bridge,
              step,
              error: describe(e)
            }),
          () => undefined
        )
      )
    )

  // Taking over a leftover bridge: its old network's rules and the spares its daemon left go first.
  const dropOwner =
    (bridge: string) =>
    (mark: string): TE.TaskEither<CoreError, void> =>
      inParallel([
        syncAll([4, 6], mark, () => []),
        pipe(
          ip(tools, host, ['-json', 'link', 'show', 'master', bridge]),
          TE.chainEitherK((out) => decodeLinks(out === '' ? '[]' : out)),
          TE.map((ports) =>
            ports.filter((l) => l.ifalias === SPARE_ALIAS && !spares.kept(bridge).has(l.ifname)).map((l) => l.ifname)
          ),
          TE.chain((names) => deleteLinks(tools, host, names))
        )
      ])

  const ensureNetwork = (
    network: Network,
    sharedWith: ReadonlyArray<string> = []
  ): TE.TaskEither<CoreError, HostNetwork> =>
    withBridge(
      network,
      (bridge) =>
        pipe(
          // The bridge and the iptables transaction are independent: run them side by side.
          () =>
            Promise.all([
              ensureBridge(tools, network, bridge, dropOwner(bridge), sharedWith)(),
              networkFirewall(network, bridge)()
            ]),
          T.chain(([made, firewall]): TE.TaskEither<CoreError, HostNetwork> => {
            if (E.isLeft(made)) {
              // ensureBridge removes a bridge it made and failed to set up. Rules this call wrote for a
              // network without a usable bridge go too; rules that were there before stay.
              const rules =
                E.isLeft(firewall) || firewall.right
                  ? undo(network, bridge, 'firewall', removeNetworkRules(network))
                  : T.of(undefined)
              return pipe(
                rules,
                T.map(() => made)
              )
            }
            return pipe(
              TE.fromEither(firewall),
              TE.chain(() => networkSysctls(network, bridge)),
              TE.map((): HostNetwork => {
                spares.refill(network, bridge)
                return { device: bridge, created: made.right.created }
              }),
              // Leave nothing half made: what this call created goes again.
              TE.orElse((e) =>
                made.right.created
                  ? pipe(
                      undo(network, bridge, 'firewall', removeNetworkRules(network)),
                      T.chain(() => undo(network, bridge, 'bridge', deleteBridge(tools, network, bridge))),
                      T.map(() => E.left(e))
                    )
                  : TE.left(e)
              )
            )
          })
        ),
      'everything'
    )

  const deleteNetwork = (network: Network): TE.TaskEither<CoreError, void> =>
    withBridge(network, (bridge) =>
      pipe(
        spares.clear(network, bridge),
        TE.chain(() => inParallel([removeNetworkRules(network), deleteBridge(tools, network, bridge)]))
      )
    )

  // ---------------------------------------------------------------------------------
  // endpoints
  // ---------------------------------------------------------------------------------

  const ensureEndpoint: Dataplane['ensureEndpoint'] = ({ endpoint, network }, placement) =>
    withBridge(
      network,
      (bridge) => {
        const spare =
          placement?._tag !== 'PluginMoves' && endpoint.mac === undefined && endpoint.portMappings.length === 0
            ? spares.take(network, bridge)
            : undefined
        return spare !== undefined
          ? TE.right(spare)
          : pipe(
              ensureVeth(tools, network, endpoint, bridge, placement),
              TE.map((mac) => ({ mac }))
            )
      },
      'removals',
      endpoint
    )

  const place: Dataplane['place'] = ({ endpoint, network }, placement) =>
    withBridge(
      network,
      (bridge) =>
        placement._tag === 'RuntimeMoves'
          ? placeForRuntime(endpoint)
          : placeInSandbox(tools, endpoint, bridge, placement.sandbox, placement.ifName),
      'removals',
      endpoint
    )

  // An endpoint's rules carry its host end's name in their tag: checked like every name.
  const unpublish = ({ endpoint }: EndpointSpec): TE.TaskEither<CoreError, void> =>
    pipe(
      TE.fromEither(pairNames(endpoint)),
      TE.chain(() => syncAll(endpointFamilies(endpoint), endpointTag(endpoint.hostIfName), () => [])),
      TE.map(() => undefined)
    )

  const deleteEndpoint = (spec: EndpointSpec): TE.TaskEither<CoreError, void> =>
    // The veth deletion waits for the kernel (RCU, ~10-30 ms); the rules go meanwhile. An endpoint
    // whose record publishes nothing has no rules: no iptables-save then (DeleteEndpoint runs on
    // every `docker run --rm`). Rules a crash left behind go with gc's removeLink, by tag.
    withBridge(
      spec.network,
      (bridge) => {
        const rules = spec.endpoint.portMappings.length > 0 ? [unpublish(spec)] : []
        const neighbours = mayHaveNeighbours(spec.endpoint, isSpareEnd(spec.endpoint.hostIfName))
        const pair = deleteVeth(tools, spec.endpoint, bridge, neighbours)
        if (options.deferLinkRemoval !== true) return inParallel([pair, ...rules])
        const what = { endpointId: spec.endpoint.id, networkId: spec.network.id, link: spec.endpoint.hostIfName }
        inBackground(bridge, what, pair, {
          links: new Set([spec.endpoint.hostIfName, spec.endpoint.peerIfName]),
          neighbours
        })
        return inParallel(rules)
      },
      'nothing'
    )

  const publishPorts = (spec: EndpointSpec, ports: ReadonlyArray<PortMapping>): TE.TaskEither<CoreError, void> =>
    withBridge(spec.network, (bridge) =>
      pipe(
        TE.fromEither(checkPorts(ports)),
        TE.chainEitherK(() => pairNames(spec.endpoint)),
        TE.chain(() => (spec.network.ipv4.length > 0 ? networkSysctls(spec.network, bridge) : TE.right(undefined))),
        TE.chain(() =>
          syncAll(endpointFamilies(spec.endpoint), endpointTag(spec.endpoint.hostIfName), (f) =>
            portRules(prefix, spec.endpoint, ports, f)
          )
        ),
        TE.map(() => undefined)
      )
    )

  // ---------------------------------------------------------------------------------
  // inventory
  // ---------------------------------------------------------------------------------

  // A link of ours no record may own yet: which endpoint it names, if any. Spares (with their
  // peers) are a daemon's own reserve, and one just taken has no record for a moment: neither is
  // gc's to judge (a daemon starting removes those a dead one left).
  const judge = (
    links: ReadonlyArray<IpLink>,
    scope: ReadonlyArray<Network> | undefined
  ): ReadonlyMap<IfName, EndpointId | undefined> => {
    const hostEnds = new Map(
      links.filter((l) => l.ifname.startsWith(HOST_IF_PREFIX)).map((l) => [suffixOf(l.ifname), l])
    )
    const out = new Map<IfName, EndpointId | undefined>()
    for (const l of links) {
      if (!(l.ifname.startsWith(HOST_IF_PREFIX) || l.ifname.startsWith(PEER_IF_PREFIX))) continue
      if (scope !== undefined && !inScope(l, scope)) continue
      const hostEnd = hostEnds.get(suffixOf(l.ifname))
      if (hostEnd?.ifalias === SPARE_ALIAS) continue
      out.set(l.ifname as IfName, markedEndpoint(hostEnd?.ifalias))
    }
    return out
  }

  // Links that name no endpoint are looked at again a moment later: a pair being made carries its
  // mark (endpoint or spare) one netlink request after it appears. Only those unmarked both times
  // are reported without an endpoint.
  const ownLinks = (scope: ReadonlyArray<Network> | undefined) =>
    pipe(
      showLinks(tools, host, undefined, true),
      TE.chain((first) => {
        const judged = judge(first, scope)
        const unmarked = new Set([...judged].filter(([, id]) => id === undefined).map(([name]) => name))
        if (unmarked.size === 0) return TE.right({ all: first, judged })
        return pipe(
          TE.fromTask(() => new Promise((resolve) => setTimeout(resolve, UNMARKED_LOOK_AGAIN_MS))),
          TE.chain(() => showLinks(tools, host, undefined, true)),
          TE.map((second) => ({
            all: second,
            judged: new Map([...judge(second, scope)].filter(([name, id]) => id !== undefined || unmarked.has(name)))
          }))
        )
      })
    )

  const inventory = (scope?: ReadonlyArray<Network>): TE.TaskEither<CoreError, DataplaneInventory> =>
    guarded(() =>
      pipe(
        TE.Do,
        TE.apS('links', ownLinks(scope)),
        TE.apS('v4', ownRules(ipt, 4)),
        TE.apS('v6', ownRules(ipt, 6)),
        TE.map(({ links, v4, v6 }): DataplaneInventory => {
          const marked = links.all.filter(
            (l) => kindOf(l) === 'bridge' && (l.ifalias ?? '').startsWith(OWNER_MARK_PREFIX)
          )
          // A marked bridge is this dataplane's own when its network's rules are in its chains:
          // another isthmus instance on the host keeps its rules under a prefix of its own.
          const own = marked.filter((l) => v4.tags.has(l.ifalias ?? '') || v6.tags.has(l.ifalias ?? ''))
          return {
            links: [...links.judged.keys()],
            endpoints: Object.fromEntries(
              [...links.judged].flatMap(([name, id]) => (id === undefined ? [] : [[name, id]]))
            ),
            networks: marked.map((l) => l.ifname),
            devices: Object.fromEntries(
              own.flatMap((l) => {
                const id = (l.ifalias ?? '').slice(OWNER_MARK_PREFIX.length)
                return NetworkId.is(id) ? [[l.ifname, id]] : []
              })
            ),
            chains: [...v4.chains.map((c) => `iptables:${c}`), ...v6.chains.map((c) => `ip6tables:${c}`)]
          }
        })
      )
    )

  const removeLink = (name: IfName): TE.TaskEither<CoreError, void> =>
    guarded(() =>
      pipe(
        TE.fromEither(isIfName(name) ? E.right(name) : E.left(invalidConfig(`bad link name ${JSON.stringify(name)}`))),
        TE.chain(() => findLink(tools, host, name, true)),
        TE.chain((l) => {
          if (l === undefined) return TE.right(undefined)
          const both: ReadonlyArray<IpFamily> = [4, 6]
          if (name.startsWith(HOST_IF_PREFIX) || name.startsWith(PEER_IF_PREFIX)) {
            // Both ends and the endpoint's port rules (tagged with the host end's name).
            const suffix = suffixOf(name)
            return inParallel([
              deleteLinks(tools, host, [`${HOST_IF_PREFIX}${suffix}`, `${PEER_IF_PREFIX}${suffix}`]),
              syncAll(both, endpointTag(`${HOST_IF_PREFIX}${suffix}`), () => [])
            ])
          }
          const mark = l.ifalias ?? ''
          if (kindOf(l) === 'bridge' && mark.startsWith(OWNER_MARK_PREFIX)) {
            return inParallel([deleteLinks(tools, host, [name]), syncAll(both, mark, () => [])])
          }
          return TE.left(invalidConfig(`refusing to remove ${name}: isthmus did not create it`))
        })
      )
    )

  return {
    ensureNetwork,
    deleteNetwork,
    ensureEndpoint,
    place,
    deleteEndpoint,
    publishPorts,
    unpublishPorts: (spec) => guarded(() => unpublish(spec)),
    inventory,
    removeLink,
    drain,
    close,
    removeFirewall: () => guarded(() => inParallel([removeAll(ipt, 4), removeAll(ipt, 6)])),
    chainPrefix: prefix,
    releaseSpares: () => spares.clearAll(),
    removeStraySpares: (recorded, networks) =>
      pipe(
        strayPairs(
          tools,
          recorded,
          new Set(networks.map(bridgeName).filter((b): b is string => typeof b === 'string'))
        ),
        TE.chainFirst((names) => deleteLinks(tools, host, names))
      )
  }
}

// -------------------------------------------------------------------------------------
// utils
// -------------------------------------------------------------------------------------

/** What follows `istv`/`istc`: the two ends of a pair share it. */
const suffixOf = (name: string): string =>
  name.slice(
    name.startsWith(HOST_IF_PREFIX)
      ? HOST_IF_PREFIX.length
      : name.startsWith(PEER_IF_PREFIX)
        ? PEER_IF_PREFIX.length
        : 0
  )

// A host end on one of the networks' bridges. Removing it removes its peer too, wherever that is,
// so peers need not be listed.
const inScope = (l: IpLink, scope: ReadonlyArray<Network>): boolean =>
  l.ifname.startsWith(HOST_IF_PREFIX) && l.master !== undefined && scope.some((n) => n.bridge === l.master)

/** Run independent steps side by side (each is a process); fails with the first failure. */
const inParallel = (steps: ReadonlyArray<TE.TaskEither<CoreError, unknown>>): TE.TaskEither<CoreError, void> =>
  pipe(
    TE.sequenceArray(steps),
    TE.map(() => undefined)
  )

const isPort = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= 65535

const checkPorts = (ports: ReadonlyArray<PortMapping>): E.Either<CoreError, void> => {
  const bad = ports.find((p) => !isPort(p.hostPort) || !isPort(p.containerPort))
  return bad === undefined
    ? E.right(undefined)
    : E.left(invalidConfig(`bad port mapping ${bad.hostPort}->${bad.containerPort}/${bad.protocol}`))
}
