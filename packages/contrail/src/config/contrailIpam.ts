/**
 * The IPAM side of Docker on a Contrail network.
 *
 * With `--ipam-driver isthmus`, dockerd asks the IPAM driver for a container's address
 * (RequestAddress) before the network driver hears of the endpoint (CreateEndpoint), and the
 * network driver may not change that address afterwards (cnm-protocol.md §3.1). So the controller
 * must choose the address at RequestAddress: this Ipam wraps the built-in one, and for a pool that
 * a Contrail network uses it creates an instance-ip "reservation" in the virtual network (no
 * interface yet; the controller allocates), records it as a lease held by the runtime owner
 * `contrail-iip:<uuid>`, and answers with the controller's address. CreateEndpoint then finds that
 * lease and attaches the new interface to the reservation (see `contrailControlPlane`), and
 * ReleaseAddress deletes the instance-ip and the lease. Every other pool and owner (the gateway,
 * networks without a controller) goes to the built-in IPAM unchanged.
 *
 * WORKAROUND: RequestAddress carries no endpoint id, so a reservation is named
 * `isthmus-reservation-<random uuid>` and found again through the lease, not through its name.
 */
import { randomUUID } from 'node:crypto'
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import {
  addressInUse,
  decodeWith,
  IpAddress,
  type CoreError,
  type Ipam,
  type Lease,
  type LeaseOwner,
  type Network,
  type PoolId,
  type Store
} from '@isthmus/core'
import type { ConfigApi } from './client.js'
import { DEFAULT_DOMAIN, OWNER_KEY, RESERVATION_PREFIX } from './controlPlane.js'
import * as Obj from './Objects.js'

/** @category model */
export interface ContrailIpamOptions {
  readonly api: ConfigApi
  readonly store: Store
  readonly owner: string
  readonly domain?: string
  readonly now?: () => Date
}

/** Annotation key marking a reservation (value: `docker`). @category constants */
export const RESERVATION_KEY = 'isthmus-reservation'

const networkOfPool = (networks: ReadonlyArray<Network>, pool: PoolId): Network | undefined =>
  networks.find((n) => n.controller?.networkId !== undefined && n.ipv4.some((s) => s.poolId === pool))

/**
 * `base` with Contrail reservations for the pools of Contrail networks.
 *
 * @category constructors
 */
export const contrailIpam = (base: Ipam, options: ContrailIpamOptions): Ipam => {
  const { api, store, owner } = options
  const domain = options.domain ?? DEFAULT_DOMAIN
  const now = options.now ?? (() => new Date())

  const reserve = async (network: Network, poolId: PoolId, address: IpAddress | undefined, mac: Lease['mac']): Promise<E.Either<CoreError, Lease>> => {
    const c = network.controller!
    const name = `isthmus-reservation-${randomUUID()}`
    const body: Obj.InstanceIpCreate = {
      fq_name: [name],
      display_name: name,
      annotations: { key_value_pair: [{ key: OWNER_KEY, value: owner }, { key: RESERVATION_KEY, value: 'docker' }] },
      virtual_network_refs: [{ to: [domain, c.tenant, c.network], uuid: c.networkId! }],
      ...(c.subnetId === undefined ? {} : { subnet_uuid: c.subnetId }),
      ...(address === undefined ? {} : { instance_ip_address: address })
    }
    const made = await api.create('instance-ip', Obj.InstanceIpCreate.encode(body))()
    if (E.isLeft(made)) {
      const e = made.left
      return E.left(e._tag === 'Controller' && e.status === 409 && address !== undefined ? addressInUse(address, `Contrail virtual network ${c.tenant}:${c.network}`, 'another instance-ip') : e)
    }
    const uuid = made.right.uuid
    const undo = async <A>(e: CoreError): Promise<E.Either<CoreError, A>> => {
      await api.remove('instance-ip', uuid)()
      return E.left(e)
    }
    const read = await api.read('instance-ip', uuid, Obj.InstanceIp, { excludeBackRefs: true, excludeChildren: true })()
    if (E.isLeft(read)) return undo(read.left)
    const ip = decodeWith(IpAddress, 'instance_ip_address')(read.right.instance_ip_address)
    if (E.isLeft(ip)) return undo(ip.left)
    const lease: Lease = {
      address: ip.right,
      addressSpace: network.addressSpace,
      poolId,
      owner: { kind: 'runtime', ref: `${RESERVATION_PREFIX}${uuid}` },
      since: now().toISOString(),
      ...(mac === undefined ? {} : { mac })
    }
    const taken = await store.leases.reserve(lease)()
    if (E.isLeft(taken)) return undo(taken.left)
    if (!taken.right) {
      // the controller's address is held here already (say, as the local pool's gateway)
      return undo(addressInUse(ip.right, network.addressSpace, 'a local lease'))
    }
    return E.right(lease)
  }

  const allocate: Ipam['allocate'] = (poolId, leaseOwner: LeaseOwner, opts) => async () => {
    if (leaseOwner.kind !== 'runtime') return base.allocate(poolId, leaseOwner, opts)()
    const networks = await store.networks.list()()
    if (E.isLeft(networks)) return networks
    const network = networkOfPool(networks.right, poolId)
    if (network === undefined) return base.allocate(poolId, leaseOwner, opts)()
    return reserve(network, poolId, opts?.address, opts?.mac)
  }

  const release: Ipam['release'] = (space, address, leaseOwner) => async () => {
    const held = await store.leases.get(space, address)()
    if (E.isLeft(held)) return held
    if (O.isNone(held.right)) return base.release(space, address, leaseOwner)()
    const o = held.right.value.owner
    if (o.kind !== 'runtime' || !o.ref.startsWith(RESERVATION_PREFIX)) return base.release(space, address, leaseOwner)()
    const gone = await api.remove('instance-ip', o.ref.slice(RESERVATION_PREFIX.length))()
    if (E.isLeft(gone)) return gone
    return store.leases.release(space, address, o)()
  }

  return { ...base, allocate, release }
}
