/**
 * Controller reconciliation after a restart: delete what this host created in Contrail that no
 * stored endpoint or Docker reservation owns (a run killed between steps, a rollback that could
 * not finish). Objects are recognised by their `annotations` (owner = this host), found through
 * the projects of the stored Contrail networks: interfaces by listing the project, their
 * instance-ips and VM through the interface, VMs left without an interface by listing VMs, and
 * Docker reservations through the virtual network's instance-ip back-references.
 *
 * Stored endpoints are never touched: the store is the truth, and an endpoint whose objects are
 * missing is reported, for deleteEndpoint (or the runtime) to finish.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as T from 'fp-ts/lib/Task.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { IpAddress, type CoreError, type Endpoint, type EndpointId, type Network, type Store } from '@isthmus/core'
import { isControllerNotFound, type ConfigApi } from './client.js'
import { annotation, DEFAULT_DOMAIN, ENDPOINT_KEY, OWNER_KEY, RESERVATION_KEY, RESERVATION_PREFIX } from './marks.js'
import * as Obj from './Objects.js'
import { removeEndpointObjects } from './removal.js'

/** @category model */
export interface ControllerReconcileOptions {
  readonly api: ConfigApi
  readonly store: Store
  readonly owner: string
  readonly domain?: string
}

/** @category model */
export interface ControllerReconcileReport {
  /** Endpoint names whose leftover objects were deleted. */
  readonly removed: ReadonlyArray<string>
  /** Docker reservations (instance-ip uuids) no lease holds any more, deleted. */
  readonly reservationsRemoved: ReadonlyArray<string>
  /** Stored endpoints whose interface the controller no longer has. */
  readonly missing: ReadonlyArray<EndpointId>
  readonly failures: ReadonlyArray<{ readonly target: string; readonly error: CoreError }>
}

type ContrailNetwork = Network & { readonly controller: { readonly projectId: string } }

/** What one pass found and did; passes run in turn and their tallies add up. */
interface Tally {
  readonly removed: ReadonlyArray<string>
  readonly reservationsRemoved: ReadonlyArray<string>
  readonly failures: ControllerReconcileReport['failures']
  /** Interfaces seen while listing projects (for `missing`). */
  readonly seen: ReadonlyArray<string>
}

const NONE: Tally = { removed: [], reservationsRemoved: [], failures: [], seen: [] }

const add = (a: Tally, b: Tally): Tally => ({
  // an endpoint whose interface and VM went in different passes is named once
  removed: [...a.removed, ...b.removed.filter((r) => !a.removed.includes(r))],
  reservationsRemoved: [...a.reservationsRemoved, ...b.reservationsRemoved],
  failures: [...a.failures, ...b.failures],
  seen: [...a.seen, ...b.seen]
})

const sum = (tallies: ReadonlyArray<Tally>): Tally => tallies.reduce(add, NONE)

const failed = (target: string, error: CoreError): Tally => ({ ...NONE, failures: [{ target, error }] })

/** Run `te`; a failure becomes a failure of `target`, a success whatever `ok` makes of it. */
const attempt = <A>(target: string, te: TE.TaskEither<CoreError, A>, ok: (a: A) => T.Task<Tally>): T.Task<Tally> =>
  pipe(te, T.chain(E.match((e) => T.of(failed(target, e)), ok)))

/** The stored state reconciliation works from. */
interface Known {
  readonly contrail: ReadonlyArray<ContrailNetwork>
  readonly live: ReadonlyArray<Endpoint>
  readonly liveIds: ReadonlySet<string>
  readonly liveInterfaces: ReadonlySet<string>
  readonly liveIips: ReadonlySet<string>
}

const knownOf = (networks: ReadonlyArray<Network>, endpoints: ReadonlyArray<Endpoint>): Known => {
  const contrail = networks.filter((n): n is ContrailNetwork => n.controller?.projectId !== undefined)
  const ids = new Set<string>(contrail.map((n) => n.id))
  const live = endpoints.filter((e) => ids.has(e.networkId))
  const controllers = live.flatMap((e) => (e.controller === undefined ? [] : [e.controller]))
  return {
    contrail,
    live,
    liveIds: new Set<string>(live.map((e) => e.id)),
    liveInterfaces: new Set(controllers.flatMap((c) => (c.interfaceId === undefined ? [] : [c.interfaceId]))),
    liveIips: new Set(controllers.flatMap((c) => (c.instanceIpId === undefined ? [] : [c.instanceIpId])))
  }
}

const projectTarget = (tenant: string): string => `interfaces of project ${tenant}`

/** 1) interfaces of ours in one project that no stored endpoint owns, with their instance-ips and VM. */
const orphanInterfaces = (o: Reconcile, k: Known, projectId: string, tenant: string): T.Task<Tally> =>
  attempt(
    projectTarget(tenant),
    o.api.list('virtual-machine-interface', Obj.VirtualMachineInterface, { parentId: projectId }),
    (vmis) =>
      pipe(
        vmis,
        T.traverseSeqArray((vmi): T.Task<Tally> => {
          const ep = annotation(vmi, ENDPOINT_KEY)
          const seen: Tally = { ...NONE, seen: [vmi.uuid] }
          if (!o.ours(vmi) || ep === undefined || k.liveIds.has(ep) || k.liveInterfaces.has(vmi.uuid)) return T.of(seen)
          const vm = vmi.virtual_machine_refs?.[0]?.uuid
          const known = { interfaceId: vmi.uuid, ...(vm === undefined ? {} : { vmId: vm }) }
          return attempt(`endpoint ${ep}`, removeEndpointObjects(o.api, o.domain, tenant, ep, known), () =>
            T.of({ ...seen, removed: [ep] })
          )
        }),
        T.map(sum)
      )
  )

/** 2) VMs of ours left without an interface (a rollback or delete killed between the two). */
const orphanVms = (o: Reconcile, k: Known): T.Task<Tally> =>
  attempt('virtual machines', o.api.list('virtual-machine', Obj.VirtualMachine), (vms) =>
    pipe(
      vms,
      T.traverseSeqArray((vm): T.Task<Tally> => {
        const ep = annotation(vm, ENDPOINT_KEY)
        if (
          !o.ours(vm) ||
          ep === undefined ||
          k.liveIds.has(ep) ||
          (vm.virtual_machine_interface_back_refs ?? []).length > 0
        ) {
          return T.of(NONE)
        }
        return attempt(`virtual-machine ${vm.uuid}`, o.api.remove('virtual-machine', vm.uuid), () =>
          T.of({ ...NONE, removed: [ep] })
        )
      }),
      T.map(sum)
    )
  )

/** Whether a lease holds the reservation `iip`; when the store cannot tell, it is kept. */
const leaseHolds = (store: Store, n: Network, iip: Obj.InstanceIp): T.Task<boolean> =>
  pipe(
    IpAddress.decode(iip.instance_ip_address),
    E.match(
      () => T.of(false),
      (address) =>
        pipe(
          store.leases.get(n.addressSpace, address),
          TE.match(
            () => true,
            O.exists((l) => l.owner.kind === 'runtime' && l.owner.ref === `${RESERVATION_PREFIX}${iip.uuid}`)
          )
        )
    )
  )

/** A Docker reservation of ours that no interface uses and no lease holds. */
const staleReservation = (o: Reconcile, n: Network, uuid: string): T.Task<Tally> =>
  pipe(
    o.api.read('instance-ip', uuid, Obj.InstanceIp),
    TE.match(
      () => undefined,
      (iip): Obj.InstanceIp | undefined => iip
    ),
    T.chain((iip) => {
      if (iip === undefined || !o.ours(iip) || annotation(iip, RESERVATION_KEY) === undefined) return T.of(NONE)
      if ((iip.virtual_machine_interface_refs ?? []).length > 0) return T.of(NONE)
      return pipe(
        leaseHolds(o.store, n, iip),
        T.chain((held) =>
          held
            ? T.of(NONE)
            : attempt(`instance-ip ${iip.uuid}`, o.api.remove('instance-ip', iip.uuid), () =>
                T.of({ ...NONE, reservationsRemoved: [iip.uuid] })
              )
        )
      )
    })
  )

/** 3) Docker reservations of one network that no lease holds. */
const staleReservations = (o: Reconcile, k: Known, n: ContrailNetwork): T.Task<Tally> => {
  const vnId = n.controller.networkId
  if (vnId === undefined) return T.of(NONE)
  return pipe(
    o.api.read('virtual-network', vnId, Obj.VirtualNetwork, { fields: ['instance_ip_back_refs'] }),
    TE.match(
      (e): T.Task<Tally> =>
        T.of(
          isControllerNotFound(e) ? NONE : failed(`virtual network ${n.controller.tenant}:${n.controller.network}`, e)
        ),
      (vn) =>
        pipe(
          (vn.instance_ip_back_refs ?? []).flatMap((r) =>
            r.uuid === undefined || k.liveIips.has(r.uuid) ? [] : [r.uuid]
          ),
          T.traverseSeqArray((uuid) => staleReservation(o, n, uuid)),
          T.map(sum)
        )
    ),
    T.flatten
  )
}

/** 4) stored endpoints whose interface is gone (only judged in projects that could be listed). */
const missingOf = (k: Known, t: Tally): ReadonlyArray<EndpointId> => {
  const byId = new Map(k.contrail.map((n) => [n.id as string, n]))
  const seen = new Set(t.seen)
  return k.live
    .filter((e) => {
      const id = e.controller?.interfaceId
      const n = byId.get(e.networkId)
      return (
        id !== undefined &&
        n !== undefined &&
        !seen.has(id) &&
        !t.failures.some((f) => f.target === projectTarget(n.controller.tenant))
      )
    })
    .map((e) => e.id)
}

interface Reconcile {
  readonly api: ConfigApi
  readonly store: Store
  readonly domain: string
  readonly ours: (x: { readonly annotations?: Obj.KeyValuePairs | undefined }) => boolean
}

const passes = (o: Reconcile, k: Known): T.Task<Tally> => {
  const projects = new Map<string, string>(k.contrail.map((n) => [n.controller.projectId, n.controller.tenant]))
  return pipe(
    [
      ...[...projects].map(([projectId, tenant]) => orphanInterfaces(o, k, projectId, tenant)),
      orphanVms(o, k),
      ...k.contrail.map((n) => staleReservations(o, k, n))
    ],
    T.sequenceSeqArray,
    T.map(sum)
  )
}

/** @category flows */
export const reconcileController = (
  options: ControllerReconcileOptions
): TE.TaskEither<CoreError, ControllerReconcileReport> => {
  const { api, store, owner } = options
  const o: Reconcile = {
    api,
    store,
    domain: options.domain ?? DEFAULT_DOMAIN,
    ours: (x) => annotation(x, OWNER_KEY) === owner
  }
  return pipe(
    TE.Do,
    TE.bind('networks', () => store.networks.list()),
    TE.bind('endpoints', () => store.endpoints.list()),
    TE.map(({ networks, endpoints }) => knownOf(networks, endpoints)),
    TE.chain((k) =>
      pipe(
        passes(o, k),
        T.map((t) =>
          E.right({
            removed: t.removed,
            reservationsRemoved: t.reservationsRemoved,
            missing: missingOf(k, t),
            failures: t.failures
          })
        )
      )
    )
  )
}
