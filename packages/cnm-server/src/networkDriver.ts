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
  invalidConfig,
  join,
  leave,
  loadEndpoint,
  loadNetwork,
  overlaps,
  splitCidr,
  type AddressRequest,
  type CoreError,
  type Env,
  type Flow,
  type Network,
  type NetworkSpec,
  type Pool,
  type SubnetRequest
} from '@isthmus/core'
import { networkOptions, OPT, portMappings } from './options.js'
import * as Nd from './protocol/NetworkDriver.js'
import { route, type Route } from './router.js'

const decode = <A>(codec: t.Type<A, unknown, unknown>, what: string) => (u: unknown) =>
  TE.fromEither(decodeWith(codec, what)(u))

const empty = (): object => ({})

/** One IPAMData entry as a subnet request; the pool is ours when our IPAM holds that subnet in that space. */
const subnetRequest =
  (family: 4 | 6, pools: ReadonlyArray<Pool>) =>
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
      TE.map(({ subnet, gateway }) => {
        const pool = pools.find((p) => p.addressSpace === d.AddressSpace && p.subnet === subnet)
        return {
          family,
          subnet,
          ...(pool === undefined ? {} : { poolId: pool.id }),
          ...(gateway === undefined ? {} : { gateway })
        }
      })
    )

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
 * A subnet of another stored network that overlaps one of `subnets`, as an error. Each network's
 * gateway is an address of the host on its bridge, so two networks on overlapping subnets make
 * the host's routes ambiguous; and two on the same subnet would share one pool of our IPAM
 * (Docker's identical RequestPool gets the same pool, ref-counted), gateway included. Docker does
 * not check this for remote drivers (cnm-protocol.md §4: it created two networks on one subnet).
 */
const overlapWith = (
  id: NetworkId,
  subnets: ReadonlyArray<SubnetRequest>,
  networks: ReadonlyArray<Network>
): CoreError | undefined => {
  for (const n of networks) {
    if (n.id === id) continue
    for (const theirs of [...n.ipv4, ...n.ipv6]) {
      const mine = subnets.find((r) => r.subnet !== undefined && overlaps(r.subnet, theirs.subnet))
      if (mine?.subnet !== undefined) {
        return invalidConfig(`subnet ${mine.subnet} overlaps ${theirs.subnet} of network ${n.name} on this host`)
      }
    }
  }
  return undefined
}

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
        TE.bind('v4', ({ pools }) => A.traverse(TE.ApplicativeSeq)(subnetRequest(4, pools))(req.IPv4Data ?? [])),
        TE.bind('v6', ({ pools }) => A.traverse(TE.ApplicativeSeq)(subnetRequest(6, pools))(req.IPv6Data ?? [])),
        TE.tap(({ id, v4, v6 }) =>
          pipe(
            env.store.networks.list(),
            TE.chain((networks) => {
              const clash = overlapWith(id, [...v4, ...v6], networks)
              return clash === undefined ? TE.right(undefined) : TE.left(clash)
            })
          )
        ),
        TE.chain(({ id, opts, v4, v6 }) => {
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
            ...(opts.mtu === undefined ? {} : { mtu: opts.mtu }),
            ...(opts.tenant !== undefined && opts.network !== undefined
              ? { controller: { tenant: opts.tenant, network: opts.network } }
              : {})
          }
          return flow(ensureNetwork(spec))
        }),
        TE.map(empty)
      )
    ),

    route('NetworkDriver', 'DeleteNetwork', Nd.NetworkRequest, (req) =>
      pipe(decode(NetworkId, 'NetworkID')(req.NetworkID), TE.chain((id) => flow(deleteNetwork(id))), TE.map(empty))
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
        TE.bind('ports', () => TE.fromEither(portMappings(req.Options))),
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
        TE.bind('joined', ({ id, sandboxKey, dstPrefix }) =>
          flow(join(id, { _tag: 'RuntimeMoves', dstPrefix }, { sandboxKey }))
        ),
        TE.map(({ joined, dstPrefix }): Nd.JoinResponse => {
          const { gateways, network } = joined
          return {
            InterfaceName: { SrcName: joined.placed.ifName, DstPrefix: dstPrefix },
            ...(gateways.v4 === undefined ? {} : { Gateway: gateways.v4 }),
            ...(gateways.v6 === undefined ? {} : { GatewayIPv6: gateways.v6 }),
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
