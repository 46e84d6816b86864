/**
 * What `isthmus uninstall` removes from the host's network stack: the links and chains one isthmus
 * installation made, and nothing of anybody else's (other daemons on other state directories and
 * chain prefixes, an operator's bridges, Docker's and CNI's own links).
 *
 * Whose a link is comes from the kernel and the store, never from a name alone:
 * - a bridge is this installation's when a network of its store names it and the bridge carries
 *   that network's owner mark (an adopted bridge, such as an operator's `cni0`, has none and stays);
 * - a veth is when its host end is a recorded endpoint's, or a port named like an endpoint on one
 *   of those bridges, or a spare (alias `isthmus-spare`) there; a spare on no bridge at all lost its
 *   bridge with its daemon and is nobody's (spares.ts, `strayPairs`);
 * - a VXLAN device is when it carries the overlay mark of one of those networks (a cluster's);
 * - the iptables chains are those under the chain prefixes given, with the jumps to them.
 */
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { HOST_IF_PREFIX, invalidConfig, isChainPrefix, type CoreError, type Network } from '@isthmus/core'
import { ownerMark } from './bridge.js'
import { overlayMark } from './overlay/device.js'
import { execFileExec, type Exec } from './exec.js'
import { deleteLinks, host, showLinks, type Tools } from './ip.js'
import { kindOf, type IpLink } from './iproute.js'
import { DEFAULT_IPTABLES_DEADLINE_MS, ownRules, removeAll, type Iptables } from './iptables.js'
import { SPARE_ALIAS } from './spares.js'

/** What the store says is this installation's. @category model */
export interface InstalledRecords {
  readonly networks: ReadonlyArray<Network>
  /** The host ends of the recorded endpoints. */
  readonly hostIfNames: ReadonlyArray<string>
}

/** @category model */
export interface HostRemovalOptions {
  /** The iptables chain prefixes to remove (each checked as `--chain-prefix` is). */
  readonly chainPrefixes: ReadonlyArray<string>
  /** How commands run; default `execFileExec()` (one process each: this is a one-off). */
  readonly exec?: Exec
}

/** What was removed; all empty when nothing was left. @category model */
export interface HostRemoved {
  readonly links: ReadonlyArray<string>
  readonly bridges: ReadonlyArray<string>
  /** `table/chain`, IPv4 and IPv6 together. */
  readonly chains: ReadonlyArray<string>
}

/** The bridges and veths of `records` present in `links`. @category utils */
export const ownLinks = (
  links: ReadonlyArray<IpLink>,
  records: InstalledRecords
): {
  readonly bridges: ReadonlyArray<string>
  readonly veths: ReadonlyArray<string>
  readonly overlays: ReadonlyArray<string>
} => {
  const byName = new Map(links.map((l) => [l.ifname, l]))
  const bridges = new Set(
    records.networks.flatMap((n) => {
      const l = n.bridge === undefined ? undefined : byName.get(n.bridge)
      return l !== undefined && kindOf(l) === 'bridge' && l.ifalias === ownerMark(n) ? [l.ifname] : []
    })
  )
  const recorded = new Set(records.hostIfNames)
  const veths = links
    .filter(
      (l) =>
        kindOf(l) === 'veth' &&
        (recorded.has(l.ifname) ||
          (l.master !== undefined &&
            bridges.has(l.master) &&
            (l.ifname.startsWith(HOST_IF_PREFIX) || l.ifalias === SPARE_ALIAS)) ||
          (l.master === undefined &&
            l.ifalias === SPARE_ALIAS &&
            typeof l.link === 'string' &&
            l.link_netnsid === undefined))
    )
    .map((l) => l.ifname)
  const marks = new Set(records.networks.map(overlayMark))
  const overlays = links
    .filter((l) => kindOf(l) === 'vxlan' && l.ifalias !== undefined && marks.has(l.ifalias))
    .map((l) => l.ifname)
  return { bridges: [...bridges], veths, overlays }
}

const iptablesOf = (exec: Exec, prefix: string): Iptables => ({
  exec,
  prefix,
  deadlineMs: DEFAULT_IPTABLES_DEADLINE_MS,
  commands: {
    4: { save: 'iptables-save', restore: 'iptables-restore' },
    6: { save: 'ip6tables-save', restore: 'ip6tables-restore' }
  }
})

// One family's chains under one prefix: what is there, then (if anything) their removal.
const removeChains = (ipt: Iptables, family: 4 | 6): TE.TaskEither<CoreError, ReadonlyArray<string>> =>
  pipe(
    ownRules(ipt, family),
    TE.chain(({ chains }) =>
      chains.length === 0
        ? TE.right([])
        : pipe(
            removeAll(ipt, family),
            TE.map(() => chains.map((c) => (family === 6 ? `ip6:${c}` : c)))
          )
    )
  )

/**
 * Remove the installation's links (veths first, then bridges, each a no-op when already gone) and
 * its chains under every prefix. Running it again removes nothing and succeeds.
 *
 * @category utils
 */
export const removeHostState = (
  records: InstalledRecords,
  options: HostRemovalOptions
): TE.TaskEither<CoreError, HostRemoved> => {
  const bad = options.chainPrefixes.find((p) => !isChainPrefix(p))
  if (bad !== undefined) return TE.left(invalidConfig(`bad iptables chain prefix ${JSON.stringify(bad)}`))
  const exec = options.exec ?? execFileExec()
  const tools: Tools = { exec, ip: 'ip', nsenter: 'nsenter' }
  return pipe(
    showLinks(tools, host, undefined, true),
    TE.map((links) => ownLinks(links, records)),
    TE.chainFirst(({ veths }) => deleteLinks(tools, host, veths)),
    TE.chainFirst(({ bridges, overlays }) => deleteLinks(tools, host, [...bridges, ...overlays])),
    TE.chain(({ veths, bridges, overlays }) =>
      pipe(
        TE.sequenceSeqArray(
          [...new Set(options.chainPrefixes)].flatMap((p) => [
            removeChains(iptablesOf(exec, p), 4),
            removeChains(iptablesOf(exec, p), 6)
          ])
        ),
        TE.map((chains): HostRemoved => ({ links: [...veths, ...overlays], bridges, chains: chains.flat() }))
      )
    )
  )
}
