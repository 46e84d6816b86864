/**
 * IpamDriver: Docker's remote IPAM calls translated onto the built-in IPAM engine
 * (cnm-protocol.md §4). Addresses Docker asks for are held by the runtime owner until
 * CreateEndpoint hands them to the endpoint; ReleaseAddress frees only what the runtime holds.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as t from 'io-ts'
import {
  AddressSpace,
  DEFAULT_GLOBAL_SPACE,
  DEFAULT_LOCAL_SPACE,
  DOCKER_RUNTIME_OWNER,
  IpAddress,
  MacAddress,
  PoolId,
  Subnet,
  decodeWith,
  invalidConfig,
  isNotFound,
  joinCidr,
  poolRangeOfSubnet,
  splitCidr,
  type CoreError,
  type Ipam,
  type PoolRequest
} from '@isthmus/core'
import * as Ipd from './protocol/IpamDriver.js'
import { route, type Route } from './router.js'

const GATEWAY_TYPE = 'com.docker.network.gateway'
/** The `--ipam-opt` that names the pool's address space (the tenant's). */
export const ADDRESS_SPACE_OPTION = 'address-space'
const MAC_OPTION = 'com.docker.network.endpoint.macaddress'

const decodeOr = <A>(codec: t.Type<A, unknown, unknown>, what: string) => (u: unknown) =>
  TE.fromEither(decodeWith(codec, what)(u))

const optionalField = <A>(codec: t.Type<A, unknown, unknown>, what: string, v: string | undefined) =>
  v === undefined || v === '' ? TE.right(undefined) : pipe(decodeOr(codec, what)(v), TE.map((a): A | undefined => a))

const absentOk = (te: TE.TaskEither<CoreError, unknown>): TE.TaskEither<CoreError, object> =>
  pipe(
    te,
    TE.map(() => ({})),
    TE.orElse((e) => (isNotFound(e) ? TE.right({}) : TE.left(e)))
  )

/** The IpamDriver routes over one Ipam. */
export const ipamRoutes = (ipam: Ipam): ReadonlyArray<Route> => [
  route('IpamDriver', 'GetCapabilities', t.unknown, () =>
    TE.right<CoreError, Ipd.CapabilitiesResponse>({ RequiresMACAddress: false, RequiresRequestReplay: false })
  ),

  route('IpamDriver', 'GetDefaultAddressSpaces', t.unknown, () =>
    TE.right<CoreError, Ipd.DefaultAddressSpacesResponse>({
      LocalDefaultAddressSpace: DEFAULT_LOCAL_SPACE,
      GlobalDefaultAddressSpace: DEFAULT_GLOBAL_SPACE
    })
  ),

  route('IpamDriver', 'RequestPool', Ipd.RequestPoolRequest, (req) =>
    pipe(
      TE.Do,
      // --ipam-opt address-space=<tenant> puts the pool in the tenant's space: tenants may then
      // share a subnet (the network names the space too, `-o address-space`: docs/cnm.md).
      TE.bind('space', () =>
        pipe(
          decodeOr(AddressSpace, 'AddressSpace')(req.AddressSpace),
          TE.chain((docker) =>
            pipe(
              optionalField(AddressSpace, `Options.${ADDRESS_SPACE_OPTION}`, req.Options?.[ADDRESS_SPACE_OPTION]),
              TE.map((named) => named ?? docker)
            )
          )
        )
      ),
      TE.bind('subnet', () => optionalField(Subnet, 'Pool', req.Pool)),
      TE.bind('sub', () => optionalField(Subnet, 'SubPool', req.SubPool)),
      // --ip-range: the sub-subnet becomes the pool's one range (buildPool checks it lies inside)
      TE.bind('ranges', ({ sub }) => TE.right(sub === undefined ? undefined : poolRangeOfSubnet(sub))),
      TE.chain(({ space, subnet, ranges }) => {
        const request: PoolRequest = {
          addressSpace: space,
          family: req.V6 === true ? 6 : 4,
          ...(subnet === undefined ? {} : { subnet }),
          ...(ranges === undefined ? {} : { ranges: [ranges] }),
          options: req.Options ?? {}
        }
        return ipam.requestPool(request)
      }),
      TE.map((pool): Ipd.RequestPoolResponse => ({ PoolID: pool.id, Pool: pool.subnet, Data: {} }))
    )
  ),

  route('IpamDriver', 'ReleasePool', Ipd.ReleasePoolRequest, (req) =>
    pipe(decodeOr(PoolId, 'PoolID')(req.PoolID), TE.chain(ipam.releasePool), absentOk)
  ),

  route('IpamDriver', 'RequestAddress', Ipd.RequestAddressRequest, (req) =>
    pipe(
      TE.Do,
      TE.bind('poolId', () => decodeOr(PoolId, 'PoolID')(req.PoolID)),
      TE.bind('address', () => optionalField(IpAddress, 'Address', req.Address)),
      TE.bind('mac', () => optionalField(MacAddress, MAC_OPTION, req.Options?.[MAC_OPTION])),
      TE.bind('pool', ({ poolId }) => ipam.getPool(poolId)),
      TE.bind('gateway', ({ pool, address }) => {
        const gateway = req.Options?.['RequestAddressType'] === GATEWAY_TYPE
        // A pool with more than one reference serves another network already (an identical
        // RequestPool): moving its gateway would pull it from under that network, and Docker's
        // rollback (ReleaseAddress) would not move it back.
        return gateway && pool.refs > 1 && address !== undefined && address !== pool.gateway
          ? TE.left(invalidConfig(`subnet ${pool.subnet} is already used by another network, with gateway ${pool.gateway ?? 'none'}`))
          : TE.right(gateway)
      }),
      TE.bind('lease', ({ poolId, address, mac, gateway }) =>
        ipam.allocate(
          poolId,
          // the gateway of a network: the pool's own lease, moved if --gateway names another
          gateway ? { kind: 'gateway' } : DOCKER_RUNTIME_OWNER,
          {
            ...(address === undefined ? {} : { address }),
            ...(mac === undefined ? {} : { mac }),
            // --ip and --aux-address may lie outside --ip-range (only dynamic picks stay inside)
            anywhereInSubnet: true,
            // A container's address, picked here, dies with the machine (Store PutOptions); one
            // asked for may be an --aux-address of the network, which must outlive it.
            durable: gateway || address !== undefined,
            // every Docker request has the one runtime owner: an address it holds already is
            // another container's (`docker run --ip` twice), never the same request again
            exclusive: true
          }
        )
      ),
      TE.map(
        ({ pool, lease }): Ipd.RequestAddressResponse => ({
          // dockerd needs the prefix length (`invalid CIDR address` otherwise)
          Address: joinCidr(lease.address, splitCidr(pool.subnet).prefix),
          Data: {}
        })
      )
    )
  ),

  route('IpamDriver', 'ReleaseAddress', Ipd.ReleaseAddressRequest, (req) =>
    pipe(
      TE.Do,
      TE.bind('poolId', () => decodeOr(PoolId, 'PoolID')(req.PoolID)),
      TE.bind('address', () => decodeOr(IpAddress, 'Address')(req.Address)),
      TE.bind('pool', ({ poolId }) => ipam.getPool(poolId)),
      // Only what the runtime holds: the gateway lease lives as long as the pool (ReleasePool),
      // and an endpoint's address was handed back to the runtime at DeleteEndpoint.
      TE.chain(({ pool, address }) => ipam.release(pool.addressSpace, address, DOCKER_RUNTIME_OWNER)),
      absentOk
    )
  )
]
