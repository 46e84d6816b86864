/**
 * The Dataplane port on Linux, assembled from the bridge, veth, iptables and sysctl modules.
 * Independent steps run in parallel (the bridge and the iptables transaction of a network; the
 * veth deletion and the port rules of an endpoint), since each is a process of its own.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import {
  HOST_IF_PREFIX,
  invalidConfig,
  PEER_IF_PREFIX,
  type CoreError,
  type Dataplane,
  type DataplaneInventory,
  type EndpointSpec,
  type HostNetwork,
  type IfName,
  type Network,
  type PortMapping
} from '@isthmus/core'
import { bridgeName, deleteBridge, ensureBridge, OWNER_MARK_PREFIX } from './bridge.js'
import { batchProcesses } from './batchProcess.js'
import { execFileExec, type Exec } from './exec.js'
import { deleteLinks, findLink, host, showLinks, type Tools } from './ip.js'
import { kindOf, type IpLink } from './iproute.js'
import { ownChains, removeAll, sync, type Iptables, type IpFamily, type Rule } from './iptables.js'
import { endpointFamilies, endpointTag, networkFamilies, networkRules, networkTag, portRules } from './nat.js'
import { ensureSysctl, procSysctl, type Sysctl } from './sysctl.js'
import { makeSpares, SPARE_ALIAS, strayPairs } from './spares.js'
import { deleteVeth, ensureVeth, placeForRuntime, placeInSandbox } from './veth.js'

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
}

/**
 * The Linux dataplane: the port, plus `removeFirewall`, which removes isthmus's chains and jumps
 * (to uninstall, and for tests; published ports and masquerade of live networks go with them).
 *
 * @category model
 */
export interface LinuxDataplane extends Dataplane {
  readonly removeFirewall: () => TE.TaskEither<CoreError, void>
  /** Wait for link removals and spare refills still running in the background. */
  readonly drain: () => Promise<void>
  /** `drain`, then end the kept `ip` processes (keepIpProcesses). */
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

/** Whether `s` can start iptables chain names: letters, digits and `_`, at most 16. @category utils */
export const isChainPrefix = (s: string): boolean => /^[A-Za-z0-9_]{1,16}$/.test(s)

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
  const base = options.exec ?? execFileExec()
  const kept = options.keepIpProcesses === true ? batchProcesses(base, { ip: cmd.ip ?? 'ip' }) : undefined
  const exec = kept?.exec ?? base
  const tools: Tools = { exec, ip: cmd.ip ?? 'ip', nsenter: cmd.nsenter ?? 'nsenter' }
  const prefix = options.chainPrefix ?? DEFAULT_CHAIN_PREFIX
  const ipt: Iptables = {
    exec,
    prefix,
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

  // Link removals running in the background, by bridge (deferLinkRemoval).
  const pending = new Map<string, Set<Promise<unknown>>>()
  const settled = (bridge: string): Promise<unknown> => Promise.all([...(pending.get(bridge) ?? [])])
  const inBackground = (bridge: string, task: TE.TaskEither<CoreError, void>): void => {
    const running = pending.get(bridge) ?? new Set<Promise<unknown>>()
    pending.set(bridge, running)
    // A failure here leaves a stray link on the bridge, which gc's removeLink takes away. Started
    // on the next turn of the event loop: starting a process blocks it for a few ms (fork/exec),
    // which the caller's answer need not wait for.
    const p: Promise<unknown> = new Promise((resolve) => setImmediate(resolve))
      .then(() => task())
      .finally(() => running.delete(p))
    running.add(p)
  }

  const withBridge = <A>(
    network: Network,
    f: (bridge: string) => TE.TaskEither<CoreError, A>,
    // What a deferred removal on this bridge still does (its neighbour entries, the port) must be
    // done before anything else sets the bridge up; other removals need not wait for it.
    waitForRemovals = true
  ): TE.TaskEither<CoreError, A> =>
    guarded(() => {
      const b = bridgeName(network)
      if (typeof b !== 'string') return TE.left(b)
      return waitForRemovals && pending.get(b)?.size ? pipe(TE.fromTask(() => settled(b)), TE.chain(() => f(b))) : f(b)
    })

  const drain = async (): Promise<void> => {
    await Promise.all([...[...pending.keys()].map(settled), spares.drain()])
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
      ...(v6 && !network.internal && ipv6Forwarding ? [ensureSysctl(sysctl, ['net', 'ipv6', 'conf', 'all', 'forwarding'], '1')] : [])
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

  const ensureNetwork = (network: Network): TE.TaskEither<CoreError, HostNetwork> =>
    withBridge(network, (bridge) => async () => {
      // The bridge and the iptables transaction are independent: run them side by side.
      const [made, firewall] = await Promise.all([ensureBridge(tools, network, bridge)(), networkFirewall(network, bridge)()])
      if (E.isLeft(made)) {
        // ensureBridge removes a bridge it made and failed to set up. Rules this call wrote for a
        // network without a usable bridge go too; rules that were there before stay.
        if (E.isLeft(firewall) || firewall.right) await removeNetworkRules(network)()
        return made
      }
      const result = E.isLeft(firewall) ? firewall : await networkSysctls(network, bridge)()
      if (E.isRight(result)) {
        spares.refill(network, bridge)
        return E.right({ device: bridge, created: made.right.created })
      }
      // Leave nothing half made: what this call created goes again.
      if (made.right.created) {
        await removeNetworkRules(network)()
        await deleteBridge(tools, network, bridge)()
      }
      return result
    })

  const deleteNetwork = (network: Network): TE.TaskEither<CoreError, void> =>
    withBridge(network, (bridge) =>
      pipe(
        spares.clear(bridge),
        TE.chain(() => inParallel([removeNetworkRules(network), deleteBridge(tools, network, bridge)]))
      )
    )

  // ---------------------------------------------------------------------------------
  // endpoints
  // ---------------------------------------------------------------------------------

  const ensureEndpoint: Dataplane['ensureEndpoint'] = ({ endpoint, network }, placement) =>
    withBridge(network, (bridge) => {
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
    })

  const place: Dataplane['place'] = ({ endpoint, network }, placement) =>
    withBridge(network, (bridge) =>
      placement._tag === 'RuntimeMoves'
        ? placeForRuntime(endpoint)
        : placeInSandbox(tools, endpoint, bridge, placement.sandbox, placement.ifName)
    )

  const unpublish = ({ endpoint }: EndpointSpec): TE.TaskEither<CoreError, void> =>
    pipe(
      syncAll(endpointFamilies(endpoint), endpointTag(endpoint.hostIfName), () => []),
      TE.map(() => undefined)
    )

  const deleteEndpoint = (spec: EndpointSpec): TE.TaskEither<CoreError, void> =>
    // The veth deletion waits for the kernel (RCU, ~10-30 ms); the rules go meanwhile. An endpoint
    // whose record publishes nothing has no rules: no iptables-save then (DeleteEndpoint runs on
    // every `docker run --rm`). Rules a crash left behind go with gc's removeLink, by tag.
    withBridge(spec.network, (bridge) => {
      const rules = spec.endpoint.portMappings.length > 0 ? [unpublish(spec)] : []
      if (options.deferLinkRemoval !== true) return inParallel([deleteVeth(tools, spec.endpoint, bridge), ...rules])
      inBackground(bridge, deleteVeth(tools, spec.endpoint, bridge))
      return inParallel(rules)
    }, false)

  const publishPorts = (spec: EndpointSpec, ports: ReadonlyArray<PortMapping>): TE.TaskEither<CoreError, void> =>
    withBridge(spec.network, (bridge) =>
      pipe(
        TE.fromEither(checkPorts(ports)),
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

  const inventory = (scope?: ReadonlyArray<Network>): TE.TaskEither<CoreError, DataplaneInventory> =>
    guarded(() =>
      pipe(
        TE.Do,
        TE.apS('links', showLinks(tools, host, undefined, true)),
        TE.apS('v4', ownChains(ipt, 4)),
        TE.apS('v6', ownChains(ipt, 6)),
        TE.map(
          ({ links, v4, v6 }): DataplaneInventory => ({
            links: links
              .filter((l) => scope === undefined || inScope(l, scope))
              // Spares are a daemon's own reserve, and one just taken has no record for a moment:
              // neither is gc's to judge (a daemon starting removes those a dead one left).
              .filter((l) => l.ifalias !== SPARE_ALIAS)
              .map((l) => l.ifname)
              .filter((n) => n.startsWith(HOST_IF_PREFIX) || n.startsWith(PEER_IF_PREFIX)) as IfName[],
            networks: links
              .filter((l) => kindOf(l) === 'bridge' && (l.ifalias ?? '').startsWith(OWNER_MARK_PREFIX))
              .map((l) => l.ifname),
            chains: [...v4.map((c) => `iptables:${c}`), ...v6.map((c) => `ip6tables:${c}`)]
          })
        )
      )
    )

  const removeLink = (name: IfName): TE.TaskEither<CoreError, void> =>
    guarded(() =>
      pipe(
        findLink(tools, host, name, true),
        TE.chain((l) => {
          if (l === undefined) return TE.right(undefined)
          const both: ReadonlyArray<IpFamily> = [4, 6]
          if (name.startsWith(HOST_IF_PREFIX) || name.startsWith(PEER_IF_PREFIX)) {
            // Both ends and the endpoint's port rules (tagged with the host end's name).
            const suffix = name.slice(name.startsWith(HOST_IF_PREFIX) ? HOST_IF_PREFIX.length : PEER_IF_PREFIX.length)
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
    close: async () => {
      await drain()
      await kept?.close()
    },
    removeFirewall: () =>
      guarded(() =>
        inParallel([removeAll(ipt, 4), removeAll(ipt, 6)])
      ),
    chainPrefix: prefix,
    releaseSpares: () => spares.clearAll(),
    removeStraySpares: (recorded, networks) =>
      pipe(
        strayPairs(tools, recorded, new Set(networks.map(bridgeName).filter((b): b is string => typeof b === 'string'))),
        TE.chainFirst((names) => deleteLinks(tools, host, names))
      )
  }
}

// -------------------------------------------------------------------------------------
// utils
// -------------------------------------------------------------------------------------

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
