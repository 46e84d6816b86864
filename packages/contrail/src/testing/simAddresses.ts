/**
 * What the simulated API server computes for addresses: a virtual network's subnet uuids, gateway
 * and DNS address (from the bottom of the subnet, or from the top when `addr_from_start` is
 * false), an instance-ip's address (the next free one, or the one asked for if free) and an
 * interface's MAC (from its uuid).
 */
import * as E from 'fp-ts/lib/Either.js'
import { randomUUID } from 'node:crypto'
import { boundsOf, contains, fromBigInt, IpAddress, Subnet } from '@isthmus/core'
import type { SimResponse } from './httpSim.js'
import { refsOf, text, type ObjectStore, type SimObject } from './simObjects.js'

/** The MAC the API server derives from an interface uuid. @category testing */
export const macFromUuid = (uuid: string): string =>
  `02:${uuid.slice(0, 2)}:${uuid.slice(2, 4)}:${uuid.slice(4, 6)}:${uuid.slice(6, 8)}:${uuid.slice(9, 11)}`

type IpamSubnets = Array<Record<string, unknown>>
const ipamSubnetsOf = (attr: unknown): IpamSubnets =>
  (attr as { ipam_subnets?: IpamSubnets } | undefined)?.ipam_subnets ?? []
const cidrOf = (s: Record<string, unknown>): E.Either<unknown, Subnet> => {
  const sub = s['subnet'] as { ip_prefix: string; ip_prefix_len: number }
  return Subnet.decode(`${sub.ip_prefix}/${sub.ip_prefix_len}`)
}

interface SubnetInfo {
  readonly ipam: Record<string, unknown>
  readonly cidr: Subnet
}

const subnetsOf = (vn: SimObject): SubnetInfo[] =>
  refsOf(vn, 'network_ipam_refs').flatMap((r) =>
    ipamSubnetsOf(r.attr).flatMap((s) => {
      const d = cidrOf(s)
      return E.isRight(d) ? [{ ipam: s, cidr: d.right }] : []
    })
  )

const usedIn = (store: ObjectStore, s: SubnetInfo): Set<string> => {
  const used = new Set<string>()
  for (const g of [s.ipam['default_gateway'], s.ipam['dns_server_address']]) if (typeof g === 'string') used.add(g)
  for (const o of store.all()) {
    if (o.type !== 'instance-ip') continue
    const a = o.props['instance_ip_address']
    if (typeof a === 'string' && contains(s.cidr, a as IpAddress)) used.add(a)
  }
  return used
}

const nextFree = (store: ObjectStore, s: SubnetInfo): string | undefined => {
  const { first, last } = boundsOf(s.cidr)
  const used = usedIn(store, s)
  const fromStart = s.ipam['addr_from_start'] === true
  for (let i = 1n; first + i < last; i++) {
    const a = fromBigInt(fromStart ? first + i : last - i, 4)
    if (!used.has(a)) return a
  }
  return undefined
}

/** A virtual network's create: fill each ipam subnet's uuid, gateway and DNS address. */
export const fillSubnets = (props: Record<string, unknown>): E.Either<SimResponse, void> => {
  for (const r of refsOf({ props }, 'network_ipam_refs')) {
    for (const s of ipamSubnetsOf(r.attr)) {
      const d = cidrOf(s)
      if (E.isLeft(d)) return E.left(text(400, `Bad subnet ${JSON.stringify(s['subnet'])}`))
      const { first, last } = boundsOf(d.right)
      const fromStart = s['addr_from_start'] === true
      s['subnet_uuid'] ??= randomUUID()
      s['default_gateway'] ??= fromBigInt(fromStart ? first + 1n : last - 1n, 4)
      s['dns_server_address'] ??= fromBigInt(fromStart ? first + 2n : last - 2n, 4)
    }
  }
  return E.right(undefined)
}

/** The subnet holding the address asked for, which must be free (409 otherwise). */
const staticSubnet = (
  store: ObjectStore,
  subnets: SubnetInfo[],
  chosen: SubnetInfo | undefined,
  wanted: string
): E.Either<SimResponse, SubnetInfo> => {
  const a = IpAddress.decode(wanted)
  const holder = E.isRight(a) ? subnets.find((s) => contains(s.cidr, a.right)) : undefined
  if (E.isLeft(a) || holder === undefined || (chosen !== undefined && holder !== chosen)) {
    return E.left(text(400, `Requested IP address ${wanted} is not in the subnet`))
  }
  return usedIn(store, holder).has(a.right) ? E.left(text(409, 'IP address already in use')) : E.right(holder)
}

/** An instance-ip's create: its subnet and address, asked for or allocated. */
export const assignAddress = (store: ObjectStore, props: Record<string, unknown>): E.Either<SimResponse, void> => {
  const vnRef = refsOf({ props }, 'virtual_network_refs')[0]
  const vn = vnRef === undefined ? undefined : store.get(vnRef.uuid)
  if (vn === undefined) return E.left(text(400, 'Bad Request: instance-ip needs a virtual_network_refs entry'))
  const subnets = subnetsOf(vn)
  const wanted = props['instance_ip_address']
  const named = props['subnet_uuid']
  let subnet = typeof named === 'string' ? subnets.find((s) => s.ipam['subnet_uuid'] === named) : undefined
  if (named !== undefined && subnet === undefined) {
    const shown = typeof named === 'string' ? named : JSON.stringify(named)
    return E.left(text(400, `Bad Request: subnet ${shown} not in network`))
  }
  if (typeof wanted === 'string') {
    const holder = staticSubnet(store, subnets, subnet, wanted)
    if (E.isLeft(holder)) return holder
    props['subnet_uuid'] = holder.right.ipam['subnet_uuid']
  } else {
    subnet ??= subnets.find((s) => nextFree(store, s) !== undefined)
    const a = subnet === undefined ? undefined : nextFree(store, subnet)
    if (subnet === undefined || a === undefined) {
      return E.left(text(400, 'Virtual-Network subnet exhausted: no free address'))
    }
    props['instance_ip_address'] = a
    props['subnet_uuid'] = subnet.ipam['subnet_uuid']
  }
  props['instance_ip_family'] = 'v4'
  return E.right(undefined)
}
