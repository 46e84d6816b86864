/**
 * NetworkDriver: Docker's remote network driver calls translated onto the core flows
 * (cnm-protocol.md §3). dockerd moves and renames the interface itself (RuntimeMoves).
 */
import * as A from 'fp-ts/lib/Array.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as t from 'io-ts'
import {
  Cidr,
  DEFAULT_GLOBAL_SPACE,
  DEFAULT_LOCAL_SPACE,
  EndpointId,
  IpAddress,
  MacAddress,
  NetworkId,
  SandboxKey,
  Subnet,
  bridgeIfName,
  createEndpoint,
  decodeWith,
  deleteEndpoint,
  deleteNetwork,
  ensureNetwork,
  familyOf,
  invalidConfig,
  join,
  leave,
  loadEndpoint,
  loadNetwork,
  overlaps,
  splitCidr,
  type AddressRequest,
  type AddressSpace,
  type CoreError,
  type Env,
  type Flow,
  type Network,
  type NetworkSpec,
  type Pool,
  type SubnetRequest
} from '@isthmus/core'
import { onSharedBridge, sharedCniNetwork, sharedSettings } from './cniNetwork.js'
import { networkOptions, OPT, portMappings, staticRoutes } from './options.js'
import * as Nd from './protocol/NetworkDriver.js'
import { route, type Route } from './router.js'

const decode = <A>(codec: t.Type<A, unknown, unknown>, what: string) => (u: unknown) =>
  TE.fromEither(decodeWith(codec, what)(u))

const empty = (): object => ({})

/**
 * One IPAMData entry as a subnet request; the pool is ours when our IPAM holds that subnet in the
 * network's address space. Docker's IPAMData names only the IPAM's default space, never the one
 * `--ipam-opt address-space` chose, so the network names it too (`-o address-space`); without it,
 * a subnet our IPAM holds only in other spaces is refused rather than taken for the runtime's.
 */
const subnetRequest =
  (family: 4 | 6, pools: ReadonlyArray<Pool>, space: AddressSpace | undefined) =>
  (d: Nd.IPAMData): TE.TaskEither<CoreError, SubnetRequest> =>
    pipe(
      TE.Do,
      TE.bind('subnet', () => decode(Subnet, `IPv${family}Data.Pool`)(d.Pool)),
      TE.bind('gateway', () =>
        d.Gateway === undefined || d.Gateway === ''
          ? TE.right(undefined)
          : pipe(
              decode(Cidr, `IPv${family}Data.Gateway`)(d.Gateway),
              TE.map((c): IpAddress | undefined => splitCidr(c).address)
            )
      ),
      TE.chain(({ subnet, gateway }) => {
        const inSpace = space ?? d.AddressSpace
        const pool = pools.find((p) => p.addressSpace === inSpace && p.subnet === subnet)
        const elsewhere = pools.filter((p) => p.subnet === subnet).map((p) => p.addressSpace)
        if (pool === undefined && OUR_SPACES.has(d.AddressSpace) && elsewhere.length > 0) {
          return TE.left(
            invalidConfig(
              `subnet ${subnet} is a pool of address space ${elsewhere.join(', ')}, not ${inSpace}: name the space with -o ${OPT.addressSpace[0]}=<space> as in --ipam-opt`
            )
          )
        }
        return TE.right({
          family,
          subnet,
          ...(pool === undefined ? {} : { poolId: pool.id }),
          ...(gateway === undefined ? {} : { gateway })
        })
      })
    )

// The spaces our IPAM driver tells Docker (GetDefaultAddressSpaces): IPAMData in them came from us.
const OUR_SPACES = new Set<string>([DEFAULT_LOCAL_SPACE, DEFAULT_GLOBAL_SPACE])

const addressRequests = (iface: Nd.EndpointInterface | null | undefined): TE.TaskEither<CoreError, AddressRequest[]> =>
  pipe(
    [iface?.Address, iface?.AddressIPv6].filter((a): a is string => a !== undefined && a !== ''),
    A.traverse(TE.ApplicativeSeq)((a) =>
      pipe(
        decode(Cidr, 'Interface.Address')(a),
        TE.map((cidr): AddressRequest => ({ _tag: 'Assigned', cidr }))
      )
    )
  )

/**
 * A subnet of another stored network that overlaps one of `subnets`, as an error. Two networks
 * of one address space never overlap: an address is unique in its space, and Docker's identical
 * RequestPool gets the same pool (ref-counted), gateway included. Across spaces, overlap is what
 * address spaces are for, unless the dataplane routes every subnet on the host (Linux bridge: each
 * gateway is an address of the host), where overlapping subnets make the host's routes ambiguous.
 * Docker does not check this for remote drivers (cnm-protocol.md §4: two networks on one subnet).
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
        const why = n.addressSpace === space ? '' : ` (address space ${n.addressSpace}; this dataplane routes every subnet on the host)`
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
const spaceOf = (subnets: ReadonlyArray<SubnetRequest>, pools: ReadonlyArray<Pool>, named: AddressSpace | undefined): AddressSpace =>
  pools.find((p) => subnets.some((r) => r.poolId === p.id))?.addressSpace ?? named ?? DEFAULT_LOCAL_SPACE

/** The NetworkDriver routes over one Env. */
export const networkRoutes = (env: Env): ReadonlyArray<Route> => {
  const flow = <A>(f: Flow<A>): TE.TaskEither<CoreError, A> => f(env)
  return [
    route('NetworkDriver', 'GetCapabilities', t.unknown, () =>
      TE.right<CoreError, Nd.GetCapabilitiesResponse>({ Scope: 'local', ConnectivityScope: 'local' })
    ),

    route('NetworkDriver', 'CreateNetwork', Nd.CreateNetworkRequest, (req) =>
      pipe(
        TE.Do,
        TE.bind('id', () => decode(NetworkId, 'NetworkID')(req.NetworkID)),
        TE.bind('opts', () => TE.fromEither(networkOptions(req.Options))),
        TE.bind('pools', () => env.store.pools.list()),
        TE.bind('v4', ({ pools, opts }) =>
          A.traverse(TE.ApplicativeSeq)(subnetRequest(4, pools, opts.addressSpace))(req.IPv4Data ?? [])
        ),
        TE.bind('v6', ({ pools, opts }) =>
          A.traverse(TE.ApplicativeSeq)(subnetRequest(6, pools, opts.addressSpace))(req.IPv6Data ?? [])
        ),
        // -o cni-network=<name>: the CNI network's bridge and pool (cniNetwork.ts)
        TE.bind('shared', ({ opts, v4, v6 }) => sharedCniNetwork(env, opts.generic, [...v4, ...v6])),
        // The check against the other networks' subnets and the creation as one step
        // under one lock: two creations at the same time would both pass them before either is stored.
        TE.chain(({ id, opts, pools, v4, v6, shared }) => {
          const spec: NetworkSpec = {
            id,
            name: id.slice(0, 12),
            subnets: [...v4, ...v6],
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
          }
          const noOverlap = pipe(
            env.store.networks.list(),
            TE.chain((networks) => {
              const space = spaceOf(spec.subnets, pools, opts.addressSpace)
              const others = networks.filter((n) => !onSharedBridge(shared)(n))
              const clash = overlapWith(id, space, spec.subnets, others, env.dataplane.routesSubnetsOnHost !== false)
              return clash === undefined ? TE.right(undefined) : TE.left(clash)
            })
          )
          return env.store.withLock(SUBNETS_LOCK, pipe(noOverlap, TE.chain(() => flow(ensureNetwork(spec)))))
        }),
        TE.map(empty)
      )
    ),

    route('NetworkDriver', 'DeleteNetwork', Nd.NetworkRequest, (req) =>
      pipe(
        decode(NetworkId, 'NetworkID')(req.NetworkID),
        // dockerd has deleted its endpoints of the network by now: any still stored lost their teardown
        TE.chain((id) => flow(deleteNetwork(id, { endpointsGoneOf: 'docker' }))),
        TE.map(empty)
      )
    ),

    route('NetworkDriver', 'AllocateNetwork', Nd.AllocateNetworkRequest, () => TE.right({ Options: {} })),
    route('NetworkDriver', 'FreeNetwork', Nd.NetworkRequest, () => TE.right({})),

    route('NetworkDriver', 'CreateEndpoint', Nd.CreateEndpointRequest, (req) =>
      pipe(
        TE.Do,
        TE.bind('networkId', () => decode(NetworkId, 'NetworkID')(req.NetworkID)),
        TE.bind('id', () => decode(EndpointId, 'EndpointID')(req.EndpointID)),
        TE.bind('addresses', () => addressRequests(req.Interface)),
        TE.bind('mac', () => {
          const m = req.Interface?.MacAddress
          return m === undefined || m === ''
            ? TE.right(undefined)
            : pipe(decode(MacAddress, 'Interface.MacAddress')(m), TE.map((x): MacAddress | undefined => x))
        }),
        TE.bind('ports', ({ addresses }) =>
          TE.fromEither(portMappings(req.Options, new Set(addresses.flatMap((a) => (a._tag === 'Assigned' ? [familyOf(a.cidr)] : [])))))
        ),
        TE.chain(({ networkId, id, addresses, mac, ports }) =>
          flow(
            createEndpoint(networkId, {
              id,
              owner: { kind: 'docker', endpointId: id },
              addresses,
              portMappings: ports,
              ...(mac === undefined ? {} : { mac })
            })
          )
        ),
        // Fill only what dockerd left empty: echoing a field it set fails the call (§3.1).
        TE.map((ep): Nd.CreateEndpointResponse =>
          (req.Interface?.MacAddress ?? '') === '' && ep.mac !== undefined ? { Interface: { MacAddress: ep.mac } } : {}
        )
      )
    ),

    route('NetworkDriver', 'EndpointOperInfo', Nd.EndpointRequest, (req) =>
      pipe(
        decode(EndpointId, 'EndpointID')(req.EndpointID),
        TE.chain((id) => flow(loadEndpoint(id))),
        TE.map(
          (ep): Nd.EndpointOperInfoResponse => ({
            Value: {
              id: ep.id,
              hostInterface: ep.hostIfName,
              ...(ep.mac === undefined ? {} : { macAddress: ep.mac }),
              addresses: ep.addresses.map((a) => a.cidr),
              portMappings: ep.portMappings
            }
          })
        )
      )
    ),

    route('NetworkDriver', 'DeleteEndpoint', Nd.EndpointRequest, (req) =>
      pipe(decode(EndpointId, 'EndpointID')(req.EndpointID), TE.chain((id) => flow(deleteEndpoint(id))), TE.map(empty))
    ),

    route('NetworkDriver', 'Join', Nd.JoinRequest, (req) =>
      pipe(
        TE.Do,
        TE.bind('id', () => decode(EndpointId, 'EndpointID')(req.EndpointID)),
        TE.bind('sandboxKey', () => decode(SandboxKey, 'SandboxKey')(req.SandboxKey)),
        TE.bind('network', () => pipe(decode(NetworkId, 'NetworkID')(req.NetworkID), TE.chain((n) => flow(loadNetwork(n))))),
        TE.bind('dstPrefix', ({ network }) =>
          TE.right(OPT.ifacePrefix.map((k) => network.options[k]).find((v) => v !== undefined) ?? 'eth')
        ),
        TE.bind('routes', ({ network }) => TE.fromEither(staticRoutes(network.options))),
        TE.bind('joined', ({ id, sandboxKey, dstPrefix }) =>
          flow(join(id, { _tag: 'RuntimeMoves', dstPrefix }, { sandboxKey }))
        ),
        TE.map(({ joined, dstPrefix, routes }): Nd.JoinResponse => {
          const { gateways, network } = joined
          return {
            InterfaceName: { SrcName: joined.placed.ifName, DstPrefix: dstPrefix },
            ...(gateways.v4 === undefined ? {} : { Gateway: gateways.v4 }),
            ...(gateways.v6 === undefined ? {} : { GatewayIPv6: gateways.v6 }),
            // -o routes: RouteType 0 goes via NextHop, 1 is on-link (cnm-protocol.md §3.2)
            ...(routes.length === 0
              ? {}
              : {
                  StaticRoutes: routes.map((r): Nd.StaticRoute =>
                    r.gw === undefined
                      ? { Destination: r.dst, RouteType: 1 }
                      : { Destination: r.dst, RouteType: 0, NextHop: r.gw }
                  )
                }),
            // an internal network has no way out: no gateway, and no docker_gwbridge either
            ...(network.internal ? { DisableGatewayService: true } : {})
          }
        })
      )
    ),

    route('NetworkDriver', 'Leave', Nd.EndpointRequest, (req) =>
      pipe(decode(EndpointId, 'EndpointID')(req.EndpointID), TE.chain((id) => flow(leave(id))), TE.map(empty))
    ),

    // Ports are published at Join from the endpoint's portmap (dockerd publishes nothing for a
    // remote driver) and removed at DeleteEndpoint; both calls are idempotent acknowledgements.
    route('NetworkDriver', 'ProgramExternalConnectivity', Nd.ExternalConnectivityRequest, () => TE.right({})),
    route('NetworkDriver', 'RevokeExternalConnectivity', Nd.ExternalConnectivityRequest, () => TE.right({})),
    route('NetworkDriver', 'DiscoverNew', Nd.DiscoveryRequest, () => TE.right({})),
    route('NetworkDriver', 'DiscoverDelete', Nd.DiscoveryRequest, () => TE.right({}))
  ]
}
