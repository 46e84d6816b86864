/**
 * The IPAM side of Docker on a Contrail network.
 *
 * With `--ipam-driver isthmus`, dockerd asks the IPAM driver for a container's address
 * (RequestAddress) before the network driver hears of the endpoint (CreateEndpoint), and the
 * network driver may not change that address afterwards (docs/cnm.md;
 * https://github.com/moby/libnetwork/blob/master/docs/ipam.md). So the controller must choose the
 * address at RequestAddress: this Ipam wraps the built-in one, and for a pool that a Contrail
 * network uses it creates an instance-ip "reservation" in the virtual network (no interface yet;
 * the controller allocates), records it as a lease held by the runtime owner
 * `contrail-iip:<uuid>`, and answers with the controller's address. CreateEndpoint then finds that
 * lease and attaches the new interface to the reservation (see `endpoint.ts`), and ReleaseAddress
 * deletes the instance-ip and the lease. Every other pool and owner (the gateway, networks without
 * a controller) goes to the built-in IPAM unchanged.
 *
 * WORKAROUND: RequestAddress carries no endpoint id, so a reservation is named
 * `isthmus-reservation-<random uuid>` and found again through the lease, not through its name.
 */
import { randomUUID } from 'node:crypto'
import * as O from 'fp-ts/lib/Option.js'
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import {
  addressInUse,
  begin,
  bindStep,
  decodeWith,
  doStep,
  IpAddress,
  type CoreError,
  type Ipam,
  type Lease,
  type Network,
  type PoolId,
  type SagaEnv,
  type Store
} from '@isthmus/core'
import { isConflict, type ConfigApi } from './client.js'
import { DEFAULT_DOMAIN, OWNER_KEY, RESERVATION_KEY, RESERVATION_PREFIX } from './marks.js'
import * as Obj from './Objects.js'

/** @category model */
export interface ContrailIpamOptions {
  readonly api: ConfigApi
  readonly store: Store
  readonly owner: string
  readonly domain?: string
  readonly now?: () => Date
}

const networkOfPool = (networks: ReadonlyArray<Network>, pool: PoolId): Network | undefined =>
  networks.find((n) => n.controller?.networkId !== undefined && n.ipv4.some((s) => s.poolId === pool))

interface Reservation {
  readonly network: Network
  readonly poolId: PoolId
  readonly address: IpAddress | undefined
  readonly mac: Lease['mac']
}

/** A reservation: an instance-ip with only its virtual network, named by a random uuid. */
const createReservation = (
  api: ConfigApi,
  owner: string,
  domain: string,
  r: Reservation
): TE.TaskEither<CoreError, string> => {
  const c = r.network.controller!
  const name = `isthmus-reservation-${randomUUID()}`
  const body: Obj.InstanceIpCreate = {
    fq_name: [name],
    display_name: name,
    annotations: {
      key_value_pair: [
        { key: OWNER_KEY, value: owner },
        { key: RESERVATION_KEY, value: 'docker' }
      ]
    },
    virtual_network_refs: [{ to: [domain, c.tenant, c.network], uuid: c.networkId! }],
    ...(c.subnetId === undefined ? {} : { subnet_uuid: c.subnetId }),
    ...(r.address === undefined ? {} : { instance_ip_address: r.address })
  }
  return pipe(
    api.create('instance-ip', Obj.InstanceIpCreate.encode(body)),
    TE.map((made) => made.uuid),
    TE.mapLeft((e) =>
      isConflict(e) && r.address !== undefined
        ? addressInUse(r.address, `Contrail virtual network ${c.tenant}:${c.network}`, 'another instance-ip')
        : e
    )
  )
}

const readAddress = (api: ConfigApi, uuid: string): TE.TaskEither<CoreError, IpAddress> =>
  pipe(
    api.read('instance-ip', uuid, Obj.InstanceIp, { excludeBackRefs: true, excludeChildren: true }),
    TE.chainEitherK((iip) => decodeWith(IpAddress, 'instance_ip_address')(iip.instance_ip_address))
  )

/** The lease, unless the controller's address is held here already (say, as the local pool's gateway). */
const recordLease = (store: Store, lease: Lease, network: Network): TE.TaskEither<CoreError, void> =>
  pipe(
    store.leases.reserve(lease),
    TE.filterOrElse(
      (taken) => taken,
      () => addressInUse(lease.address, network.addressSpace, 'a local lease')
    ),
    TE.map(() => undefined)
  )

interface Deps {
  readonly api: ConfigApi
  readonly store: Store
  readonly owner: string
  readonly domain: string
  readonly now: () => Date
}

/** A reservation and its lease; a failing step deletes the instance-ip (core's saga: a failed delete is logged). */
const reserve = ({ api, store, owner, domain, now }: Deps, r: Reservation): TE.TaskEither<CoreError, Lease> =>
  pipe(
    begin<SagaEnv>('contrail reserve address'),
    bindStep(
      'iip',
      () => RTE.fromTaskEither(createReservation(api, owner, domain, r)),
      ({ iip }) => RTE.fromTaskEither(api.remove('instance-ip', iip))
    ),
    bindStep('address', ({ iip }) => RTE.fromTaskEither(readAddress(api, iip))),
    bindStep('lease', ({ iip, address }) =>
      RTE.right<SagaEnv, CoreError, Lease>({
        address,
        addressSpace: r.network.addressSpace,
        poolId: r.poolId,
        owner: { kind: 'runtime', ref: `${RESERVATION_PREFIX}${iip}` },
        since: now().toISOString(),
        ...(r.mac === undefined ? {} : { mac: r.mac })
      })
    ),
    doStep('record', ({ lease }) => RTE.fromTaskEither(recordLease(store, lease, r.network))),
    RTE.map(({ lease }) => lease)
  )({ log: api.log })

/**
 * `base` with Contrail reservations for the pools of Contrail networks.
 *
 * @category constructors
 */
export const contrailIpam = (base: Ipam, options: ContrailIpamOptions): Ipam => {
  const { api, store, owner } = options
  const domain = options.domain ?? DEFAULT_DOMAIN
  const deps: Deps = { api, store, owner, domain, now: options.now ?? (() => new Date()) }

  const allocate: Ipam['allocate'] = (poolId, leaseOwner, opts) =>
    leaseOwner.kind !== 'runtime'
      ? base.allocate(poolId, leaseOwner, opts)
      : pipe(
          store.networks.list(),
          TE.map((networks) => networkOfPool(networks, poolId)),
          TE.chain((network) =>
            network === undefined
              ? base.allocate(poolId, leaseOwner, opts)
              : reserve(deps, { network, poolId, address: opts?.address, mac: opts?.mac })
          )
        )

  const release: Ipam['release'] = (space, address, leaseOwner) =>
    pipe(
      store.leases.get(space, address),
      TE.map(O.map((l) => l.owner)),
      TE.chain((held) => {
        const o = O.toUndefined(held)
        if (o?.kind !== 'runtime' || !o.ref.startsWith(RESERVATION_PREFIX)) {
          return base.release(space, address, leaseOwner)
        }
        return pipe(
          api.remove('instance-ip', o.ref.slice(RESERVATION_PREFIX.length)),
          TE.chain(() => store.leases.release(space, address, o))
        )
      })
    )

  return { ...base, allocate, release }
}
