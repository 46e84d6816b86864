/**
 * The kernel entries that reach the other hosts of a cluster network, per remote host: a
 * permanent neighbour entry on the VXLAN device (its underlay address → its VTEP MAC), an FDB entry
 * (that MAC → send to its underlay address), and a route per block it holds (`<block> via <its
 * underlay> dev <vxlan> onlink src <this host's underlay>`). So they grow with hosts and blocks,
 * never with endpoints.
 *
 * A reconcile reads what the device has (one `ip` and one `bridge` process, side by side),
 * compares, and writes only the difference: a `bridge -batch` of FDB additions, an `ip -batch` of
 * routes and neighbours, a `bridge -batch` of FDB removals, in that order, so that a route is
 * never there before the entries it needs, nor left after them. Nothing to change costs the two
 * reads.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import * as t from 'io-ts'
import {
  contains,
  dataplane,
  decodeJson,
  familyOf,
  invalidConfig,
  splitCidr,
  type CoreError,
  type Network,
  type OverlayPeer,
  type Vtep
} from '@isthmus/core'
import { run, type Exec } from '../exec.js'
import { host, ipArgv, ipBatchForced, isNoDevice, isSafeToken, type IpCommand, type Tools } from '../ip.js'

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** The entries of one VXLAN device, by key. @category model */
export interface Entries {
  /** Neighbour entries: underlay address → VTEP MAC (only permanent ones count as right). */
  readonly neigh: ReadonlyMap<string, { readonly mac: string; readonly permanent: boolean }>
  /** FDB entries: VTEP MAC → underlay address. */
  readonly fdb: ReadonlyMap<string, string>
  /**
   * Routes: block → the underlay address it goes via, and the source address this host's own
   * packets take on it (its underlay address: the device has none of its own, and the gateway
   * address is every host's, so a reply to it would never come back).
   */
  readonly routes: ReadonlyMap<string, { readonly via: string; readonly src: string }>
}

/** A peer or block left out of the wanted entries, and why. @category model */
export interface Skipped {
  readonly host: string
  readonly what: string
  readonly why: string
}

/** The commands a reconcile runs, in order. @category model */
export interface Changes {
  readonly fdbAdd: ReadonlyArray<IpCommand>
  readonly ip: ReadonlyArray<IpCommand>
  readonly fdbDel: ReadonlyArray<IpCommand>
  /** Entries added or replaced, and removed (neighbours, FDB entries and routes together). */
  readonly set: number
  readonly removed: number
}

// -------------------------------------------------------------------------------------
// codecs: what `ip -json` and `bridge -json` print (iproute2 6.1)
// -------------------------------------------------------------------------------------

const NeighShow = t.array(
  t.intersection([t.type({ dst: t.string }), t.partial({ lladdr: t.string, state: t.array(t.string) })]),
  'NeighShow'
)
const RouteShow = t.array(
  t.intersection([
    t.type({ dst: t.string }),
    t.partial({ gateway: t.string, prefsrc: t.string, flags: t.array(t.string) })
  ]),
  'RouteShow'
)
const FdbShow = t.array(
  t.intersection([t.type({ mac: t.string }), t.partial({ dst: t.string, state: t.string })]),
  'FdbShow'
)

// -------------------------------------------------------------------------------------
// wanted
// -------------------------------------------------------------------------------------

/** `ip` prints a host route without its prefix length. */
const asCidr = (dst: string): string => (dst.includes('/') ? dst : `${dst}/32`)

/**
 * The entries `peers` need on the device. Left out (and reported): this host itself (its blocks
 * are on its bridge already), a peer that is not IPv4 (the overlay is VXLAN over IPv4), and a
 * block outside the network's IPv4 subnets (a route there would take traffic that is not the
 * network's).
 *
 * @category utils
 */
export const wantedEntries = (
  network: Network,
  self: Vtep,
  peers: ReadonlyArray<OverlayPeer>
): { readonly entries: Entries; readonly skipped: ReadonlyArray<Skipped> } => {
  const neigh = new Map<string, { mac: string; permanent: boolean }>()
  const fdb = new Map<string, string>()
  const routes = new Map<string, { via: string; src: string }>()
  const skipped: Skipped[] = []
  const subnets = network.ipv4.map((s) => s.subnet)
  for (const p of [...peers].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0))) {
    if (p.underlay === self.underlay || p.vtepMac === self.mac) {
      skipped.push({ host: p.host, what: p.underlay, why: 'this host itself' })
      continue
    }
    if (familyOf(p.underlay) !== 4) {
      skipped.push({ host: p.host, what: p.underlay, why: 'an IPv6 underlay (VXLAN runs over IPv4 here)' })
      continue
    }
    neigh.set(p.underlay, { mac: p.vtepMac, permanent: true })
    fdb.set(p.vtepMac, p.underlay)
    for (const block of p.blocks) {
      const inside =
        familyOf(block) === 4 &&
        subnets.some((s) => contains(s, splitCidr(block).address) && splitCidr(block).prefix >= splitCidr(s).prefix)
      if (inside) routes.set(block, { via: p.underlay, src: self.underlay })
      else skipped.push({ host: p.host, what: block, why: `not inside the network's IPv4 subnets` })
    }
  }
  return { entries: { neigh, fdb, routes }, skipped }
}

// -------------------------------------------------------------------------------------
// reading
// -------------------------------------------------------------------------------------

const parseLines = (stdout: string): ReadonlyArray<string> =>
  stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')

/**
 * What the device has: neighbours and routes from one `ip -json -batch`, FDB entries from one
 * `bridge -json`, side by side. A missing device is `InvalidConfig` (ensure comes first).
 *
 * @category utils
 */
export const readEntries = (tools: Tools, bridgeCmd: string, dev: string): TE.TaskEither<CoreError, Entries> => {
  const [file, argv] = ipArgv(tools, host, ['-json', '-batch', '-'])
  const ipShow = pipe(
    run(tools.exec, file, argv, `neigh show dev ${dev}\nroute show dev ${dev}\n`),
    TE.chainEitherK((o) => {
      const [n, r] = parseLines(o.stdout)
      return pipe(
        E.Do,
        E.apS('neigh', decodeJson(NeighShow, 'ip -json neigh show')(n ?? '')),
        E.apS('routes', decodeJson(RouteShow, 'ip -json route show')(r ?? ''))
      )
    })
  )
  const fdbShow = pipe(
    run(tools.exec, bridgeCmd, ['-json', 'fdb', 'show', 'dev', dev]),
    TE.chainEitherK((o) => decodeJson(FdbShow, 'bridge -json fdb show')(o.stdout))
  )
  return pipe(
    TE.Do,
    TE.apS('shown', ipShow),
    TE.apS('fdb', fdbShow),
    TE.map(({ shown, fdb }): Entries => ({
      neigh: new Map(
        shown.neigh.map((n) => [n.dst, { mac: n.lladdr ?? '', permanent: (n.state ?? []).includes('PERMANENT') }])
      ),
      // Entries without a remote are not tunnels (a VXLAN device made by isthmus has none).
      fdb: new Map(fdb.flatMap((f) => (f.dst === undefined ? [] : [[f.mac, f.dst] as const]))),
      routes: new Map(shown.routes.map((r) => [asCidr(r.dst), { via: r.gateway ?? '', src: r.prefsrc ?? '' }]))
    })),
    TE.mapLeft((e) =>
      isNoDevice(e) ? invalidConfig(`the overlay device ${dev} does not exist: ensure the overlay first`) : e
    )
  )
}

// -------------------------------------------------------------------------------------
// comparing
// -------------------------------------------------------------------------------------

/** The commands that turn `have` into `want` on device `dev`. @category utils */
export const changesFor = (dev: string, have: Entries, want: Entries): Changes => {
  const fdbAdd: IpCommand[] = []
  const fdbDel: IpCommand[] = []
  const routeDel: IpCommand[] = []
  const neighSet: IpCommand[] = []
  const routeSet: IpCommand[] = []
  const neighDel: IpCommand[] = []
  for (const [mac, dst] of want.fdb) {
    if (have.fdb.get(mac) !== dst) fdbAdd.push(['fdb', 'replace', mac, 'dev', dev, 'dst', dst, 'self', 'permanent'])
  }
  for (const mac of have.fdb.keys()) if (!want.fdb.has(mac)) fdbDel.push(['fdb', 'del', mac, 'dev', dev, 'self'])
  for (const [dst, n] of want.neigh) {
    const h = have.neigh.get(dst)
    if (h?.mac !== n.mac || !h.permanent) {
      neighSet.push(['neigh', 'replace', dst, 'lladdr', n.mac, 'dev', dev, 'nud', 'permanent'])
    }
  }
  // `neigh del` of an entry gone meanwhile ends `ip` even with -force; a flush of one address
  // never fails.
  for (const dst of have.neigh.keys()) {
    if (!want.neigh.has(dst)) neighDel.push(['neigh', 'flush', 'to', dst, 'dev', dev, 'nud', 'all'])
  }
  for (const [block, r] of want.routes) {
    const h = have.routes.get(block)
    if (h?.via !== r.via || h.src !== r.src) {
      routeSet.push(['route', 'replace', block, 'via', r.via, 'dev', dev, 'onlink', 'src', r.src])
    }
  }
  for (const block of have.routes.keys()) {
    if (!want.routes.has(block)) routeDel.push(['route', 'del', block, 'dev', dev])
  }
  return {
    fdbAdd,
    ip: [...routeDel, ...neighSet, ...routeSet, ...neighDel],
    fdbDel,
    set: fdbAdd.length + neighSet.length + routeSet.length,
    removed: fdbDel.length + neighDel.length + routeDel.length
  }
}

// -------------------------------------------------------------------------------------
// writing
// -------------------------------------------------------------------------------------

// What a deletion says when its entry is already gone (ESRCH for a route, ENOENT for an FDB entry).
const GONE = /No such process|No such file or directory|Cannot find device/

/**
 * The failures of a `-force` batch that matter, each with what was said before its
 * `Command failed -:N` line: those of lines that do not delete, and deletions that failed for
 * another reason than the entry being gone.
 */
const realFailures = (
  lines: ReadonlyArray<IpCommand>,
  stderr: string
): ReadonlyArray<{ readonly line: IpCommand; readonly said: string }> => {
  const out: Array<{ line: IpCommand; said: string }> = []
  let said: string[] = []
  for (const l of stderr.split('\n')) {
    const m = /^Command failed -:(\d+)$/.exec(l.trim())
    if (m === null) {
      if (l.trim() !== '') said.push(l)
      continue
    }
    const line = lines[Number(m[1]) - 1] ?? []
    const text = said.join('\n')
    said = []
    const deletes = line[1] === 'del' || line[1] === 'flush'
    if (!(deletes && GONE.test(text))) out.push({ line, said: text })
  }
  return out
}

const checkedForced = (
  argvOf: (line: IpCommand) => ReadonlyArray<string>,
  lines: ReadonlyArray<IpCommand>,
  stderr: string
): TE.TaskEither<CoreError, void> => {
  const [first] = realFailures(lines, stderr)
  return first === undefined ? TE.right(undefined) : TE.left(dataplane(argvOf(first.line), 1, first.said))
}

/** Run `lines` with `ip -force -batch -` in this namespace; deletions of what is gone succeed. @category utils */
export const ipApply = (tools: Tools, lines: ReadonlyArray<IpCommand>): TE.TaskEither<CoreError, void> =>
  lines.length === 0
    ? TE.right(undefined)
    : pipe(
        ipBatchForced(tools, host, lines),
        TE.chain((r) => checkedForced((l) => [tools.ip, ...l], lines, r.stderr))
      )

/** Run `lines` with `bridge -force -batch -`; deletions of what is gone succeed. @category utils */
export const bridgeApply = (
  exec: Exec,
  bridgeCmd: string,
  lines: ReadonlyArray<IpCommand>
): TE.TaskEither<CoreError, void> => {
  if (lines.length === 0) return TE.right(undefined)
  const bad = lines.flat().find((tok) => !isSafeToken(tok))
  if (bad !== undefined) return TE.left(invalidConfig(`refusing to pass ${JSON.stringify(bad)} to bridge -batch`))
  const argv = ['-force', '-batch', '-']
  return pipe(
    exec(bridgeCmd, argv, lines.map((l) => l.join(' ')).join('\n') + '\n'),
    TE.chain((o) =>
      o.exitCode !== 0 && !/Command failed -:\d+/.test(o.stderr)
        ? TE.left(dataplane([bridgeCmd, ...argv], o.exitCode, o.stderr))
        : checkedForced((l) => [bridgeCmd, ...l], lines, o.stderr)
    )
  )
}
