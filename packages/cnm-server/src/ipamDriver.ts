/**
 * IpamDriver: Docker's remote IPAM calls, one function each, translated onto the built-in IPAM
 * engine (docs/cnm.md). Addresses Docker asks for are held by the runtime owner until
 * CreateEndpoint hands them to the endpoint; ReleaseAddress frees only what the runtime holds.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as t from 'io-ts'
import {
  DEFAULT_GLOBAL_SPACE,
  DEFAULT_LOCAL_SPACE,
  DOCKER_RUNTIME_OWNER,
  invalidConfig,
  isNotFound,
  joinCidr,
  poolRangeOfSubnet,
  splitCidr,
  type CoreError,
  type IpAddress,
  type Ipam,
  type Pool,
  type PoolRequest
} from '@isthmus/core'
import { present } from './protocol/common.js'
import * as Ipd from './protocol/IpamDriver.js'
import { ADDRESS_SPACE_OPTION, MAC_OPTION } from './protocol/IpamDriver.js'
import { route, type Route } from './router.js'

const GATEWAY_TYPE = 'com.docker.network.gateway'

// Teardown: what is gone already is released.
const absentOk = (te: TE.TaskEither<CoreError, unknown>): TE.TaskEither<CoreError, object> =>
  pipe(
    te,
    TE.map(() => ({})),
    TE.orElse((e) => (isNotFound(e) ? TE.right({}) : TE.left(e)))
  )

/** GetCapabilities: no MAC address needed, no replay after a restart. */
export const getCapabilities = (): TE.TaskEither<CoreError, Ipd.CapabilitiesResponse> =>
  TE.right({ RequiresMACAddress: false, RequiresRequestReplay: false })

/** GetDefaultAddressSpaces: the built-in IPAM's two spaces. */
export const getDefaultAddressSpaces = (): TE.TaskEither<CoreError, Ipd.DefaultAddressSpacesResponse> =>
  TE.right({ LocalDefaultAddressSpace: DEFAULT_LOCAL_SPACE, GlobalDefaultAddressSpace: DEFAULT_GLOBAL_SPACE })

/** The pool a RequestPool asks for. */
const poolRequest = (req: Ipd.RequestPoolRequest): PoolRequest => {
  // --ip-range: the sub-subnet becomes the pool's one range (buildPool checks it lies inside)
  const range = req.SubPool === undefined ? undefined : poolRangeOfSubnet(req.SubPool)
  return {
    // --ipam-opt address-space=<tenant> puts the pool in the tenant's space: tenants may then
    // share a subnet (the network names the space too, `-o address-space`: docs/cnm.md).
    addressSpace: present(req.Options?.[ADDRESS_SPACE_OPTION]) ?? req.AddressSpace,
    family: req.V6 === true ? 6 : 4,
    ...(req.Pool === undefined ? {} : { subnet: req.Pool }),
    ...(range === undefined ? {} : { ranges: [range] }),
    options: req.Options ?? {}
  }
}

/** RequestPool: the pool of a network (an identical request gets the same pool, one more reference). */
export const requestPool =
  (ipam: Ipam) =>
  (req: Ipd.RequestPoolRequest): TE.TaskEither<CoreError, Ipd.RequestPoolResponse> =>
    pipe(
      ipam.requestPool(poolRequest(req)),
      TE.map((pool) => ({ PoolID: pool.id, Pool: pool.subnet, Data: {} }))
    )

/** ReleasePool: one reference less; a pool already gone is released. */
export const releasePool =
  (ipam: Ipam) =>
  (req: Ipd.ReleasePoolRequest): TE.TaskEither<CoreError, object> =>
    absentOk(ipam.releasePool(req.PoolID))

/**
 * Whether a RequestAddress asks for the network's gateway. A pool with more than one reference
 * serves another network already (an identical RequestPool): moving its gateway would pull it from
 * under that network, and Docker's rollback (ReleaseAddress) would not move it back.
 */
const gatewayAsked = (req: Ipd.RequestAddressRequest, pool: Pool): TE.TaskEither<CoreError, boolean> => {
  const gateway = req.Options?.['RequestAddressType'] === GATEWAY_TYPE
  const address = req.Address
  return gateway && pool.refs > 1 && address !== undefined && address !== pool.gateway
    ? TE.left(
        invalidConfig(
          `subnet ${pool.subnet} is already used by another network, with gateway ${pool.gateway ?? 'none'}`
        )
      )
    : TE.right(gateway)
}

/** RequestAddress: a network's gateway, a container's address or an --aux-address. */
export const requestAddress =
  (ipam: Ipam) =>
  (req: Ipd.RequestAddressRequest): TE.TaskEither<CoreError, Ipd.RequestAddressResponse> => {
    const address: IpAddress | undefined = req.Address
    const mac = present(req.Options?.[MAC_OPTION])
    return pipe(
      TE.Do,
      TE.bind('pool', () => ipam.getPool(req.PoolID)),
      TE.bind('gateway', ({ pool }) => gatewayAsked(req, pool)),
      TE.bind('lease', ({ gateway }) =>
        ipam.allocate(
          req.PoolID,
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
      // dockerd needs the prefix length (`invalid CIDR address` otherwise)
      TE.map(({ pool, lease }) => ({ Address: joinCidr(lease.address, splitCidr(pool.subnet).prefix), Data: {} }))
    )
  }

/**
 * ReleaseAddress: only what the runtime holds. The gateway lease lives as long as the pool
 * (ReleasePool), and an endpoint's address was handed back to the runtime at DeleteEndpoint.
 */
export const releaseAddress =
  (ipam: Ipam) =>
  (req: Ipd.ReleaseAddressRequest): TE.TaskEither<CoreError, object> =>
    absentOk(
      pipe(
        ipam.getPool(req.PoolID),
        TE.chain((pool) => ipam.release(pool.addressSpace, req.Address, DOCKER_RUNTIME_OWNER))
      )
    )

/** The IpamDriver routes over one Ipam. */
export const ipamRoutes = (ipam: Ipam): ReadonlyArray<Route> => [
  route('IpamDriver', 'GetCapabilities', t.unknown, getCapabilities),
  route('IpamDriver', 'GetDefaultAddressSpaces', t.unknown, getDefaultAddressSpaces),
  route('IpamDriver', 'RequestPool', Ipd.RequestPoolRequest, requestPool(ipam)),
  route('IpamDriver', 'ReleasePool', Ipd.ReleasePoolRequest, releasePool(ipam)),
  route('IpamDriver', 'RequestAddress', Ipd.RequestAddressRequest, requestAddress(ipam)),
  route('IpamDriver', 'ReleaseAddress', Ipd.ReleaseAddressRequest, releaseAddress(ipam))
]
