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
  decodeFailure,
  familyOf,
  invalidConfig,
  type CoreError,
  type Family,
  type PortMapping,
  type Route
} from '@isthmus/core'
import type { Options } from './protocol/common.js'
import { PORTMAP_OPTION, type EndpointOptions } from './protocol/NetworkDriver.js'

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

/**
 * A value the user typed, for an error sentence: as typed when short and plain, else quoted (JSON)
 * and cut to a length a sentence can carry (the body may hold a string of 200 KB).
 */
export const shown = (s: string, max = 64): string =>
  s.length <= max && /^[\x21-\x7e]+$/.test(s) ? s : JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s)

const kindOf = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`

/**
 * The `-o` options as strings. dockerd sends strings; a number or boolean from another client
 * is read as its text, and anything else is refused by name, never stringified (a value nested
 * thousands deep would overflow the stack).
 */
const genericOptions = (raw: unknown): E.Either<CoreError, Record<string, string>> => {
  if (raw === undefined || raw === null) return E.right({})
  if (!isRecord(raw)) {
    return E.left(
      invalidConfig(`option com.docker.network.generic must be an object of -o key=value options, got ${kindOf(raw)}`)
    )
  }
  const generic: Record<string, string> = {}
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v === 'string') generic[k] = v
    else if (typeof v === 'number' || typeof v === 'boolean') generic[k] = String(v)
    else return E.left(invalidConfig(`option ${shown(k)} must be a string, got ${kindOf(v)}`))
  }
  return E.right(generic)
}

const pick = (generic: Readonly<Record<string, string>>, keys: ReadonlyArray<string>): [string, string] | undefined => {
  for (const k of keys) if (generic[k] !== undefined) return [k, generic[k]]
  return undefined
}

const bool = (key: string, v: string): E.Either<CoreError, boolean> => {
  const s = v.trim().toLowerCase()
  if (['true', '1', 'yes', 'on'].includes(s)) return E.right(true)
  if (['false', '0', 'no', 'off'].includes(s)) return E.right(false)
  return E.left(invalidConfig(`option ${key}=${shown(v)} must be true or false`))
}

/**
 * `-o routes=<dst>[ via <gw>],…`: static routes inside the containers, answered at Join (on-link
 * without `via`). Read again from the network record at each Join.
 */
export const staticRoutes = (generic: Readonly<Record<string, string>>): E.Either<CoreError, ReadonlyArray<Route>> => {
  const opt = pick(generic, OPT.routes)
  if (opt === undefined) return E.right([])
  const out: Route[] = []
  for (const entry of opt[1]
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '')) {
    const [dst, via, gw, ...rest] = entry.split(/\s+/)
    const d = Subnet.decode(dst)
    const g = gw === undefined ? undefined : IpAddress.decode(gw)
    const wellFormed = rest.length === 0 && (via === undefined ? gw === undefined : via === 'via' && g !== undefined)
    if (E.isLeft(d) || !wellFormed || (g !== undefined && E.isLeft(g))) {
      return E.left(invalidConfig(`option ${opt[0]} entry ${shown(entry)} must be <subnet> or <subnet> via <address>`))
    }
    out.push({ dst: d.right, ...(g === undefined || E.isLeft(g) ? {} : { gw: g.right }) })
  }
  return E.right(out)
}

/** Decode CreateNetwork `Options`. */
export const networkOptions = (options: Options): E.Either<CoreError, NetworkOptions> => {
  const o = options ?? {}
  const parsed = genericOptions(o['com.docker.network.generic'])
  if (E.isLeft(parsed)) return parsed
  const generic = parsed.right

  const bridgeOpt = pick(generic, OPT.bridgeName)
  let bridge: IfName | undefined
  if (bridgeOpt !== undefined) {
    const d = IfName.decode(bridgeOpt[1])
    if (E.isLeft(d)) {
      return E.left(
        invalidConfig(
          `option ${bridgeOpt[0]}=${shown(bridgeOpt[1])} is not a valid interface name (1 to 15 letters, digits, _ . or -, not starting with . or -)`
        )
      )
    }
    bridge = d.right
  }

  const mtuOpt = pick(generic, OPT.mtu)
  let mtu: number | undefined
  if (mtuOpt !== undefined) {
    const n = Number(mtuOpt[1])
    if (!/^\d+$/.test(mtuOpt[1].trim()) || n < 68 || n > 65535) {
      return E.left(invalidConfig(`option ${mtuOpt[0]}=${shown(mtuOpt[1])} must be a whole number from 68 to 65535`))
    }
    mtu = n
  }

  const masqOpt = pick(generic, OPT.masquerade)
  const masq = masqOpt === undefined ? E.right(true) : bool(masqOpt[0], masqOpt[1])
  if (E.isLeft(masq)) return masq

  const prefixOpt = pick(generic, OPT.ifacePrefix)
  const ifacePrefix = prefixOpt?.[1] ?? 'eth'
  if (!/^[a-zA-Z][a-zA-Z0-9_-]{0,9}$/.test(ifacePrefix)) {
    return E.left(
      invalidConfig(
        `option ${OPT.ifacePrefix[0]}=${shown(ifacePrefix)} must be a letter and up to 9 letters, digits, _ or -`
      )
    )
  }

  const spaceOpt = pick(generic, OPT.addressSpace)
  let addressSpace: AddressSpace | undefined
  if (spaceOpt !== undefined) {
    const d = AddressSpace.decode(spaceOpt[1])
    if (E.isLeft(d)) {
      return E.left(
        invalidConfig(
          `option ${spaceOpt[0]}=${shown(spaceOpt[1])} must be an address space name (letters, digits, _ . -)`
        )
      )
    }
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

const PROTOCOLS: Readonly<Record<6 | 17 | 132, PortMapping['protocol']>> = { 6: 'tcp', 17: 'udp', 132: 'sctp' }

/**
 * `com.docker.network.portmap` of CreateEndpoint, already decoded field by field with the request
 * (protocol/NetworkDriver.ts `PortBinding`); here the checks between fields and against the
 * endpoint's address families (`families`, none known: not checked). One entry per port (`-p
 * 8080-8081:80-81` is already expanded). `-P` gives HostPort 0: isthmus then picks the container
 * port itself, since dockerd allocates nothing for a remote driver. A refusal is a DecodeFailure
 * naming the entry's field, so the request is refused before anything is stored.
 */
export const portMappings = (
  options: EndpointOptions,
  families: ReadonlySet<Family> = new Set()
): E.Either<CoreError, ReadonlyArray<PortMapping>> => {
  const list = options?.[PORTMAP_OPTION] ?? []
  const out: PortMapping[] = []
  const refuse = (i: number, field: string, why: string) =>
    E.left(decodeFailure('NetworkDriver.CreateEndpoint request', [`Options.${PORTMAP_OPTION}.${i}.${field}: ${why}`]))
  for (const [i, m] of list.entries()) {
    const hostPort = m.HostPort ?? 0
    const end = m.HostPortEnd ?? 0
    if (end !== 0 && end < hostPort) return refuse(i, 'HostPortEnd', `${end} is below HostPort ${hostPort}`)
    const hostIp = m.HostIP === undefined || m.HostIP === '' ? undefined : m.HostIP
    if (hostIp !== undefined && families.size > 0 && !families.has(familyOf(hostIp))) {
      return refuse(
        i,
        'HostIP',
        `${hostIp} is an IPv${familyOf(hostIp)} address, and the endpoint has none of that family`
      )
    }
    if (m.IP !== undefined && m.IP !== '' && hostIp !== undefined && familyOf(m.IP) !== familyOf(hostIp)) {
      return refuse(i, 'HostIP', `${hostIp} and IP ${m.IP} are of different address families`)
    }
    out.push({
      protocol: PROTOCOLS[m.Proto],
      containerPort: m.Port,
      hostPort: hostPort === 0 ? m.Port : hostPort,
      ...(hostIp === undefined ? {} : { hostIp })
    })
  }
  return E.right(out)
}
