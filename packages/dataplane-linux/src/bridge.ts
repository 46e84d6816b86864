/**
 * A network's Linux bridge: created with its MTU, a fixed MAC, the gateway address of each subnet
 * and an ownership mark, or adopted when it already exists (an operator's `cni0`).
 *
 * Ownership is written into the kernel, not into a file: the bridge's alias (IFLA_IFALIAS, `ip link
 * set dev B alias ...`, shown as `ifalias` by `ip -json`) is `isthmus:net:<network id>`. A later
 * process (every CNI call is a new one) reads it back and removes only bridges isthmus made for
 * that network.
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { networkInterfaces } from 'node:os'
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import * as t from 'io-ts'
import { invalidConfig, isIfName, type CoreError, type Network } from '@isthmus/core'
import { deleteLinks, findLink, host, ipBatch, isExists, type IpCommand, type Tools } from './ip.js'
import { isUp, kindOf, type IpLink } from './iproute.js'
import { networkTag } from './nat.js'

/** The alias that marks a bridge as made by isthmus for `network`. @category utils */
export const ownerMark = (network: Network): string => networkTag(network)

/** Prefix of every owner mark (for inventory). @category constants */
export const OWNER_MARK_PREFIX = 'isthmus:net:'

/**
 * The network's bridge name, checked with core's one interface-name rule before it reaches `ip`,
 * sysfs or an iptables rule (where `+` would be a wildcard and `!` a negation).
 *
 * @category utils
 */
export const bridgeName = (network: Network): string | CoreError => {
  const b: string | undefined = network.bridge
  if (b === undefined) return invalidConfig(`network ${network.id} has no bridge name`)
  return isIfName(b) ? b : invalidConfig(`bad bridge name ${JSON.stringify(b)}`)
}

/**
 * A locally administered MAC derived from the network id. Without a MAC of its own a bridge takes
 * the lowest MAC of its ports, so the gateway's MAC would change as sandboxes come and go and
 * their ARP caches would point at the old one (Docker sets one for the same reason).
 *
 * @category utils
 */
export const bridgeMac = (network: Network): string => {
  const h = createHash('sha256').update(`isthmus-bridge\0${network.id}`).digest()
  return ['02', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':')
}

/** `gateway/prefix` for each subnet that has a gateway, in order (IPv4 first). */
const gatewayCidrs = (network: Network): ReadonlyArray<{ readonly cidr: string; readonly v6: boolean }> =>
  [...network.ipv4, ...network.ipv6].flatMap((s) =>
    s.gateway === undefined
      ? []
      : [{ cidr: `${s.gateway}/${s.subnet.split('/')[1] ?? ''}`, v6: s.gateway.includes(':') }]
  )

// Gateway addresses skip duplicate address detection: the bridge is the only holder of the
// gateway on a segment isthmus made, and DAD would leave the IPv6 gateway tentative (unusable)
// for about a second after creation.
const addAddr = (bridge: string, a: { cidr: string; v6: boolean }): IpCommand => [
  'addr',
  'add',
  a.cidr,
  'dev',
  bridge,
  ...(a.v6 ? ['nodad'] : [])
]

/** @category model */
export interface EnsuredBridge {
  readonly name: string
  /** Made by this call, or taken over from a network that is gone: removed with this network. */
  readonly created: boolean
}

/**
 * What a take-over must remove first, given the old owner's mark: that network's firewall rules
 * and the spare pairs its daemon left on the bridge. When it fails, nothing is taken over, so a
 * retry still knows whose leftovers they are.
 *
 * @category model
 */
export type DropOwner = (mark: string) => TE.TaskEither<CoreError, void>

/**
 * Create the bridge, or bring an existing one to what the network needs (addresses, MTU, up).
 * `created` is true when this call made it. A bridge made here whose set-up fails is removed
 * before the error is returned. A bridge carrying the mark of a network in `sharedWith` is used
 * as it is (adopted). One carrying any other isthmus network's mark is that network's leftover
 * (the caller has checked that no other stored network has it): it is taken over,
 * its old owner's rules and spares dropped (`dropOwner`), its addresses, MAC and mark replaced by
 * this network's, and it is then removed with this network (`created`).
 *
 * @category utils
 */
export const ensureBridge = (
  tools: Tools,
  network: Network,
  bridge: string,
  dropOwner: DropOwner,
  sharedWith: ReadonlyArray<string> = []
): TE.TaskEither<CoreError, EnsuredBridge> => {
  const owners = { network, sharedWith }
  return pipe(
    TE.fromIO(() => alreadyReady(owners, bridge)),
    TE.chain((ready) =>
      ready
        ? TE.right({ name: bridge, created: false })
        : pipe(
            findLink(tools, host, bridge, true),
            TE.chain((existing) =>
              existing === undefined
                ? create(tools, owners, bridge, dropOwner)
                : adopt(tools, owners, bridge, existing, dropOwner)
            )
          )
    )
  )
}

/** The network a bridge is ensured for, and the networks (ids) it shares the bridge with on purpose. */
interface Owners {
  readonly network: Network
  readonly sharedWith: ReadonlyArray<string>
}

/** What /sys/class/net says of a link (strings as the kernel prints them). @category codecs */
export const SysfsLink = t.type(
  { address: t.string, mtu: t.string, flags: t.string, ifalias: t.string, isBridge: t.boolean },
  'SysfsLink'
)

// Synchronous: sysfs attributes are a few bytes from kernel memory (see sysctl.ts).
const readSysfs = (name: string): unknown => {
  const dir = `/sys/class/net/${name}`
  return {
    address: readFileSync(`${dir}/address`, 'utf8').trim(),
    mtu: readFileSync(`${dir}/mtu`, 'utf8').trim(),
    flags: readFileSync(`${dir}/flags`, 'utf8').trim(),
    ifalias: readFileSync(`${dir}/ifalias`, 'utf8').trim(),
    isBridge: existsSync(`${dir}/bridge`)
  }
}

/** Another isthmus network's mark, not one this network shares with: a leftover to take over. */
const foreignMark = (alias: string | undefined, { network, sharedWith }: Owners): alias is string =>
  alias !== undefined &&
  alias.startsWith(OWNER_MARK_PREFIX) &&
  alias !== ownerMark(network) &&
  !sharedWith.includes(alias.slice(OWNER_MARK_PREFIX.length))

const IFF_UP = 0x1

/**
 * The common case of a CNI ADD, checked without starting a process: the bridge exists, is a bridge,
 * is up with the right MTU and carries every gateway address. Addresses come from getifaddrs(3)
 * (`os.networkInterfaces()`, netlink in this process's namespace; it lists only links that are up
 * and have carrier, so a bridge without live ports takes the slow path), the rest from sysfs; the
 * MAC must agree between the two, so both describe the same device. Anything else (absent, down,
 * missing an address, unreadable) answers false and `ip` decides.
 */
const alreadyReady = (owners: Owners, bridge: string): boolean => {
  const { network } = owners
  const entries = networkInterfaces()[bridge]
  if (entries === undefined || entries.length === 0) return false
  let raw: unknown
  try {
    raw = readSysfs(bridge)
  } catch {
    return false
  }
  const decoded = SysfsLink.decode(raw)
  if (E.isLeft(decoded)) return false
  const link = decoded.right
  const cidrs = new Set(entries.map((e) => e.cidr ?? ''))
  return (
    link.isBridge &&
    !foreignMark(link.ifalias, owners) &&
    (Number.parseInt(link.flags, 16) & IFF_UP) !== 0 &&
    (network.mtu === undefined || Number(link.mtu) === network.mtu) &&
    entries.every((e) => e.mac === link.address) &&
    gatewayCidrs(network).every((g) => cidrs.has(g.cidr))
  )
}

const create = (
  tools: Tools,
  owners: Owners,
  bridge: string,
  dropOwner: DropOwner
): TE.TaskEither<CoreError, EnsuredBridge> => {
  const { network } = owners
  const mtu = network.mtu === undefined ? [] : ['mtu', String(network.mtu)]
  const lines: IpCommand[] = [
    ['link', 'add', 'name', bridge, ...mtu, 'address', bridgeMac(network), 'type', 'bridge'],
    ['link', 'set', 'dev', bridge, 'alias', ownerMark(network)],
    ...gatewayCidrs(network).map((a) => addAddr(bridge, a)),
    ['link', 'set', 'dev', bridge, 'up']
  ]
  return pipe(
    ipBatch(tools, host, lines),
    TE.map((): EnsuredBridge => ({ name: bridge, created: true })),
    TE.orElse((e) =>
      isExists(e) && e._tag === 'Dataplane' && e.argv.includes('type')
        ? // Another process created it between our read and our add (parallel CNI ADDs): adopt it.
          pipe(
            findLink(tools, host, bridge, true),
            TE.chain((l) => (l === undefined ? TE.left(e) : adopt(tools, owners, bridge, l, dropOwner)))
          )
        : pipe(
            deleteLinks(tools, host, [bridge]),
            TE.chain(() => TE.left(e))
          )
    )
  )
}

const adopt = (
  tools: Tools,
  owners: Owners,
  bridge: string,
  link: IpLink,
  dropOwner: DropOwner
): TE.TaskEither<CoreError, EnsuredBridge> => {
  const { network } = owners
  if (kindOf(link) !== 'bridge') {
    return TE.left(invalidConfig(`${bridge} already exists and is not a bridge (${kindOf(link) ?? 'unknown kind'})`))
  }
  const old = foreignMark(link.ifalias, owners) ? link.ifalias : undefined
  const wanted = new Set(gatewayCidrs(network).map((a) => a.cidr))
  // A leftover's gateways would keep routing its old subnets to this bridge: all but ours go
  // (IPv6 link-local addresses are the kernel's own).
  const stale =
    old === undefined
      ? []
      : (link.addr_info ?? []).filter((a) => !wanted.has(`${a.local}/${a.prefixlen}`) && a.scope !== 'link')
  const have = new Set((link.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`))
  const fixes: IpCommand[] = [
    ...(old === undefined
      ? []
      : [
          ['link', 'set', 'dev', bridge, 'address', bridgeMac(network)],
          ...stale.map((a): IpCommand => ['addr', 'del', `${a.local}/${a.prefixlen}`, 'dev', bridge])
        ]),
    ...(network.mtu !== undefined && link.mtu !== network.mtu
      ? [['link', 'set', 'dev', bridge, 'mtu', String(network.mtu)]]
      : []),
    ...gatewayCidrs(network)
      .filter((a) => !have.has(a.cidr))
      .map((a) => addAddr(bridge, a)),
    ...(isUp(link) ? [] : [['link', 'set', 'dev', bridge, 'up']]),
    // The mark last: a take-over that stops half-way is still the old network's leftover.
    ...(old === undefined ? [] : [['link', 'set', 'dev', bridge, 'alias', ownerMark(network)]])
  ]
  const done: EnsuredBridge = { name: bridge, created: old !== undefined }
  return fixes.length === 0
    ? TE.right(done)
    : pipe(
        old === undefined ? TE.right(undefined) : dropOwner(old),
        TE.chain(() => ipBatch(tools, host, fixes)),
        // A parallel caller may have added the same address first.
        TE.orElse((e) =>
          isExists(e)
            ? ipBatch(
                tools,
                host,
                fixes.filter((f) => f[0] !== 'addr')
              )
            : TE.left(e)
        ),
        TE.map(() => done)
      )
}

/** Whether the bridge carries this network's owner mark. @category utils */
export const isOwnedBy = (link: IpLink, network: Network): boolean => link.ifalias === ownerMark(network)

/**
 * Delete the network's bridge if isthmus made it for this network; an adopted bridge stays, and
 * a missing one is fine.
 *
 * @category utils
 */
export const deleteBridge = (tools: Tools, network: Network, bridge: string): TE.TaskEither<CoreError, void> =>
  pipe(
    findLink(tools, host, bridge, true),
    TE.chain((l) =>
      l !== undefined && kindOf(l) === 'bridge' && isOwnedBy(l, network)
        ? deleteLinks(tools, host, [bridge])
        : TE.right(undefined)
    )
  )
