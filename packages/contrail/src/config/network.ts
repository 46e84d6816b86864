/**
 * A Contrail network: an existing virtual network (project = the tenant) and one of its ipam
 * subnets, resolved by name and never created (the virtual network is the operator's). The
 * gateway is the subnet's `default_gateway`.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import {
  DEFAULT_LOCAL_SPACE,
  invalidConfig,
  IpAddress,
  Subnet,
  type ControlPlane,
  type CoreError,
  type NetworkBinding,
  type NetworkSpec,
  type NetworkSubnet,
  type SubnetRequest
} from '@isthmus/core'
import { hostNetworkName } from '../hns/names.js'
import type { ConfigApi } from './client.js'
import * as Obj from './Objects.js'

/** One ipam subnet of a virtual network, its CIDR decoded. @category model */
export interface VnSubnet {
  readonly cidr: Subnet
  readonly ipam: Obj.IpamSubnet
}

/** The subnets of a virtual network, each with the CIDR decoded. @category utils */
export const subnetsOf = (vn: Obj.VirtualNetwork): ReadonlyArray<VnSubnet> =>
  (vn.network_ipam_refs ?? []).flatMap((r) =>
    r.attr.ipam_subnets.flatMap((s) => {
      const d = Subnet.decode(`${s.subnet.ip_prefix}/${s.subnet.ip_prefix_len}`)
      return E.isRight(d) ? [{ cidr: d.right, ipam: s }] : []
    })
  )

/** A gateway worth telling a container about: not unset, not 0.0.0.0. */
const gatewayOf = (s: Obj.IpamSubnet): IpAddress | undefined => {
  const g = s.default_gateway
  if (g === undefined || g === null || g === '' || g === '0.0.0.0') return undefined
  const d = IpAddress.decode(g)
  return E.isRight(d) ? d.right : undefined
}

type Named = NetworkSpec & { readonly controller: NonNullable<NetworkSpec['controller']> }

/** The spec's one IPv4 subnet request (or none: the network's only subnet is taken). */
const requestOf = (spec: NetworkSpec): E.Either<CoreError, Named & { readonly wanted?: SubnetRequest | undefined }> => {
  const c = spec.controller
  if (c === undefined) return E.left(invalidConfig(`network ${spec.name} names no Contrail tenant and network`))
  const v4 = spec.subnets.filter((s) => (s.subnet === undefined ? s.family === 4 : !s.subnet.includes(':')))
  if (v4.length !== spec.subnets.length) {
    return E.left(invalidConfig(`network ${spec.name}: Contrail networks are IPv4 only in isthmus`))
  }
  if (v4.length > 1) {
    return E.left(invalidConfig(`network ${spec.name}: a Contrail network takes one subnet, ${v4.length} were given`))
  }
  return E.right({ ...spec, controller: c, wanted: v4[0] })
}

/** The subnet asked for, or the only one; `name` is the virtual network's fq_name. */
const chooseSubnet = (
  name: string,
  subnets: ReadonlyArray<VnSubnet>,
  wanted: SubnetRequest | undefined
): E.Either<CoreError, VnSubnet> => {
  const first = subnets[0]
  if (first === undefined) return E.left(invalidConfig(`Contrail virtual network ${name} has no IPAM subnet`))
  if (wanted?.subnet !== undefined) {
    const m = subnets.find((s) => s.cidr === wanted.subnet)
    const has = subnets.map((s) => s.cidr).join(', ')
    return m !== undefined
      ? E.right(m)
      : E.left(invalidConfig(`Contrail virtual network ${name} has no subnet ${wanted.subnet} (it has ${has})`))
  }
  return subnets.length > 1
    ? E.left(
        invalidConfig(
          `Contrail virtual network ${name} has ${subnets.length} subnets: ` +
            'name one (docker --subnet, CNI contrail.subnet)'
        )
      )
    : E.right(first)
}

interface Resolved {
  readonly spec: Named
  readonly wanted: SubnetRequest | undefined
  readonly projectId: string
  readonly networkId: string
  readonly chosen: VnSubnet
}

const bindingOf = ({ spec, wanted, projectId, networkId, chosen }: Resolved, subnetId: string): NetworkBinding => {
  const c = spec.controller
  const gateway = gatewayOf(chosen.ipam)
  const ns: NetworkSubnet = {
    subnet: chosen.cidr,
    ...(gateway === undefined ? {} : { gateway }),
    // Docker: the pool our IPAM driver gave; addresses still come from the controller (contrailIpam)
    ...(wanted?.poolId === undefined ? {} : { poolId: wanted.poolId, ownedPool: false })
  }
  return {
    addressSpace: spec.addressSpace ?? DEFAULT_LOCAL_SPACE,
    ipv4: [ns],
    ipv6: [],
    controller: {
      tenant: c.tenant,
      network: c.network,
      projectId,
      networkId,
      subnetId,
      hostNetworkName: hostNetworkName({ tenant: c.tenant, network: c.network, subnet: chosen.cidr })
    }
  }
}

/**
 * `ensureNetwork` of the Contrail ControlPlane: project, virtual network and subnet by name.
 *
 * @category utils
 */
export const resolveNetwork =
  (api: ConfigApi, domain: string): ControlPlane['ensureNetwork'] =>
  (spec) =>
    pipe(
      TE.fromEither(requestOf(spec)),
      TE.bindTo('req'),
      TE.bind('projectId', ({ req }) => api.fqNameToId('project', [domain, req.controller.tenant])),
      TE.let('fq', ({ req }) => [domain, req.controller.tenant, req.controller.network]),
      TE.bind('networkId', ({ fq }) => api.fqNameToId('virtual-network', fq)),
      TE.bind('vn', ({ networkId }) =>
        api.read('virtual-network', networkId, Obj.VirtualNetwork, { excludeBackRefs: true, excludeChildren: true })
      ),
      TE.bind('chosen', ({ req, fq, vn }) => TE.fromEither(chooseSubnet(fq.join(':'), subnetsOf(vn), req.wanted))),
      TE.chainEitherK(({ req, projectId, networkId, chosen, fq }) => {
        const subnetId = chosen.ipam.subnet_uuid
        return subnetId === undefined
          ? E.left(invalidConfig(`subnet ${chosen.cidr} of ${fq.join(':')} has no subnet_uuid`))
          : E.right(bindingOf({ spec: req, wanted: req.wanted, projectId, networkId, chosen }, subnetId))
      })
    )
