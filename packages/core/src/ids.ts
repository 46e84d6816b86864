/**
 * Identifiers and names, with the exact rules of the protocols that carry them, and the one
 * rule that derives host interface names from endpoint ids (kept here, not in an adapter, so
 * every dataplane and every frontend agrees on it).
 */
import * as t from 'io-ts'

const brandedString = <B>(name: string, ok: (s: string) => boolean, expected: string) =>
  new t.Type<string & B, string, unknown>(
    name,
    (u): u is string & B => typeof u === 'string' && ok(u),
    (u, c) => (typeof u === 'string' && ok(u) ? t.success(u as string & B) : t.failure(u, c, expected)),
    (a) => a
  )

// CNI SPEC §Parameters: container ids and network names share this pattern.
const CNI_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/

export interface NetworkIdBrand {
  readonly NetworkId: unique symbol
}
/** A network's id: Docker's 64-hex NetworkID, or a CNI network name. @category model */
export type NetworkId = string & NetworkIdBrand
/** @category codecs */
export const NetworkId = brandedString<NetworkIdBrand>(
  'NetworkId',
  (s) => s.length > 0 && s.length <= 128 && CNI_NAME.test(s),
  'a network id (letters, digits, _ . -; at most 128)'
)

export interface EndpointIdBrand {
  readonly EndpointId: unique symbol
}
/** An endpoint's id: Docker's 64-hex EndpointID, or one derived from a CNI attachment. @category model */
export type EndpointId = string & EndpointIdBrand
/** @category codecs */
export const EndpointId = brandedString<EndpointIdBrand>(
  'EndpointId',
  (s) => s.length > 0 && s.length <= 256 && CNI_NAME.test(s),
  'an endpoint id (letters, digits, _ . -; at most 256)'
)

export interface ContainerIdBrand {
  readonly ContainerId: unique symbol
}
/** A container id as CNI_CONTAINERID carries it. @category model */
export type ContainerId = string & ContainerIdBrand
/**
 * The CNI pattern, at most 256 characters: runtimes use 64 hex digits, and the id is stored in
 * records and log lines, so an unbounded one would be a way to fill them.
 *
 * @category codecs
 */
export const ContainerId = brandedString<ContainerIdBrand>(
  'ContainerId',
  (s) => s.length > 0 && s.length <= 256 && CNI_NAME.test(s),
  'a container id (starts with a letter or digit; letters, digits, _ . -; at most 256)'
)

export interface IfNameBrand {
  readonly IfName: unique symbol
}
/** A Linux interface name that isthmus passes to the kernel, to `ip` and to iptables. @category model */
export type IfName = string & IfNameBrand

const LINK_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/

/**
 * Every interface name that reaches the kernel or a firewall rule: a bridge name (Docker's
 * `com.docker.network.bridge.name`, the CNI `bridge` key), CNI_IFNAME, the derived veth names.
 * Linux alone allows 1 to 15 bytes other than `/`, `:` and whitespace, not `.` or `..`; isthmus
 * narrows that to what every tool reads literally: letters, digits, `_`, `.` and `-`, starting
 * with a letter, digit or `_`. A leading `-` would read as an option, `+` is an iptables wildcard
 * (`-i br+` matches every `br…` interface), `!` negates an iptables match, and quotes or `#`
 * change an `ip -batch` line.
 *
 * @category utils
 */
export const isIfName = (s: string): boolean => LINK_NAME.test(s)

/** @category codecs */
export const IfName = brandedString<IfNameBrand>(
  'IfName',
  isIfName,
  'an interface name (1 to 15 letters, digits, _ . or -, not starting with . or -)'
)

export interface SandboxKeyBrand {
  readonly SandboxKey: unique symbol
}
/** A sandbox: the path of its network namespace (Docker SandboxKey, CNI_NETNS). @category model */
export type SandboxKey = string & SandboxKeyBrand
/** @category codecs */
export const SandboxKey = brandedString<SandboxKeyBrand>(
  'SandboxKey',
  (s) => s.startsWith('/') && s.length <= 4096 && !s.includes('\0'),
  'an absolute network namespace path'
)

export interface PoolIdBrand {
  readonly PoolId: unique symbol
}
/** An IPAM pool's id: stable for identical requests, as Docker requires. @category model */
export type PoolId = string & PoolIdBrand
/** @category codecs */
export const PoolId = brandedString<PoolIdBrand>(
  'PoolId',
  (s) => s.length > 0 && s.length <= 512 && !s.includes('\0'),
  'a pool id'
)

export interface AddressSpaceBrand {
  readonly AddressSpace: unique symbol
}
/** An IPAM address space: the same CIDR may exist once in each. @category model */
export type AddressSpace = string & AddressSpaceBrand
/** @category codecs */
export const AddressSpace = brandedString<AddressSpaceBrand>(
  'AddressSpace',
  (s) => s.length > 0 && s.length <= 128 && CNI_NAME.test(s),
  'an address space name (letters, digits, _ . -)'
)

/** The address spaces of the built-in IPAM (Docker GetDefaultAddressSpaces). @category constants */
export const DEFAULT_LOCAL_SPACE = 'isthmus-local' as AddressSpace
/** @category constants */
export const DEFAULT_GLOBAL_SPACE = 'isthmus-global' as AddressSpace

// -------------------------------------------------------------------------------------
// host interface names
// -------------------------------------------------------------------------------------

/** Prefix of host-side veth names that isthmus owns. @category constants */
export const HOST_IF_PREFIX = 'istv'
/** Prefix of the sandbox-side veth while it is still in the host namespace. @category constants */
export const PEER_IF_PREFIX = 'istc'
/** Prefix of the bridges isthmus names itself (when the user names none). @category constants */
export const BRIDGE_IF_PREFIX = 'istb'

// FNV-1a 64: core has no crypto import, and the name only needs to spread well, not to be secret.
const fnv1a64 = (s: string): bigint => {
  let h = 0xcbf29ce484222325n
  for (let i = 0; i < s.length; i++) {
    h ^= BigInt(s.charCodeAt(i))
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn
  }
  return h
}

const suffix = (id: EndpointId): string => fnv1a64(id).toString(16).padStart(16, '0').slice(0, 11)

/**
 * The host-side veth name of an endpoint: `istv` plus 11 hex digits, 15 characters (IFNAMSIZ - 1).
 *
 * @category utils
 */
export const hostIfName = (id: EndpointId): IfName => `${HOST_IF_PREFIX}${suffix(id)}` as IfName

/** The sandbox-side veth name before it is moved and renamed. @category utils */
export const peerIfName = (id: EndpointId): IfName => `${PEER_IF_PREFIX}${suffix(id)}` as IfName

/** The bridge name of a network the user gave no bridge name: `istb` plus 11 hex digits. @category utils */
export const bridgeIfName = (id: NetworkId): IfName =>
  `${BRIDGE_IF_PREFIX}${fnv1a64(`net\0${id}`).toString(16).padStart(16, '0').slice(0, 11)}` as IfName

/**
 * The endpoint id of a CNI attachment: a CNI network, container and interface name identify one
 * attachment (SPEC §Attachments), and this id must be stable across ADD, CHECK and DEL.
 *
 * @category utils
 */
export const attachmentEndpointId = (network: string, container: ContainerId, ifName: IfName): EndpointId =>
  `cni-${fnv1a64(`${network}\0${container}\0${ifName}`).toString(16).padStart(16, '0')}-${fnv1a64(`${container}\0${ifName}\0${network}`).toString(16).padStart(16, '0')}` as EndpointId

/**
 * Whether `s` can start firewall chain names (the Linux dataplane's `--chain-prefix`, a netconf's
 * `chainPrefix`): letters, digits and `_`, at most 16.
 *
 * @category utils
 */
export const isChainPrefix = (s: string): boolean => /^[A-Za-z0-9_]{1,16}$/.test(s)
