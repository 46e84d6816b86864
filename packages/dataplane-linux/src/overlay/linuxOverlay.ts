/**
 * The Overlay port on Linux: a routed VXLAN overlay with an anycast gateway.
 *
 * Every host's bridge of a cluster network holds the network's one gateway address and the whole
 * subnet (say a /24) as its connected route; a container on any host sees that one subnet and
 * that one gateway. A host routes each block another host holds (say a /26) out of the network's
 * VXLAN device to that host's VTEP. A container asking ARP for an address in a remote block gets
 * its own host's bridge MAC as the answer (proxy ARP: the bridge answers for an address it routes
 * out of another device), so the packet is routed by its host into the tunnel, and by the remote
 * host from its VXLAN device into its bridge. The kernel entries grow with hosts and blocks, never
 * with endpoints (Docker's overlay writes a neighbour and an FDB entry per remote container).
 *
 * It acts on the network namespace the process runs in: the daemon of each host.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import {
  familyOf,
  invalidConfig,
  IpAddress,
  isIfName,
  MacAddress,
  silentLogger,
  type CoreError,
  type Logger,
  type Overlay,
  type OverlayPeer,
  type OverlaySpec,
  type Vtep
} from '@isthmus/core'
import { bridgeName } from '../bridge.js'
import { execFileExec, type Exec } from '../exec.js'
import type { Tools } from '../ip.js'
import { ensureSysctl, procSysctl, type Sysctl } from '../sysctl.js'
import { ensureDevice, overlayDeviceName, overlayMark, removeDevice } from './device.js'
import { bridgeApply, changesFor, ipApply, readEntries, wantedEntries } from './entries.js'
import { underlayDevice, vtepMacOf } from './vtep.js'

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** @category model */
export interface LinuxOverlayOptions {
  /** This host's underlay address (IPv4): where the other hosts send its tunnels. */
  readonly underlay: IpAddress
  /** The device that holds `underlay`. Default: found with `ip addr` at the first call (and kept). */
  readonly underlayDev?: string
  /** The MAC of every VXLAN device of this host. Default: derived from `underlay` (stable across restarts). */
  readonly vtepMac?: MacAddress
  /** Where device changes (info), skipped peers (warn) and entry changes (debug) are told. */
  readonly log?: Logger
  /** How commands run. Default: `execFileExec()`. */
  readonly exec?: Exec
  /** Kernel settings under /proc/sys. Default: this namespace's. */
  readonly sysctl?: Sysctl
  /** Command names or paths; defaults `ip` and `bridge` on PATH. */
  readonly commands?: { readonly ip?: string; readonly bridge?: string }
}

const DEFAULT_PROXY_DELAY = '80'

/** VXLAN over IPv4: outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) bytes. @category constants */
export const VXLAN_IPV4_OVERHEAD = 50

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

const checkOptions = (o: LinuxOverlayOptions): E.Either<CoreError, void> => {
  if (!IpAddress.is(o.underlay) || familyOf(o.underlay) !== 4) {
    return E.left(invalidConfig(`underlay address ${JSON.stringify(o.underlay)}: expected this host's IPv4 address`))
  }
  if (o.underlayDev !== undefined && !isIfName(o.underlayDev)) {
    return E.left(invalidConfig(`underlay device ${JSON.stringify(o.underlayDev)}: not an interface name`))
  }
  // A multicast MAC (low bit of the first octet) cannot be a neighbour's address.
  if (o.vtepMac !== undefined && !(MacAddress.is(o.vtepMac) && (parseInt(o.vtepMac.slice(0, 2), 16) & 1) === 0)) {
    return E.left(
      invalidConfig(`VTEP MAC ${JSON.stringify(o.vtepMac)}: expected a unicast MAC such as 02:42:0a:00:00:02`)
    )
  }
  return E.right(undefined)
}

/**
 * The Overlay port over iproute2 (`ip`, `bridge`) and /proc/sys, in the process's network
 * namespace. Needs CAP_NET_ADMIN. Bad options make every call fail with `InvalidConfig`.
 *
 * @example
 * import { linuxOverlay } from '@isthmus/dataplane-linux'
 * const overlay = linuxOverlay({ underlay: '192.0.2.11' as IpAddress })
 * // const vtep = await overlay.vtep()()
 *
 * @category constructors
 */
export const linuxOverlay = (options: LinuxOverlayOptions): Overlay => {
  const checked = checkOptions(options)
  const exec = options.exec ?? execFileExec()
  const tools: Tools = { exec, ip: options.commands?.ip ?? 'ip', nsenter: 'nsenter' }
  const bridgeCmd = options.commands?.bridge ?? 'bridge'
  const sysctl = options.sysctl ?? procSysctl()
  const log = options.log ?? silentLogger
  const mac = options.vtepMac ?? vtepMacOf(options.underlay)

  const guarded = <A>(f: () => TE.TaskEither<CoreError, A>): TE.TaskEither<CoreError, A> =>
    E.isLeft(checked) ? TE.left(checked.left) : f()

  // The underlay device, found once per address: it does not move while the daemon runs.
  const devices = new Map<string, string>()
  const deviceOf = (underlay: IpAddress): TE.TaskEither<CoreError, string> => {
    const known = options.underlayDev ?? devices.get(underlay)
    if (known !== undefined) return TE.right(known)
    return pipe(
      underlayDevice(tools, underlay),
      TE.tap((d) => TE.fromIO(() => devices.set(underlay, d)))
    )
  }

  // One change at a time per device: a setPeers reads, compares and writes, and must not
  // interleave with another one (or with a re-creation) on the same device.
  const queues = new Map<string, Promise<unknown>>()
  const serially =
    <A>(key: string, task: TE.TaskEither<CoreError, A>): TE.TaskEither<CoreError, A> =>
    () => {
      const run = (queues.get(key) ?? Promise.resolve()).then(() => task())
      const tail = run.then(() => undefined)
      queues.set(key, tail)
      void tail.then(() => {
        if (queues.get(key) === tail) queues.delete(key)
      })
      return run
    }

  const namesOf = (spec: OverlaySpec): E.Either<CoreError, { readonly dev: string; readonly bridge: string }> => {
    const dev = overlayDeviceName(spec.vni)
    const bridge = bridgeName(spec.network)
    if (typeof dev !== 'string') return E.left(dev)
    if (typeof bridge !== 'string') return E.left(bridge)
    return E.right({ dev, bridge })
  }

  const bridgeExists = (bridge: string): TE.TaskEither<CoreError, boolean> =>
    pipe(
      sysctl.read(['net', 'ipv4', 'conf', bridge, 'forwarding']),
      TE.map(() => true),
      TE.orElse(() => TE.right(false))
    )

  const ensure = (spec: OverlaySpec): TE.TaskEither<CoreError, void> =>
    guarded(() =>
      pipe(
        TE.fromEither(namesOf(spec)),
        TE.chain(({ dev, bridge }) =>
          serially(
            dev,
            pipe(
              bridgeExists(bridge),
              TE.filterOrElse(
                (exists) => exists,
                () =>
                  invalidConfig(
                    `the bridge ${bridge} of network ${spec.network.name} does not exist: its overlay comes after the network`
                  )
              ),
              TE.chain(() => deviceOf(spec.vtep.underlay)),
              TE.chain((underlayDev) =>
                ensureDevice(tools, {
                  name: dev,
                  vni: spec.vni,
                  local: spec.vtep.underlay,
                  dev: underlayDev,
                  mac: spec.vtep.mac,
                  ...(spec.network.mtu === undefined ? {} : { mtu: spec.network.mtu }),
                  mark: overlayMark(spec.network)
                })
              ),
              TE.tap((outcome) =>
                TE.fromIO(() => {
                  if (outcome !== 'unchanged') {
                    log.info(`overlay device ${outcome}`, { networkId: spec.network.id, device: dev, vni: spec.vni })
                  }
                })
              ),
              // The bridge answers ARP for addresses it routes into the tunnel, at once (the
              // default proxy_delay holds an answer back up to 0.8 s); both ends forward.
              TE.chain(() =>
                TE.sequenceSeqArray([
                  ensureSysctl(sysctl, ['net', 'ipv4', 'conf', bridge, 'proxy_arp'], '1'),
                  ensureSysctl(sysctl, ['net', 'ipv4', 'neigh', bridge, 'proxy_delay'], '0'),
                  ensureSysctl(sysctl, ['net', 'ipv4', 'conf', bridge, 'forwarding'], '1'),
                  ensureSysctl(sysctl, ['net', 'ipv4', 'conf', dev, 'forwarding'], '1')
                ])
              ),
              TE.map(() => undefined)
            )
          )
        )
      )
    )

  const setPeers = (spec: OverlaySpec, peers: ReadonlyArray<OverlayPeer>): TE.TaskEither<CoreError, void> =>
    guarded(() =>
      pipe(
        TE.fromEither(namesOf(spec)),
        TE.chain(({ dev }) => {
          const { entries, skipped } = wantedEntries(spec.network, spec.vtep, peers)
          for (const s of skipped) {
            const fields = { networkId: spec.network.id, device: dev, host: s.host, what: s.what, why: s.why }
            if (s.why === 'this host itself') log.debug('overlay peer left out', fields)
            else log.warn('overlay peer entry left out', fields)
          }
          const started = Date.now()
          return serially(
            dev,
            pipe(
              readEntries(tools, bridgeCmd, dev),
              TE.map((have) => changesFor(dev, have, entries)),
              TE.chainFirst((c) => bridgeApply(exec, bridgeCmd, c.fdbAdd)),
              TE.chainFirst((c) => ipApply(tools, c.ip)),
              TE.chainFirst((c) => bridgeApply(exec, bridgeCmd, c.fdbDel)),
              TE.map((c) => {
                if (c.set + c.removed > 0) {
                  log.debug('overlay entries changed', {
                    networkId: spec.network.id,
                    device: dev,
                    peers: entries.neigh.size,
                    routes: entries.routes.size,
                    set: c.set,
                    removed: c.removed,
                    durationMs: Date.now() - started
                  })
                }
              })
            )
          )
        })
      )
    )

  const remove = (spec: OverlaySpec): TE.TaskEither<CoreError, void> =>
    guarded(() =>
      pipe(
        TE.fromEither(namesOf(spec)),
        TE.chain(({ dev, bridge }) =>
          serially(
            dev,
            pipe(
              removeDevice(tools, dev),
              TE.tap((removed) =>
                TE.fromIO(() => {
                  if (removed) log.info('overlay device removed', { networkId: spec.network.id, device: dev })
                })
              ),
              // The bridge may stay (an adopted one, or the network still there): it answers for
              // itself again, with the kernel's default delay.
              TE.chain(() => bridgeExists(bridge)),
              TE.chain((exists) =>
                exists
                  ? pipe(
                      // neigh.default exists only in the initial namespace; elsewhere the
                      // kernel's default is 80 (0.8 s in USER_HZ).
                      sysctl.read(['net', 'ipv4', 'neigh', 'default', 'proxy_delay']),
                      TE.orElse(() => TE.right(DEFAULT_PROXY_DELAY)),
                      TE.chain((delay) =>
                        TE.sequenceSeqArray([
                          ensureSysctl(sysctl, ['net', 'ipv4', 'conf', bridge, 'proxy_arp'], '0'),
                          ensureSysctl(sysctl, ['net', 'ipv4', 'neigh', bridge, 'proxy_delay'], delay)
                        ])
                      ),
                      TE.map(() => undefined)
                    )
                  : TE.right(undefined)
              )
            )
          )
        )
      )
    )

  const vtep = (): TE.TaskEither<CoreError, Vtep> =>
    guarded(() =>
      pipe(
        deviceOf(options.underlay),
        TE.map((): Vtep => ({ underlay: options.underlay, mac }))
      )
    )

  return { overhead: VXLAN_IPV4_OVERHEAD, vtep, ensure, setPeers, remove }
}
