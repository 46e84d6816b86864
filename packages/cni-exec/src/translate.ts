/**
 * The translator: pure functions from the CNI records to core requests and from core results
 * back to CNI results, and the one exhaustive mapping of core errors onto CNI codes.
 * No I/O here; the commands run the flows.
 */
import * as E from 'fp-ts/lib/Either.js'
import { absurd, pipe } from 'fp-ts/lib/function.js'
import {
  CLUSTER_OPTION,
  credentialVars,
  boundsOf,
  bridgeIfName,
  contains,
  describe,
  familyOf,
  fromBigInt,
  IpAddress,
  MacAddress,
  networkOf,
  splitCidr,
  type AddressRequest,
  type CoreError,
  type Endpoint,
  type EndpointAddress,
  type Family,
  type IfName,
  type Network,
  type NetworkSpec,
  type PortMapping,
  type Route,
  type SandboxKey,
  type Subnet,
  type SubnetRequest
} from '@isthmus/core'
import { addressOfIpArg, type CniArgs } from './protocol/Args.js'
import type { RawEnv } from './protocol/Env.js'
import { Code, cniError, type CniError } from './protocol/Error.js'
import { isOwnIpamType } from './protocol/IpamType.js'
import { excerpt } from './protocol/Json.js'
import type { IsthmusConf, NetConf, PortMappingConf, RangeConf, RouteConf } from './protocol/NetConf.js'
import type { Interface, IpConfig, Result, ResultRoute } from './protocol/Result.js'
import type { ControllerSettings } from './runtime.js'

// -------------------------------------------------------------------------------------
// errors
// -------------------------------------------------------------------------------------

/**
 * CoreError → CNI error, the one exhaustive mapping (a new core variant fails the build here).
 * `msg` is short and fixed per variant so a runtime can match on it; `details` carries the
 * specifics (never secrets). NotFound is 3 here; DEL treats it as success before it gets this far.
 *
 * @category utils
 */
export const toCniError = (e: CoreError): CniError => {
  const details = describe(e)
  switch (e._tag) {
    case 'DecodeFailure':
      return cniError(Code.Decode, 'decode failure', details)
    case 'InvalidConfig':
      return cniError(Code.InvalidConfig, 'invalid network config', details)
    case 'UnsupportedField':
      // The spec wants the key and value in msg itself.
      return cniError(Code.UnsupportedField, `unsupported field ${e.field}=${JSON.stringify(e.value)}`)
    case 'IncompatibleVersion':
      return cniError(Code.IncompatibleVersion, 'incompatible CNI versions', details)
    case 'NotFound':
      return cniError(Code.UnknownContainer, `${e.kind} not found`, details)
    case 'AlreadyExists':
      return cniError(Code.InvalidConfig, `${e.kind} already exists`, details)
    case 'AddressInUse':
      return cniError(Code.AddressInUse, 'requested address is in use', details)
    case 'PoolOverlap':
      return cniError(Code.InvalidConfig, 'subnet overlaps another network', details)
    case 'PoolExhausted':
      return cniError(Code.PoolExhausted, 'no IP addresses available', details)
    case 'InvalidNetns':
      return cniError(Code.InvalidNetns, 'invalid network namespace', details)
    case 'Io':
      return cniError(Code.Io, 'I/O failure', details)
    case 'Transient':
      return cniError(Code.TryAgainLater, 'try again later', details)
    case 'Dataplane':
      return cniError(Code.Dataplane, 'host networking command failed', details)
    case 'Controller':
      return cniError(
        e.status === 0 || e.status >= 500 ? Code.TryAgainLater : Code.Controller,
        'network controller error',
        details
      )
    case 'Agent':
      return cniError(
        e.status === 0 || e.status >= 500 ? Code.TryAgainLater : Code.Controller,
        'forwarding agent error',
        details
      )
    case 'Unavailable':
      return cniError(
        e.limitedConnectivity ? Code.UnavailableLimited : Code.Unavailable,
        'plugin not available',
        details
      )
    default:
      return absurd(e)
  }
}

const invalid = (msg: string, details?: string): CniError => cniError(Code.InvalidConfig, msg, details)

// -------------------------------------------------------------------------------------
// the network
// -------------------------------------------------------------------------------------

/** Which IPAM allocates: isthmus's own, or a plugin in CNI_PATH. @category model */
export type IpamMode = { readonly _tag: 'Builtin' } | { readonly _tag: 'Delegated'; readonly plugin: string }

/** `ipam.type` absent or one of our own names: the built-in IPAM. @category utils */
export const ipamModeOf = (conf: IsthmusConf, selfNames: ReadonlyArray<string>): IpamMode => {
  const type = conf.ipam?.type
  return type === undefined || isOwnIpamType(type, selfNames)
    ? { _tag: 'Builtin' }
    : { _tag: 'Delegated', plugin: type }
}

/**
 * Whether this call is isthmus acting as the IPAM plugin of another plugin (`"type": "bridge",
 * "ipam": {"type": "isthmus"}`): the delegating plugin passes its whole netconf, so the outer
 * `type` names someone else while `ipam.type` names us.
 *
 * @category utils
 */
export const isIpamCall = (conf: IsthmusConf, selfNames: ReadonlyArray<string>): boolean =>
  conf.type !== undefined &&
  !selfNames.includes(conf.type) &&
  conf.ipam?.type !== undefined &&
  selfNames.includes(conf.ipam.type)

const lastUsable = (s: Subnet): IpAddress => {
  const b = boundsOf(s)
  // IPv4 leaves the broadcast address out (host-local's default rangeEnd).
  return fromBigInt(b.family === 4 ? b.last - 1n : b.last, b.family)
}
const firstUsable = (s: Subnet): IpAddress => {
  const b = boundsOf(s)
  return fromBigInt(b.first + 1n, b.family)
}

/** The family of a range set; every range of a set must be of one family. */
const familyOfSet = (set: ReadonlyArray<RangeConf>, i: number): E.Either<CniError, Family> => {
  const first = set[0]
  if (first === undefined) {
    return E.left(invalid('invalid network config', `ipam.ranges.${i}: a range set needs at least one range`))
  }
  const f = familyOf(first.subnet)
  return set.every((r) => familyOf(r.subnet) === f)
    ? E.right(f)
    : E.left(invalid('invalid network config', `ipam.ranges.${i}: a range set mixes IPv4 and IPv6`))
}

/**
 * The subnets the built-in IPAM makes pools of: one SubnetRequest per subnet of a range set,
 * with the ranges named by rangeStart/rangeEnd (the whole subnet when a range names neither).
 * At most one range set per family: core hands out one address per family.
 *
 * @category utils
 */
export const subnetRequestsOf = (conf: IsthmusConf): E.Either<CniError, ReadonlyArray<SubnetRequest>> => {
  const sets = conf.ipam?.ranges ?? []
  if (sets.length === 0) return E.left(invalid('invalid network config', 'ipam.ranges: no IP ranges specified'))
  const seen = new Set<Family>()
  const out: SubnetRequest[] = []
  for (const [i, set] of sets.entries()) {
    const f = familyOfSet(set, i)
    if (E.isLeft(f)) return f
    if (seen.has(f.right)) {
      return E.left(
        cniError(
          Code.UnsupportedField,
          `unsupported field ipam.ranges=${excerpt(sets, 200)}`,
          `more than one IPv${f.right} range set`
        )
      )
    }
    seen.add(f.right)
    const bySubnet = new Map<
      Subnet,
      { whole: boolean; ranges: Array<{ start: IpAddress; end: IpAddress }>; gateway?: IpAddress }
    >()
    for (const r of set) {
      const entry = bySubnet.get(r.subnet) ?? { whole: false, ranges: [] }
      if (r.rangeStart === undefined && r.rangeEnd === undefined) entry.whole = true
      else entry.ranges.push({ start: r.rangeStart ?? firstUsable(r.subnet), end: r.rangeEnd ?? lastUsable(r.subnet) })
      if (entry.gateway === undefined && r.gateway !== undefined) entry.gateway = r.gateway
      bySubnet.set(r.subnet, entry)
      for (const a of [r.rangeStart, r.rangeEnd, r.gateway]) {
        if (a !== undefined && !contains(r.subnet, a)) {
          return E.left(invalid('invalid network config', `ipam.ranges.${i}: ${a} is not in ${r.subnet}`))
        }
      }
    }
    for (const [subnet, e] of bySubnet) {
      const excluded = (conf.ipam?.exclude ?? []).filter((a) => contains(subnet, a))
      out.push({
        family: f.right,
        subnet,
        ...(e.whole ? {} : { ranges: e.ranges }),
        ...(e.gateway === undefined ? {} : { gateway: e.gateway }),
        ...(excluded.length === 0 ? {} : { excluded })
      })
    }
  }
  return E.right(out)
}

/**
 * A cluster netconf (`cluster`, docs/multi-host.md) is served by the built-in IPAM inside this
 * host's blocks of the cluster network: a controller, another IPAM plugin or Docker's addressing
 * would hand out addresses the cluster does not know of, so those combinations are refused.
 *
 * @category utils
 */
export const clusterConflict = (conf: IsthmusConf, selfNames: ReadonlyArray<string>): CniError | undefined => {
  if (conf.cluster === undefined) return undefined
  const others = [
    ...(conf.contrail === undefined ? [] : ['contrail']),
    ...(conf.dockerConnect === undefined ? [] : ['dockerConnect']),
    ...(conf.dockerNetwork === undefined ? [] : ['dockerNetwork (name the cluster on the Docker network instead)']),
    ...(ipamModeOf(conf, selfNames)._tag === 'Delegated' || isIpamCall(conf, selfNames) ? ['another IPAM plugin'] : [])
  ]
  return others.length === 0
    ? undefined
    : invalid(
        'invalid network config',
        `cluster: the cluster network's addresses come from isthmus's own IPAM; remove ${others.join(' and ')}`
      )
}

/**
 * The subnets of a netconf's network: its `ipam.ranges`; a cluster netconf may name none, and then
 * takes the cluster network's subnet (one IPv4 subnet, picked by the control plane).
 */
const subnetsOf = (conf: IsthmusConf): E.Either<CniError, ReadonlyArray<SubnetRequest>> =>
  conf.cluster !== undefined && (conf.ipam?.ranges ?? []).length === 0
    ? E.right([{ family: 4 }])
    : subnetRequestsOf(conf)

/** The common part of a network spec: id and name = netconf name, bridge, MTU, masquerade, cluster. */
const baseSpec = (nc: NetConf): Omit<NetworkSpec, 'subnets' | 'managedAddresses'> => ({
  id: nc.name,
  name: nc.name,
  bridge: nc.conf.bridge ?? bridgeIfName(nc.name),
  internal: false,
  ipMasquerade: nc.conf.ipMasq ?? false,
  options: { 'cni.type': 'isthmus', ...(nc.conf.cluster === undefined ? {} : { [CLUSTER_OPTION]: nc.conf.cluster }) },
  ...(nc.conf.mtu === undefined ? {} : { mtu: nc.conf.mtu })
})

/**
 * The network of isthmus as an IPAM plugin: pools only; the calling plugin owns the bridge.
 *
 * @category utils
 */
export const toIpamNetworkSpec = (nc: NetConf): E.Either<CniError, NetworkSpec> => {
  const { bridge: _bridge, ...base } = baseSpec(nc)
  return pipe(
    subnetRequestsOf(nc.conf),
    E.map((subnets): NetworkSpec => ({
      ...base,
      options: { 'cni.type': 'isthmus-ipam' },
      subnets,
      managedAddresses: true
    }))
  )
}

/**
 * The network of a netconf whose addresses isthmus's IPAM assigns. `isGateway: false` is refused:
 * the Linux dataplane always puts the gateway address on the bridge.
 *
 * @category utils
 */
export const toNetworkSpec = (nc: NetConf): E.Either<CniError, NetworkSpec> => {
  if (nc.conf.isGateway === false) return E.left(cniError(Code.UnsupportedField, 'unsupported field isGateway=false'))
  return pipe(
    subnetsOf(nc.conf),
    E.map((subnets): NetworkSpec => ({ ...baseSpec(nc), subnets, managedAddresses: true }))
  )
}

/**
 * The network of a netconf whose addresses a delegated IPAM plugin assigns: the subnets of
 * host-local-style `ranges` when given (stable across containers), else those of the addresses
 * it answered; the gateways are the ones it answered.
 *
 * @category utils
 */
export const toDelegatedNetworkSpec = (nc: NetConf, ipam: Result): E.Either<CniError, NetworkSpec> => {
  if (nc.conf.isGateway === false) return E.left(cniError(Code.UnsupportedField, 'unsupported field isGateway=false'))
  const answered = (ipam.ips ?? []).flatMap((ip) => {
    const a = addressOfIpArg(ip.address)
    const prefix = ip.address.split('/')[1]
    if (a === undefined || prefix === undefined) return []
    const subnet = networkOf(`${a}/${prefix}` as Parameters<typeof networkOf>[0])
    const gw = ip.gateway === undefined ? undefined : addressOfIpArg(ip.gateway)
    return [{ subnet, gateway: gw }]
  })
  const fromRanges = (nc.conf.ipam?.ranges ?? []).flat().map((r) => r.subnet)
  const subnets = fromRanges.length > 0 ? [...new Set(fromRanges)] : [...new Set(answered.map((a) => a.subnet))]
  return E.right({
    ...baseSpec(nc),
    managedAddresses: false,
    subnets: subnets.map((subnet): SubnetRequest => {
      const gw =
        answered.find((a) => a.subnet === subnet)?.gateway ??
        (nc.conf.ipam?.ranges ?? []).flat().find((r) => r.subnet === subnet)?.gateway ??
        firstUsable(subnet)
      return { family: familyOf(subnet), subnet, gateway: gw }
    })
  })
}

// -------------------------------------------------------------------------------------
// a network that names a controller (netconf `contrail`)
// -------------------------------------------------------------------------------------

/**
 * How to reach the controller: the `contrail` section, with only the `OS_*` credential
 * variables of the plugin's environment (runtimes pass theirs on: libcni execs plugins with its
 * own environment plus the CNI_* variables). Undefined without a `contrail` section.
 *
 * @category utils
 */
export const controllerSettingsOf = (conf: IsthmusConf, env: RawEnv): ControllerSettings | undefined => {
  const c = conf.contrail
  if (c === undefined) return undefined
  const k = c.keystone
  return {
    api: c.api,
    ...(c.agent === undefined ? {} : { agent: c.agent }),
    ...(c.domain === undefined ? {} : { domain: c.domain }),
    ...(c.owner === undefined ? {} : { owner: c.owner }),
    ...(c.timeoutMs === undefined ? {} : { timeoutMs: c.timeoutMs }),
    ...(c.retries === undefined ? {} : { retries: c.retries }),
    ...(k === undefined
      ? {}
      : {
          keystone: {
            url: k.url,
            version: k.version ?? 'v3',
            ...(k.credentialsFile === undefined ? {} : { credentialsFile: k.credentialsFile }),
            vars: credentialVars(env)
          }
        })
  }
}

/**
 * The network of a netconf with a `contrail` section: the virtual network
 * `<domain>:<tenant>:<network>` and one of its subnets (`contrail.subnet`, or its only one). The
 * controller assigns addresses, so host-local-style `ipam.ranges`, `ipam.exclude` and a
 * delegated IPAM are refused rather than ignored; `ipam.routes` still say what the sandbox
 * routes. IPv4 only, as the Contrail control plane is.
 *
 * @category utils
 */
export const toContrailNetworkSpec = (
  nc: NetConf,
  selfNames: ReadonlyArray<string>
): E.Either<CniError, NetworkSpec> => {
  const c = nc.conf.contrail
  if (c === undefined) return E.left(invalid('invalid network config', 'no contrail section'))
  if (nc.conf.isGateway === false) return E.left(cniError(Code.UnsupportedField, 'unsupported field isGateway=false'))
  const ipam = nc.conf.ipam
  if (ipamModeOf(nc.conf, selfNames)._tag === 'Delegated') {
    return E.left(
      invalid(
        'invalid network config',
        `contrail: the controller assigns the addresses, so ipam.type ${JSON.stringify(excerpt(ipam?.type))} cannot`
      )
    )
  }
  const unused = (['ranges', 'exclude'] as const).filter((k) => ipam?.[k] !== undefined)
  if (unused.length > 0) {
    return E.left(
      invalid(
        'invalid network config',
        `contrail: the controller assigns the addresses; remove ${unused.map((k) => `ipam.${k}`).join(' and ')} (name a subnet with contrail.subnet)`
      )
    )
  }
  return E.right({
    ...baseSpec(nc),
    // The controller picks the virtual network's only subnet when none is named.
    subnets: [c.subnet === undefined ? { family: 4 } : { family: 4, subnet: c.subnet }],
    managedAddresses: true,
    controller: { tenant: c.tenant, network: c.network }
  })
}

/** One IPv4 address from the controller: the requested one, else any. @category utils */
export const contrailAddressRequests = (
  requested: ReadonlyArray<IpAddress>
): E.Either<CniError, ReadonlyArray<AddressRequest>> => {
  if (requested.some((a) => familyOf(a) !== 4)) {
    return E.left(invalid('invalid network config', 'contrail: Contrail networks are IPv4 only'))
  }
  if (requested.length > 1) return E.left(invalid('invalid network config', 'contrail: one address per attachment'))
  const a = requested[0]
  return E.right([a === undefined ? { _tag: 'Any', family: 4 } : { _tag: 'Static', address: a }])
}

const bindingText = (c: { readonly tenant: string; readonly network: string } | undefined): string =>
  c === undefined ? 'no controller' : `Contrail ${c.tenant}:${c.network}`

/**
 * A stored network answers a netconf only when both name the same controller binding (or
 * none): one name, one network, as for subnets; otherwise ADD would use what the store says
 * while the netconf says otherwise.
 *
 * @category utils
 */
export const controllerMismatch = (spec: NetworkSpec, network: Network): CniError | undefined =>
  bindingText(spec.controller) === bindingText(network.controller)
    ? undefined
    : invalid(
        'network exists with another controller binding',
        `network ${network.name} is stored with ${bindingText(network.controller)}, the netconf names ${bindingText(spec.controller)}; use a new name`
      )

// -------------------------------------------------------------------------------------
// the endpoint
// -------------------------------------------------------------------------------------

/**
 * Requested addresses, by the convention's priority: `runtimeConfig.ips` (capability), then
 * `args.cni.ips`, then CNI_ARGS `IP`
 * (https://github.com/containernetworking/cni/blob/main/CONVENTIONS.md: args win over CNI_ARGS).
 *
 * @category utils
 */
export const requestedIps = (conf: IsthmusConf, args: CniArgs): E.Either<CniError, ReadonlyArray<IpAddress>> => {
  const lists: ReadonlyArray<ReadonlyArray<string>> = [
    conf.runtimeConfig?.ips ?? [],
    conf.args?.cni?.ips ?? [],
    args.ips
  ]
  const chosen = lists.find((l) => l.length > 0) ?? []
  const out: IpAddress[] = []
  for (const s of chosen) {
    const a = addressOfIpArg(s)
    if (a === undefined) {
      return E.left(
        invalid('invalid network config', `requested IP ${JSON.stringify(excerpt(s))} is not an IP address`)
      )
    }
    out.push(a)
  }
  return E.right(out)
}

/**
 * One address request per range set's family: the requested address of that family, else any.
 *
 * @category utils
 */
export const addressRequestsOf = (
  subnets: ReadonlyArray<SubnetRequest>,
  requested: ReadonlyArray<IpAddress>
): E.Either<CniError, ReadonlyArray<AddressRequest>> => {
  const families = [...new Set(subnets.map((s) => s.family))]
  for (const a of requested) {
    if (!subnets.some((s) => s.subnet !== undefined && contains(s.subnet, a))) {
      return E.left(invalid('invalid network config', `requested IP ${a} is in no range of this network`))
    }
  }
  for (const f of families) {
    if (requested.filter((a) => familyOf(a) === f).length > 1) {
      return E.left(invalid('invalid network config', `more than one IPv${f} address requested; one per range set`))
    }
  }
  return E.right(
    families.map((f): AddressRequest => {
      const a = requested.find((x) => familyOf(x) === f)
      return a === undefined ? { _tag: 'Any', family: f } : { _tag: 'Static', address: a }
    })
  )
}

/**
 * The sandbox MAC: `runtimeConfig.mac`, then `args.cni.mac`, then CNI_ARGS `MAC` (the reference bridge
 * plugin's order).
 *
 * @category utils
 */
export const requestedMac = (conf: IsthmusConf, args: CniArgs): E.Either<CniError, MacAddress | undefined> => {
  const given = conf.runtimeConfig?.mac ?? conf.args?.cni?.mac
  if (given === undefined) return E.right(args.mac)
  return pipe(
    MacAddress.decode(given),
    E.mapLeft(() =>
      invalid('invalid network config', `requested MAC ${JSON.stringify(excerpt(given))} is not a MAC address`)
    )
  )
}

/** `runtimeConfig.portMappings` as core port mappings (protocol defaults to tcp). @category utils */
export const portMappingsOf = (conf: IsthmusConf): E.Either<CniError, ReadonlyArray<PortMapping>> =>
  E.traverseArray(portMappingOf)(conf.runtimeConfig?.portMappings ?? [])

const portMappingOf = (p: PortMappingConf): E.Either<CniError, PortMapping> => {
  const mapping = { protocol: p.protocol ?? 'tcp', containerPort: p.containerPort, hostPort: p.hostPort }
  if (p.hostIP === undefined || p.hostIP === '') return E.right(mapping)
  const bad = `portMappings: hostIP ${JSON.stringify(excerpt(p.hostIP))} is not an IP address`
  return pipe(
    IpAddress.decode(p.hostIP),
    E.bimap(
      () => invalid('invalid network config', bad),
      (hostIp): PortMapping => ({ ...mapping, hostIp })
    )
  )
}

const gatewayOfFamily = (network: Network, f: Family): IpAddress | undefined =>
  (f === 4 ? network.ipv4 : network.ipv6).find((s) => s.gateway !== undefined)?.gateway

/**
 * The sandbox's routes. `ipam.routes` as given (a route without `gw` goes via the gateway of its
 * family, as the reference installs it), plus a default route per family with
 * `isDefaultGateway`. Neither given: a default route per family marked `ifNone`, which the
 * dataplane installs only in a sandbox without one (a second attachment, `net1`, keeps eth0's).
 *
 * @category utils
 */
export const routesOf = (
  conf: IsthmusConf,
  network: Network,
  given: ReadonlyArray<RouteConf | ResultRoute> | undefined = conf.ipam?.routes
): ReadonlyArray<Route> | undefined => {
  if (given === undefined && conf.isDefaultGateway === undefined) {
    return ([4, 6] as const).flatMap((f): Route[] => {
      const gw = gatewayOfFamily(network, f)
      return gw === undefined ? [] : [{ dst: (f === 4 ? '0.0.0.0/0' : '::/0') as Subnet, gw, ifNone: true }]
    })
  }
  const routes: Route[] = []
  for (const r of given ?? []) {
    const dst = networkOf(r.dst as Parameters<typeof networkOf>[0])
    const gw = r.gw === undefined ? gatewayOfFamily(network, familyOf(dst)) : (addressOfIpArg(r.gw) ?? undefined)
    routes.push({ dst, ...(gw === undefined ? {} : { gw }) })
  }
  if (conf.isDefaultGateway === true) {
    for (const f of [4, 6] as const) {
      const gw = gatewayOfFamily(network, f)
      const dst = (f === 4 ? '0.0.0.0/0' : '::/0') as Subnet
      if (
        gw !== undefined &&
        (f === 4 ? network.ipv4 : network.ipv6).length > 0 &&
        !routes.some((r) => r.dst === dst)
      ) {
        routes.push({ dst, gw })
      }
    }
  }
  return routes
}

// -------------------------------------------------------------------------------------
// results
// -------------------------------------------------------------------------------------

const gatewayOfAddress = (network: Network, a: EndpointAddress): IpAddress | undefined => {
  if (a.gateway !== undefined) return a.gateway
  const ip = splitCidr(a.cidr).address
  return [...network.ipv4, ...network.ipv6].find((s) => contains(s.subnet, ip))?.gateway
}

/** The MACs of the host-side links, when the result can name them. @category model */
export interface HostMacs {
  readonly bridge?: string
  readonly hostVeth?: string
}

/**
 * The ADD result (CNI SPEC §Result): interfaces bridge, host veth, sandbox interface (with its
 * MAC and sandbox path); each address with the sandbox interface's index and its gateway; the
 * endpoint's routes; the netconf's DNS.
 *
 * @category utils
 */
export const toCniResult = (
  conf: IsthmusConf,
  network: Network,
  endpoint: Endpoint,
  sandbox: { readonly netns: SandboxKey; readonly ifName: IfName; readonly mac: string },
  macs: HostMacs
): Result => {
  const withMac = (name: string, mac: string | undefined): Interface => (mac === undefined ? { name } : { name, mac })
  const interfaces: Interface[] = [
    withMac(network.bridge ?? '', macs.bridge),
    withMac(endpoint.hostIfName, macs.hostVeth),
    { name: sandbox.ifName, mac: sandbox.mac, sandbox: sandbox.netns }
  ]
  const ips = endpoint.addresses.map((a): IpConfig => {
    const gw = gatewayOfAddress(network, a)
    return { address: a.cidr, ...(gw === undefined ? {} : { gateway: gw }), interface: 2 }
  })
  return { interfaces, ips, routes: routesToCni(endpoint.routes), dns: { ...(conf.dns ?? {}) } }
}

/** The IPAM-only result (no interfaces): addresses with gateways, routes, DNS. @category utils */
export const toIpamResult = (conf: IsthmusConf, network: Network, endpoint: Endpoint): Result => ({
  ips: endpoint.addresses.map((a): IpConfig => {
    const gw = gatewayOfAddress(network, a)
    return { address: a.cidr, ...(gw === undefined ? {} : { gateway: gw }) }
  }),
  routes: routesToCni(endpoint.routes),
  dns: { ...(conf.dns ?? {}) }
})

const routesToCni = (routes: ReadonlyArray<Route>): ReadonlyArray<ResultRoute> =>
  routes.map((r) => ({ dst: r.dst, ...(r.gw === undefined ? {} : { gw: r.gw }) }))
