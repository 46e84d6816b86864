/**
 * NetworkDriver: Docker's remote network driver calls, one function each, translated onto the
 * core flows (docs/cnm.md). dockerd moves and renames the interface itself (RuntimeMoves).
 */
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as t from 'io-ts'
import {
  DEFAULT_GLOBAL_SPACE,
  DEFAULT_LOCAL_SPACE,
  bridgeIfName,
  createEndpoint as addEndpoint,
  deleteEndpoint as removeEndpoint,
  deleteNetwork as removeNetwork,
  ensureNetwork,
  familyOf,
  invalidConfig,
  join as joinFlow,
  leave as leaveFlow,
  loadEndpoint,
  loadNetwork,
  overlaps,
  splitCidr,
  type AddressRequest,
  type AddressSpace,
  type CoreError,
  type Env,
  type Network,
  type NetworkId,
  type NetworkSpec,
  type Pool,
  type Route as StaticRoute,
  type SubnetRequest
} from '@isthmus/core'
import { onSharedBridge, sharedCniNetwork, sharedSettings } from './cniNetwork.js'
import { networkOptions, OPT, portMappings, staticRoutes, type NetworkOptions } from './options.js'
import * as Nd from './protocol/NetworkDriver.js'
import { route, type Route } from './router.js'

const empty = (): object => ({})

/**
 * One IPAMData entry as a subnet request; the pool is ours when our IPAM holds that subnet in the
 * network's address space. Docker's IPAMData names only the IPAM's default space, never the one
 * `--ipam-opt address-space` chose, so the network names it too (`-o address-space`); without it,
 * a subnet our IPAM holds only in other spaces is refused rather than taken for the runtime's.
 */
const subnetRequest =
  (family: 4 | 6, pools: ReadonlyArray<Pool>, space: AddressSpace | undefined) =>
  (d: Nd.IPAMData): E.Either<CoreError, SubnetRequest> => {
    const subnet = d.Pool
    const gateway = d.Gateway === undefined ? undefined : splitCidr(d.Gateway).address
    const inSpace = space ?? d.AddressSpace
    const pool = pools.find((p) => p.addressSpace === inSpace && p.subnet === subnet)
    const elsewhere = pools.filter((p) => p.subnet === subnet).map((p) => p.addressSpace)
    if (pool === undefined && OUR_SPACES.has(d.AddressSpace) && elsewhere.length > 0) {
      return E.left(
        invalidConfig(
          `subnet ${subnet} is a pool of address space ${elsewhere.join(', ')}, not ${inSpace}: name the space with -o ${OPT.addressSpace[0]}=<space> as in --ipam-opt`
        )
      )
    }
    return E.right({
      family,
      subnet,
      ...(pool === undefined ? {} : { poolId: pool.id }),
      ...(gateway === undefined ? {} : { gateway })
    })
  }

// The spaces our IPAM driver tells Docker (GetDefaultAddressSpaces): IPAMData in them came from us.
const OUR_SPACES = new Set<string>([DEFAULT_LOCAL_SPACE, DEFAULT_GLOBAL_SPACE])

const addressRequests = (iface: Nd.EndpointInterface | null | undefined): AddressRequest[] =>
  [iface?.Address, iface?.AddressIPv6].flatMap((cidr): AddressRequest[] =>
    cidr === undefined ? [] : [{ _tag: 'Assigned', cidr }]
  )

/**
 * A subnet of another stored network that overlaps one of `subnets`, as an error. Two networks
 * of one address space never overlap: an address is unique in its space, and Docker's identical
 * RequestPool gets the same pool (ref-counted), gateway included. Across spaces, overlap is what
 * address spaces are for, unless the dataplane routes every subnet on the host (Linux bridge: each
 * gateway is an address of the host), where overlapping subnets make the host's routes ambiguous.
 * Docker does not check this for remote drivers: it creates two networks on one subnet (docs/cnm.md).
 */
const overlapWith = (
  id: NetworkId,
  space: AddressSpace,
  subnets: ReadonlyArray<SubnetRequest>,
  networks: ReadonlyArray<Network>,
  routesSubnetsOnHost: boolean
): CoreError | undefined => {
  for (const n of networks) {
    if (n.id === id || (n.addressSpace !== space && !routesSubnetsOnHost)) continue
    for (const theirs of [...n.ipv4, ...n.ipv6]) {
      const mine = subnets.find((r) => r.subnet !== undefined && overlaps(r.subnet, theirs.subnet))
      if (mine?.subnet !== undefined) {
        const why =
          n.addressSpace === space
            ? ''
            : ` (address space ${n.addressSpace}; this dataplane routes every subnet on the host)`
        return invalidConfig(`subnet ${mine.subnet} overlaps ${theirs.subnet} of network ${n.name} on this host${why}`)
      }
    }
  }
  return undefined
}

/**
 * Held while a network's subnets are checked against the others and the network is created, by
 * every process of the host (LockScope `host`); taken before the network's own lock. (Its bridge
 * name is checked by core ensureNetwork, under a lock of its own.)
 */
const SUBNETS_LOCK = 'network-subnets'

/** The address space a network lands in: its pools', else the one it names, else the default. */
const spaceOf = (
  subnets: ReadonlyArray<SubnetRequest>,
  pools: ReadonlyArray<Pool>,
  named: AddressSpace | undefined
): AddressSpace =>
  pools.find((p) => subnets.some((r) => r.poolId === p.id))?.addressSpace ?? named ?? DEFAULT_LOCAL_SPACE

/** The network to create, from the request, its options and the subnets Docker's IPAM chose. */
const networkSpec = (
  id: NetworkId,
  opts: NetworkOptions,
  subnets: ReadonlyArray<SubnetRequest>,
  shared: Network | undefined
): NetworkSpec => ({
  id,
  name: id.slice(0, 12),
  subnets,
  // Docker's IPAM call already chose every address: ours (pool found) or another driver's
  managedAddresses: false,
  internal: opts.internal,
  ipMasquerade: opts.ipMasquerade,
  bridge: opts.bridge ?? bridgeIfName(id),
  options: opts.generic,
  ...(opts.addressSpace === undefined ? {} : { addressSpace: opts.addressSpace }),
  ...(opts.mtu === undefined ? {} : { mtu: opts.mtu }),
  ...(opts.tenant !== undefined && opts.network !== undefined
    ? { controller: { tenant: opts.tenant, network: opts.network } }
    : {}),
  ...(shared === undefined ? {} : sharedSettings(shared))
})

/**
 * The check against the other networks' subnets and the creation as one step under one lock: two
 * creations at the same time would both pass the check before either is stored.
 */
const createChecked = (env: Env, spec: NetworkSpec, space: AddressSpace, shared: Network | undefined) =>
  env.store.withLock(
    SUBNETS_LOCK,
    pipe(
      env.store.networks.list(),
      TE.chain((networks) => {
        const others = networks.filter((n) => !onSharedBridge(shared)(n))
        const clash = overlapWith(spec.id, space, spec.subnets, others, env.dataplane.routesSubnetsOnHost !== false)
        return clash === undefined ? TE.right(undefined) : TE.left(clash)
      }),
      TE.chain(() => ensureNetwork(spec)(env))
    )
  )

/** GetCapabilities: a local-scope driver. */
export const getCapabilities = (): TE.TaskEither<CoreError, Nd.GetCapabilitiesResponse> =>
  TE.right({ Scope: 'local', ConnectivityScope: 'local' })

/** CreateNetwork: the network on the subnets Docker's IPAM chose, with its `-o` options. */
export const createNetwork =
  (env: Env) =>
  (req: Nd.CreateNetworkRequest): TE.TaskEither<CoreError, object> =>
    pipe(
      TE.Do,
      TE.bind('opts', () => TE.fromEither(networkOptions(req.Options))),
      TE.bind('pools', () => env.store.pools.list()),
      TE.bind('subnets', ({ pools, opts }) =>
        TE.fromEither(
          pipe(
            E.traverseArray(subnetRequest(4, pools, opts.addressSpace))(req.IPv4Data ?? []),
            E.chain((v4) =>
              pipe(
                E.traverseArray(subnetRequest(6, pools, opts.addressSpace))(req.IPv6Data ?? []),
                E.map((v6) => [...v4, ...v6])
              )
            )
          )
        )
      ),
      // -o cni-network=<name>: the CNI network's bridge and pool (cniNetwork.ts)
      TE.bind('shared', ({ opts, subnets }) => sharedCniNetwork(env, opts.generic, subnets)),
      TE.chain(({ opts, pools, subnets, shared }) =>
        createChecked(
          env,
          networkSpec(req.NetworkID, opts, subnets, shared),
          spaceOf(subnets, pools, opts.addressSpace),
          shared
        )
      ),
      TE.map(empty)
    )

/** DeleteNetwork: dockerd has deleted its endpoints of the network by now; any still stored lost their teardown. */
export const deleteNetwork =
  (env: Env) =>
  (req: Nd.NetworkRequest): TE.TaskEither<CoreError, object> =>
    pipe(removeNetwork(req.NetworkID, { endpointsGoneOf: 'docker' })(env), TE.map(empty))

/** AllocateNetwork and FreeNetwork: swarm's calls, acknowledged (a local-scope driver has nothing to allocate). */
export const allocateNetwork = (): TE.TaskEither<CoreError, object> => TE.right({ Options: {} })
/** @see allocateNetwork */
export const freeNetwork = (): TE.TaskEither<CoreError, object> => TE.right({})

/** CreateEndpoint: the endpoint on the addresses Docker's IPAM gave it, with its published ports. */
export const createEndpoint =
  (env: Env) =>
  (req: Nd.CreateEndpointRequest): TE.TaskEither<CoreError, Nd.CreateEndpointResponse> => {
    const addresses = addressRequests(req.Interface)
    const mac = req.Interface?.MacAddress
    const families = new Set(addresses.flatMap((a) => (a._tag === 'Assigned' ? [familyOf(a.cidr)] : [])))
    return pipe(
      TE.fromEither(portMappings(req.Options, families)),
      TE.chain((ports) =>
        addEndpoint(req.NetworkID, {
          id: req.EndpointID,
          owner: { kind: 'docker', endpointId: req.EndpointID },
          addresses,
          portMappings: ports,
          ...(mac === undefined ? {} : { mac })
        })(env)
      ),
      // Fill only what dockerd left empty: echoing a field it set fails the call.
      TE.map((ep): Nd.CreateEndpointResponse =>
        mac === undefined && ep.mac !== undefined ? { Interface: { MacAddress: ep.mac } } : {}
      )
    )
  }

/**
 * The keys Docker on Windows reads from EndpointOperInfo: the HNS endpoint it hands to HCS when
 * the container starts, and its MAC (libnetwork's netlabel.MacAddress).
 */
const WINDOWS_OPER_INFO = { hnsId: 'hnsid', mac: 'com.docker.network.endpoint.macaddress' } as const

/**
 * EndpointOperInfo: what dockerd shows in `docker network inspect --verbose`; for an endpoint
 * whose dataplane made a host endpoint of its own (HNS), also the keys Docker on Windows needs.
 */
export const endpointOperInfo =
  (env: Env) =>
  (req: Nd.EndpointRequest): TE.TaskEither<CoreError, Nd.EndpointOperInfoResponse> =>
    pipe(
      loadEndpoint(req.EndpointID)(env),
      TE.map((ep) => ({
        Value: {
          id: ep.id,
          hostInterface: ep.hostIfName,
          ...(ep.mac === undefined ? {} : { macAddress: ep.mac }),
          addresses: ep.addresses.map((a) => a.cidr),
          portMappings: ep.portMappings,
          ...(ep.hostEndpointId === undefined
            ? {}
            : {
                [WINDOWS_OPER_INFO.hnsId]: ep.hostEndpointId,
                ...(ep.mac === undefined ? {} : { [WINDOWS_OPER_INFO.mac]: ep.mac })
              })
        }
      }))
    )

/** DeleteEndpoint: the endpoint and what it holds. */
export const deleteEndpoint =
  (env: Env) =>
  (req: Nd.EndpointRequest): TE.TaskEither<CoreError, object> =>
    pipe(removeEndpoint(req.EndpointID)(env), TE.map(empty))

/** The static routes of a Join reply: RouteType 0 goes via NextHop, 1 is on-link. */
const staticRoutesOf = (routes: ReadonlyArray<StaticRoute>): Partial<Nd.JoinResponse> =>
  routes.length === 0
    ? {}
    : {
        StaticRoutes: routes.map((r): Nd.StaticRoute =>
          r.gw === undefined
            ? { Destination: r.dst, RouteType: 1 }
            : { Destination: r.dst, RouteType: 0, NextHop: r.gw }
        )
      }

/**
 * Join: the endpoint's interface made for dockerd to move into the sandbox and rename
 * (RuntimeMoves). An endpoint with a host endpoint of its own (HNS) has no interface to move:
 * Docker on Windows hands the hnsid of EndpointOperInfo to HCS, which attaches it; the reply then
 * names no interface and turns Docker's gateway service off, as the Contrail Windows driver did
 * (the vRouter is the gateway).
 */
export const join =
  (env: Env) =>
  (req: Nd.JoinRequest): TE.TaskEither<CoreError, Nd.JoinResponse> =>
    pipe(
      TE.Do,
      TE.bind('network', () => loadNetwork(req.NetworkID)(env)),
      TE.bind('dstPrefix', ({ network }) =>
        TE.right(OPT.ifacePrefix.map((k) => network.options[k]).find((v) => v !== undefined) ?? 'eth')
      ),
      TE.bind('routes', ({ network }) => TE.fromEither(staticRoutes(network.options))),
      TE.bind('joined', ({ dstPrefix }) =>
        joinFlow(req.EndpointID, { _tag: 'RuntimeMoves', dstPrefix }, { sandboxKey: req.SandboxKey })(env)
      ),
      TE.map(({ joined, dstPrefix, routes }): Nd.JoinResponse => {
        const attachedByRuntime = joined.endpoint.hostEndpointId !== undefined
        return {
          ...(attachedByRuntime ? {} : { InterfaceName: { SrcName: joined.placed.ifName, DstPrefix: dstPrefix } }),
          ...(joined.gateways.v4 === undefined ? {} : { Gateway: joined.gateways.v4 }),
          ...(joined.gateways.v6 === undefined ? {} : { GatewayIPv6: joined.gateways.v6 }),
          ...staticRoutesOf(routes),
          // an internal network has no way out: no gateway, and no docker_gwbridge either
          ...(joined.network.internal || attachedByRuntime ? { DisableGatewayService: true } : {})
        }
      })
    )

/** Leave: the endpoint out of its sandbox. */
export const leave =
  (env: Env) =>
  (req: Nd.EndpointRequest): TE.TaskEither<CoreError, object> =>
    pipe(leaveFlow(req.EndpointID)(env), TE.map(empty))

/**
 * Program/RevokeExternalConnectivity, DiscoverNew/Delete: acknowledged. Ports are published at Join
 * from the endpoint's portmap (dockerd publishes nothing for a remote driver) and removed at
 * DeleteEndpoint.
 */
export const acknowledge = (): TE.TaskEither<CoreError, object> => TE.right({})

/** The NetworkDriver routes over one Env. */
export const networkRoutes = (env: Env): ReadonlyArray<Route> => [
  route('NetworkDriver', 'GetCapabilities', t.unknown, getCapabilities),
  route('NetworkDriver', 'CreateNetwork', Nd.CreateNetworkRequest, createNetwork(env)),
  route('NetworkDriver', 'DeleteNetwork', Nd.NetworkRequest, deleteNetwork(env)),
  route('NetworkDriver', 'AllocateNetwork', Nd.AllocateNetworkRequest, allocateNetwork),
  route('NetworkDriver', 'FreeNetwork', Nd.FreeNetworkRequest, freeNetwork),
  route('NetworkDriver', 'CreateEndpoint', Nd.CreateEndpointRequest, createEndpoint(env)),
  route('NetworkDriver', 'EndpointOperInfo', Nd.EndpointRequest, endpointOperInfo(env)),
  route('NetworkDriver', 'DeleteEndpoint', Nd.EndpointRequest, deleteEndpoint(env)),
  route('NetworkDriver', 'Join', Nd.JoinRequest, join(env)),
  route('NetworkDriver', 'Leave', Nd.EndpointRequest, leave(env)),
  route('NetworkDriver', 'ProgramExternalConnectivity', Nd.ExternalConnectivityRequest, acknowledge),
  route('NetworkDriver', 'RevokeExternalConnectivity', Nd.ExternalConnectivityRequest, acknowledge),
  route('NetworkDriver', 'DiscoverNew', Nd.DiscoveryRequest, acknowledge),
  route('NetworkDriver', 'DiscoverDelete', Nd.DiscoveryRequest, acknowledge)
]
