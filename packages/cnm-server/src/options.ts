/**
 * Docker's network and endpoint options, decoded into what the core needs. The `-o k=v` pairs
 * arrive under `com.docker.network.generic`; a bad value is one clear InvalidConfig sentence.
 * docs/cnm.md lists every key.
 */
import * as E from 'fp-ts/lib/Either.js'
import {
  AddressSpace,
  IfName,
  IpAddress,
  Subnet,
  invalidConfig,
  type CoreError,
  type PortMapping,
  type Route
} from '@isthmus/core'
import type { Options } from './protocol/common.js'

/** Keys of `com.docker.network.generic` that isthmus reads. */
export const OPT = {
  bridgeName: ['com.docker.network.bridge.name', 'bridge'],
  mtu: ['com.docker.network.driver.mtu', 'com.docker.network.mtu', 'mtu'],
  masquerade: ['com.docker.network.bridge.enable_ip_masquerade', 'ip-masquerade'],
  ifacePrefix: ['com.docker.network.container_iface_prefix'],
  tenant: ['tenant'],
  network: ['network'],
  addressSpace: ['address-space'],
  routes: ['routes']
} as const

export interface NetworkOptions {
  readonly generic: Readonly<Record<string, string>>
  readonly bridge?: IfName
  readonly mtu?: number
  readonly ipMasquerade: boolean
  readonly internal: boolean
  readonly ifacePrefix: string
  readonly tenant?: string
  readonly network?: string
  /** The IPAM address space of the network's pools (`--ipam-opt address-space` names it to the IPAM). */
  readonly addressSpace?: AddressSpace
  /** Static routes for the containers, besides the default route via the gateway. */
  readonly routes: ReadonlyArray<Route>
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

const pick = (generic: Readonly<Record<string, string>>, keys: ReadonlyArray<string>): [string, string] | undefined => {
  for (const k of keys) if (generic[k] !== undefined) return [k, generic[k]]
  return undefined
}

const bool = (key: string, v: string): E.Either<CoreError, boolean> => {
  const s = v.trim().toLowerCase()
  if (['true', '1', 'yes', 'on'].includes(s)) return E.right(true)
  if (['false', '0', 'no', 'off'].includes(s)) return E.right(false)
  return E.left(invalidConfig(`option ${key}=${v} must be true or false`))
}

/**
 * `-o routes=<dst>[ via <gw>],…`: static routes inside the containers, answered at Join (on-link
 * without `via`). Read again from the network record at each Join.
 */
export const staticRoutes = (generic: Readonly<Record<string, string>>): E.Either<CoreError, ReadonlyArray<Route>> => {
  const opt = pick(generic, OPT.routes)
  if (opt === undefined) return E.right([])
  const out: Route[] = []
  for (const entry of opt[1].split(',').map((e) => e.trim()).filter((e) => e !== '')) {
    const [dst, via, gw, ...rest] = entry.split(/\s+/)
    const d = Subnet.decode(dst)
    const g = gw === undefined ? undefined : IpAddress.decode(gw)
    const wellFormed = rest.length === 0 && (via === undefined ? gw === undefined : via === 'via' && g !== undefined)
    if (E.isLeft(d) || !wellFormed || (g !== undefined && E.isLeft(g))) {
      return E.left(invalidConfig(`option ${opt[0]} entry "${entry}" must be <subnet> or <subnet> via <address>`))
    }
    out.push({ dst: d.right, ...(g === undefined || E.isLeft(g) ? {} : { gw: g.right }) })
  }
  return E.right(out)
}

/** Decode CreateNetwork `Options`. */
export const networkOptions = (options: Options): E.Either<CoreError, NetworkOptions> => {
  const o = options ?? {}
  const raw = isRecord(o['com.docker.network.generic']) ? o['com.docker.network.generic'] : {}
  const generic: Record<string, string> = {}
  for (const [k, v] of Object.entries(raw)) generic[k] = typeof v === 'string' ? v : JSON.stringify(v)

  const bridgeOpt = pick(generic, OPT.bridgeName)
  let bridge: IfName | undefined
  if (bridgeOpt !== undefined) {
    const d = IfName.decode(bridgeOpt[1])
    if (E.isLeft(d)) {
      return E.left(invalidConfig(`option ${bridgeOpt[0]}=${bridgeOpt[1]} is not a valid interface name (1 to 15 characters, no / : or spaces)`))
    }
    bridge = d.right
  }

  const mtuOpt = pick(generic, OPT.mtu)
  let mtu: number | undefined
  if (mtuOpt !== undefined) {
    const n = Number(mtuOpt[1])
    if (!/^\d+$/.test(mtuOpt[1].trim()) || n < 68 || n > 65535) {
      return E.left(invalidConfig(`option ${mtuOpt[0]}=${mtuOpt[1]} must be a whole number from 68 to 65535`))
    }
    mtu = n
  }

  const masqOpt = pick(generic, OPT.masquerade)
  const masq = masqOpt === undefined ? E.right(true) : bool(masqOpt[0], masqOpt[1])
  if (E.isLeft(masq)) return masq

  const prefixOpt = pick(generic, OPT.ifacePrefix)
  const ifacePrefix = prefixOpt?.[1] ?? 'eth'
  if (!/^[a-zA-Z][a-zA-Z0-9_-]{0,9}$/.test(ifacePrefix)) {
    return E.left(invalidConfig(`option ${OPT.ifacePrefix[0]}=${ifacePrefix} must be a letter and up to 9 letters, digits, _ or -`))
  }

  const spaceOpt = pick(generic, OPT.addressSpace)
  let addressSpace: AddressSpace | undefined
  if (spaceOpt !== undefined) {
    const d = AddressSpace.decode(spaceOpt[1])
    if (E.isLeft(d)) return E.left(invalidConfig(`option ${spaceOpt[0]}=${spaceOpt[1]} must be an address space name (letters, digits, _ . -)`))
    addressSpace = d.right
  }
  const routes = staticRoutes(generic)
  if (E.isLeft(routes)) return routes

  const internal = o['com.docker.network.internal'] === true || o['com.docker.network.internal'] === 'true'
  const tenant = pick(generic, OPT.tenant)?.[1]
  const network = pick(generic, OPT.network)?.[1]
  return E.right({
    generic,
    ipMasquerade: masq.right,
    internal,
    ifacePrefix,
    routes: routes.right,
    ...(addressSpace === undefined ? {} : { addressSpace }),
    ...(bridge === undefined ? {} : { bridge }),
    ...(mtu === undefined ? {} : { mtu }),
    ...(tenant === undefined ? {} : { tenant }),
    ...(network === undefined ? {} : { network })
  })
}

const PROTOCOLS: Readonly<Record<number, PortMapping['protocol']>> = { 6: 'tcp', 17: 'udp', 132: 'sctp' }

/**
 * `com.docker.network.portmap` of CreateEndpoint/Join/ProgramExternalConnectivity: one entry per
 * port (`-p 8080-8081:80-81` is already expanded). `-P` gives HostPort 0: isthmus then picks the
 * container port itself, since dockerd allocates nothing for a remote driver.
 */
export const portMappings = (options: Options): E.Either<CoreError, ReadonlyArray<PortMapping>> => {
  const list = options?.['com.docker.network.portmap']
  if (list === undefined || list === null) return E.right([])
  if (!Array.isArray(list)) return E.left(invalidConfig('com.docker.network.portmap must be a list'))
  const out: PortMapping[] = []
  for (const m of list) {
    if (!isRecord(m)) return E.left(invalidConfig('com.docker.network.portmap entries must be objects'))
    const protocol = PROTOCOLS[Number(m['Proto'])]
    const port = Number(m['Port'])
    const hostPort = Number(m['HostPort'] ?? 0)
    const hostIp = typeof m['HostIP'] === 'string' && m['HostIP'] !== '' ? m['HostIP'] : undefined
    if (protocol === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
      return E.left(invalidConfig(`port mapping ${JSON.stringify(m)} names no valid protocol and container port`))
    }
    if (!Number.isInteger(hostPort) || hostPort < 0 || hostPort > 65535) {
      return E.left(invalidConfig(`port mapping ${JSON.stringify(m)} has an invalid host port`))
    }
    out.push({
      protocol,
      containerPort: port,
      hostPort: hostPort === 0 ? port : hostPort,
      ...(hostIp === undefined ? {} : { hostIp: hostIp as PortMapping['hostIp'] & string })
    })
  }
  return E.right(out)
}
