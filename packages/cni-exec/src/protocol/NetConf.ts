/**
 * The network configuration on stdin (CNI SPEC §Network configuration), kept open: unknown keys,
 * `prevResult`, `runtimeConfig` and `capabilities` pass through untouched, because a delegated
 * IPAM plugin receives the very same bytes and chained plugins rely on their own keys. The
 * envelope checks the keys every plugin shares (`cniVersion`, `name`) with the reference's
 * messages; `IsthmusConf` is this plugin's view of the rest.
 */
import * as t from 'io-ts'
import {
  Cidr,
  ClusterNetworkName,
  IfName,
  IpAddress,
  isChainPrefix,
  LogLevel,
  type NetworkId,
  Subnet
} from '@isthmus/core'

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

/**
 * An absolute path (a plugin runs in the runtime's working directory, so relative paths are ambiguous).
 *
 * @category codecs
 */
export const AbsolutePath = new t.Type<string, string, unknown>(
  'AbsolutePath',
  (u): u is string => typeof u === 'string' && u.startsWith('/') && !u.includes('\0'),
  (u, c) =>
    typeof u === 'string' && u.startsWith('/') && !u.includes('\0')
      ? t.success(u)
      : t.failure(u, c, 'an absolute path'),
  (a) => a
)

/** iptables chain prefix: letters, digits and `_`, at most 16 (the core's `isChainPrefix`). @category codecs */
export const ChainPrefix = new t.Type<string, string, unknown>(
  'ChainPrefix',
  (u): u is string => typeof u === 'string' && isChainPrefix(u),
  (u, c) =>
    typeof u === 'string' && isChainPrefix(u) ? t.success(u) : t.failure(u, c, 'letters, digits and _ (1 to 16)'),
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
// contrail (docs/cni.md §Contrail)
// -------------------------------------------------------------------------------------

const isHttpUrl = (s: string): boolean => {
  try {
    const u = new URL(s)
    // Userinfo in a URL is a credential in the netconf: refused like any other (see KeystoneConf).
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.username === '' && u.password === ''
  } catch {
    return false
  }
}

/** An http(s) URL (the config API, keystone, the vRouter agent). @category codecs */
export const HttpUrl = new t.Type<string, string, unknown>(
  'HttpUrl',
  (u): u is string => typeof u === 'string' && isHttpUrl(u),
  (u, c) =>
    typeof u === 'string' && isHttpUrl(u)
      ? t.success(u)
      : // a URL with userinfo holds a password: never echoed into an error
        t.failure(
          typeof u === 'string' && u.includes('@') ? '(not shown)' : u,
          c,
          'an http:// or https:// URL without user or password'
        ),
  (a) => a
)

/**
 * A Contrail name (project, virtual network, domain): non-empty, no `:` (fq_names are joined with it).
 *
 * @category codecs
 */
export const ContrailName = new t.Type<string, string, unknown>(
  'ContrailName',
  (u): u is string => typeof u === 'string' && /^[^:\s][^:]*$/.test(u) && u.length <= 255,
  (u, c) =>
    typeof u === 'string' && /^[^:\s][^:]*$/.test(u) && u.length <= 255
      ? t.success(u)
      : t.failure(u, c, 'a Contrail name (no ":")'),
  (a) => a
)

/** `2`, `3`, `"v2"` or `"v3"`, as the keystone API version is commonly written. @category codecs */
export const KeystoneVersion = new t.Type<'v2' | 'v3', string, unknown>(
  'KeystoneVersion',
  (u): u is 'v2' | 'v3' => u === 'v2' || u === 'v3',
  (u, c) =>
    u === 2 || u === '2' || u === 'v2' || u === 'v2.0'
      ? t.success('v2')
      : u === 3 || u === '3' || u === 'v3'
        ? t.success('v3')
        : t.failure(u, c, '2 or 3'),
  (a) => a
)

const KEYSTONE_KEYS = new Set(['url', 'version', 'credentialsFile'])

const KeystoneFields = t.intersection([
  t.type({ url: HttpUrl }),
  t.partial({ version: KeystoneVersion, credentialsFile: AbsolutePath })
])

/**
 * `contrail.keystone`: where keystone is; the credentials come from `credentialsFile` or the
 * `OS_*` variables, never from here. Any other key is refused, a password above all: runtimes
 * cache the netconf (libcni in /var/lib/cni/results) and log it, and a misspelt
 * `credentialsFile` would otherwise be ignored silently. The refused value is never echoed.
 *
 * @category codecs
 */
export const KeystoneConf = new t.Type<t.TypeOf<typeof KeystoneFields>, unknown, unknown>(
  'KeystoneConf',
  KeystoneFields.is,
  (u, c) => {
    if (typeof u === 'object' && u !== null && !Array.isArray(u)) {
      const extra = Object.keys(u).filter((k) => !KEYSTONE_KEYS.has(k))
      if (extra.length > 0) {
        return t.failure(
          '(not shown)',
          c,
          `only url, version and credentialsFile (credentials come from credentialsFile or OS_* variables, never the netconf), not ${extra.join(', ')}`
        )
      }
    }
    return KeystoneFields.validate(u, c)
  },
  (a) => KeystoneFields.encode(a)
)
/** @category model */
export type KeystoneConf = t.TypeOf<typeof KeystoneConf>

/**
 * `contrail`: the network is the Contrail virtual network `default-domain:<tenant>:<network>`;
 * the controller assigns address, MAC and gateway, the vRouter agent at `agent` gets the port.
 *
 * @category codecs
 */
export const ContrailConf = t.intersection(
  [
    t.type({ api: HttpUrl, tenant: ContrailName, network: ContrailName }),
    t.partial({
      subnet: Subnet,
      agent: HttpUrl,
      keystone: KeystoneConf,
      domain: ContrailName,
      owner: t.string,
      timeoutMs: intIn('TimeoutMs', 100, 600_000),
      retries: intIn('Retries', 0, 10)
    })
  ],
  'ContrailConf'
)
/** @category model */
export type ContrailConf = t.TypeOf<typeof ContrailConf>

// -------------------------------------------------------------------------------------
// Docker (docs/cni.md §Docker, docs/one-network.md)
// -------------------------------------------------------------------------------------

const DOCKER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/

/** A Docker object name or id (Docker's own name rule; ids are hex). @category codecs */
export const DockerName = new t.Type<string, string, unknown>(
  'DockerName',
  (u): u is string => typeof u === 'string' && DOCKER_NAME.test(u),
  (u, c) =>
    typeof u === 'string' && DOCKER_NAME.test(u) ? t.success(u) : t.failure(u, c, 'a Docker network name or id'),
  (a) => a
)

/**
 * A Docker network by name or id, and the Engine API socket to ask about it: the `dockerConnect`
 * section (Docker attaches the container) and the `dockerNetwork` one (isthmus attaches into a
 * network Docker made with the isthmus driver).
 *
 * @category codecs
 */
export const DockerConf = t.intersection(
  [t.type({ network: DockerName }), t.partial({ socket: AbsolutePath, timeoutMs: intIn('TimeoutMs', 100, 600_000) })],
  'DockerConf'
)
/** @category model */
export type DockerConf = t.TypeOf<typeof DockerConf>

// -------------------------------------------------------------------------------------
// capabilities and args
// -------------------------------------------------------------------------------------

/**
 * A `portMappings` capability entry (https://github.com/containernetworking/cni/blob/main/CONVENTIONS.md).
 *
 * @category codecs
 */
export const PortMappingConf = t.intersection(
  [
    t.type({ hostPort: Port, containerPort: Port }),
    t.partial({ protocol: t.keyof({ tcp: null, udp: null, sctp: null }), hostIP: t.string })
  ],
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

/**
 * `args.cni` (the `args` section of https://github.com/containernetworking/cni/blob/main/CONVENTIONS.md):
 * `ips` and, as bridge reads it, `mac`.
 *
 * @category codecs
 */
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
    contrail: ContrailConf,
    dockerConnect: DockerConf,
    dockerNetwork: DockerConf,
    /**
     * The cluster network this netconf joins (multi-host, docs/multi-host.md): the network option
     * `isthmus.cluster`; only a daemon running in cluster mode serves it.
     */
    cluster: ClusterNetworkName,
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
