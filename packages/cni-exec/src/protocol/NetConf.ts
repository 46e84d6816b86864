/**
 * The network configuration on stdin (CNI SPEC §Network configuration), kept open: unknown keys,
 * `prevResult`, `runtimeConfig` and `capabilities` pass through untouched, because a delegated
 * IPAM plugin receives the very same bytes and chained plugins rely on their own keys. The
 * envelope checks the keys every plugin shares (`cniVersion`, `name`) with the reference's
 * messages; `IsthmusConf` is this plugin's view of the rest.
 */
import * as t from 'io-ts'
import { Cidr, IfName, IpAddress, NetworkId, Subnet } from '@isthmus/core'
import { LEVELS, type Level } from '@isthmus/log'

// -------------------------------------------------------------------------------------
// small codecs
// -------------------------------------------------------------------------------------

const intIn = (name: string, min: number, max: number) =>
  new t.Type<number, number, unknown>(
    name,
    (u): u is number => typeof u === 'number' && Number.isInteger(u) && u >= min && u <= max,
    (u, c) =>
      typeof u === 'number' && Number.isInteger(u) && u >= min && u <= max
        ? t.success(u)
        : t.failure(u, c, `an integer from ${min} to ${max}`),
    (a) => a
  )

/** An interface MTU (IPv4 minimum 68; 65535 is the largest the kernel takes for a bridge). @category codecs */
export const Mtu = intIn('Mtu', 68, 65535)
/** @category codecs */
export const Port = intIn('Port', 1, 65535)

/** An absolute path (a plugin runs in the runtime's working directory, so relative paths are ambiguous). @category codecs */
export const AbsolutePath = new t.Type<string, string, unknown>(
  'AbsolutePath',
  (u): u is string => typeof u === 'string' && u.startsWith('/') && !u.includes('\0'),
  (u, c) => (typeof u === 'string' && u.startsWith('/') && !u.includes('\0') ? t.success(u) : t.failure(u, c, 'an absolute path')),
  (a) => a
)

/** @category codecs */
export const LogLevel = new t.Type<Level, string, unknown>(
  'LogLevel',
  (u): u is Level => typeof u === 'string' && (LEVELS as ReadonlyArray<string>).includes(u),
  (u, c) =>
    typeof u === 'string' && (LEVELS as ReadonlyArray<string>).includes(u)
      ? t.success(u as Level)
      : t.failure(u, c, `one of ${LEVELS.join(', ')}`),
  (a) => a
)

/** iptables chain prefix: letters, digits and `_`, at most 16 (dataplane-linux's rule). @category codecs */
export const ChainPrefix = new t.Type<string, string, unknown>(
  'ChainPrefix',
  (u): u is string => typeof u === 'string' && /^[A-Za-z0-9_]{1,16}$/.test(u),
  (u, c) =>
    typeof u === 'string' && /^[A-Za-z0-9_]{1,16}$/.test(u) ? t.success(u) : t.failure(u, c, 'letters, digits and _ (1 to 16)'),
  (a) => a
)

// -------------------------------------------------------------------------------------
// ipam, dns, routes
// -------------------------------------------------------------------------------------

/** One range of a range set (host-local's `ranges` format). @category codecs */
export const RangeConf = t.intersection(
  [t.type({ subnet: Subnet }), t.partial({ rangeStart: IpAddress, rangeEnd: IpAddress, gateway: IpAddress })],
  'RangeConf'
)
/** @category model */
export type RangeConf = t.TypeOf<typeof RangeConf>

/** A range set: one address comes from the first range of the set that has one free. @category codecs */
export const RangeSet = t.array(RangeConf, 'RangeSet')

/** A route (1.1.0 adds mtu, advmss, priority, table, scope; carried along, not installed). @category codecs */
export const RouteConf = t.intersection(
  [
    t.type({ dst: Cidr }),
    t.partial({ gw: IpAddress, mtu: t.number, advmss: t.number, priority: t.number, table: t.number, scope: t.number })
  ],
  'RouteConf'
)
/** @category model */
export type RouteConf = t.TypeOf<typeof RouteConf>

/**
 * The `ipam` section. `type` absent or `isthmus`: the built-in IPAM over `ranges`; any other
 * type: that plugin, found in CNI_PATH, allocates (it receives the whole netconf).
 *
 * @category codecs
 */
export const IpamConf = t.partial(
  { type: t.string, ranges: t.array(RangeSet), routes: t.array(RouteConf), exclude: t.array(IpAddress) },
  'IpamConf'
)
/** @category model */
export type IpamConf = t.TypeOf<typeof IpamConf>

/** @category codecs */
export const Dns = t.partial(
  { nameservers: t.array(t.string), domain: t.string, search: t.array(t.string), options: t.array(t.string) },
  'Dns'
)
/** @category model */
export type Dns = t.TypeOf<typeof Dns>

// -------------------------------------------------------------------------------------
// capabilities and args
// -------------------------------------------------------------------------------------

/** CONVENTIONS.md `portMappings` capability entry. @category codecs */
export const PortMappingConf = t.intersection(
  [t.type({ hostPort: Port, containerPort: Port }), t.partial({ protocol: t.keyof({ tcp: null, udp: null, sctp: null }), hostIP: t.string })],
  'PortMappingConf'
)
/** @category model */
export type PortMappingConf = t.TypeOf<typeof PortMappingConf>

/** `runtimeConfig`: the capabilities this plugin consumes (`ips`, `mac`, `portMappings`). @category codecs */
export const RuntimeConfig = t.partial(
  { ips: t.array(t.string), mac: t.string, portMappings: t.array(PortMappingConf) },
  'RuntimeConfig'
)
/** @category model */
export type RuntimeConfig = t.TypeOf<typeof RuntimeConfig>

/** `args.cni` (CONVENTIONS.md §args): `ips` and, as bridge reads it, `mac`. @category codecs */
export const ArgsConf = t.partial({ cni: t.partial({ ips: t.array(t.string), mac: t.string }) }, 'ArgsConf')

/** One entry of `cni.dev/valid-attachments`. @category codecs */
export const Attachment = t.type({ containerID: t.string, ifname: t.string }, 'Attachment')
/** @category model */
export type Attachment = t.TypeOf<typeof Attachment>

/** The GC key; `cni.dev/attachments` is its name before libcni v1.2.3. @category constants */
export const VALID_ATTACHMENTS = 'cni.dev/valid-attachments'
/** @category constants */
export const OLD_ATTACHMENTS = 'cni.dev/attachments'

// -------------------------------------------------------------------------------------
// the netconf
// -------------------------------------------------------------------------------------

/**
 * The keys every plugin shares; `name` and `cniVersion` are checked by the envelope with the
 * reference's own messages, so here they are only read.
 *
 * @category codecs
 */
export const BaseConf = t.partial({ cniVersion: t.unknown, name: t.unknown, type: t.unknown }, 'BaseConf')

/**
 * This plugin's keys (docs/cni.md). Decoded with `t.partial`, which keeps no unknown key in the
 * result, while the raw object stays beside it for delegates and pass-through.
 *
 * @category codecs
 */
export const IsthmusConf = t.partial(
  {
    type: t.string,
    bridge: IfName,
    mtu: Mtu,
    ipMasq: t.boolean,
    isGateway: t.boolean,
    isDefaultGateway: t.boolean,
    ipam: IpamConf,
    dns: Dns,
    stateDir: AbsolutePath,
    logFile: AbsolutePath,
    logLevel: LogLevel,
    chainPrefix: ChainPrefix,
    runtimeConfig: RuntimeConfig,
    args: ArgsConf,
    prevResult: t.UnknownRecord,
    [VALID_ATTACHMENTS]: t.union([t.array(Attachment), t.null]),
    [OLD_ATTACHMENTS]: t.union([t.array(Attachment), t.null])
  },
  'IsthmusConf'
)
/** @category model */
export type IsthmusConf = t.TypeOf<typeof IsthmusConf>

/** The netconf as the commands get it: the checked shared keys, this plugin's view, the raw text. @category model */
export interface NetConf {
  readonly cniVersion: string
  readonly name: NetworkId
  readonly conf: IsthmusConf
  /** The parsed object, every key included. */
  readonly raw: Readonly<Record<string, unknown>>
  /** stdin exactly as received (what a delegate gets). */
  readonly text: string
}
