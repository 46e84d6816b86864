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
import { IpAddress, type CoreError, type Endpoint, type EndpointId, type Network, type Store } from '@isthmus/core'
import { isControllerNotFound, type ConfigApi } from './client.js'
import { RESERVATION_KEY } from './contrailIpam.js'
import { annotation, DEFAULT_DOMAIN, ENDPOINT_KEY, OWNER_KEY, RESERVATION_PREFIX, removeEndpointObjects } from './controlPlane.js'
import * as Obj from './Objects.js'

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

type Task<A> = Promise<E.Either<CoreError, A>>

/** @category flows */
export const reconcileController = (o: ControllerReconcileOptions) => async (): Task<ControllerReconcileReport> => {
  const { api, store, owner } = o
  const domain = o.domain ?? DEFAULT_DOMAIN
  const networks = await store.networks.list()()
  if (E.isLeft(networks)) return networks
  const endpoints = await store.endpoints.list()()
  if (E.isLeft(endpoints)) return endpoints
  const contrail = networks.right.filter((n): n is Network & { controller: { projectId: string } } => n.controller?.projectId !== undefined)
  const netById = new Map(contrail.map((n) => [n.id as string, n]))
  const live = endpoints.right.filter((e) => netById.has(e.networkId))
  const liveIds = new Set<string>(live.map((e) => e.id))
  const liveInterfaces = new Set(live.flatMap((e) => (e.controller?.interfaceId === undefined ? [] : [e.controller.interfaceId])))
  const liveIips = new Set(live.flatMap((e) => (e.controller?.instanceIpId === undefined ? [] : [e.controller.instanceIpId])))

  const removed: string[] = []
  const reservationsRemoved: string[] = []
  const failures: Array<{ target: string; error: CoreError }> = []
  const ours = (x: { annotations?: Obj.KeyValuePairs | undefined }): boolean => annotation(x, OWNER_KEY) === owner

  // 1) interfaces (and through them instance-ips and VMs) of each project in use
  const projects = new Map<string, string>(contrail.map((n) => [n.controller.projectId, n.controller.tenant]))
  const seenInterfaces = new Set<string>()
  for (const [projectId, tenant] of projects) {
    const vmis = await api.list('virtual-machine-interface', Obj.VirtualMachineInterface, { parentId: projectId })()
    if (E.isLeft(vmis)) {
      failures.push({ target: `interfaces of project ${tenant}`, error: vmis.left })
      continue
    }
    for (const vmi of vmis.right) {
      seenInterfaces.add(vmi.uuid)
      const ep = annotation(vmi, ENDPOINT_KEY)
      if (!ours(vmi) || ep === undefined || liveIds.has(ep) || liveInterfaces.has(vmi.uuid)) continue
      const vm = vmi.virtual_machine_refs?.[0]?.uuid
      const r = await removeEndpointObjects(api, domain, tenant, ep, { interfaceId: vmi.uuid, ...(vm === undefined ? {} : { vmId: vm }) })
      if (E.isLeft(r)) failures.push({ target: `endpoint ${ep}`, error: r.left })
      else removed.push(ep)
    }
  }

  // 2) VMs of ours left without an interface (a rollback or delete killed between the two)
  const vms = await api.list('virtual-machine', Obj.VirtualMachine)()
  if (E.isLeft(vms)) failures.push({ target: 'virtual machines', error: vms.left })
  else {
    for (const vm of vms.right) {
      const ep = annotation(vm, ENDPOINT_KEY)
      if (!ours(vm) || ep === undefined || liveIds.has(ep) || (vm.virtual_machine_interface_back_refs ?? []).length > 0) continue
      const r = await api.remove('virtual-machine', vm.uuid)()
      if (E.isLeft(r)) failures.push({ target: `virtual-machine ${vm.uuid}`, error: r.left })
      else if (!removed.includes(ep)) removed.push(ep)
    }
  }

  // 3) Docker reservations no lease holds
  for (const n of contrail) {
    const vnId = n.controller.networkId
    if (vnId === undefined) continue
    const vn = await api.read('virtual-network', vnId, Obj.VirtualNetwork, { fields: ['instance_ip_back_refs'] })()
    if (E.isLeft(vn)) {
      if (!isControllerNotFound(vn.left)) failures.push({ target: `virtual network ${n.controller.tenant}:${n.controller.network}`, error: vn.left })
      continue
    }
    for (const ref of vn.right.instance_ip_back_refs ?? []) {
      if (ref.uuid === undefined || liveIips.has(ref.uuid)) continue
      const iip = await api.read('instance-ip', ref.uuid, Obj.InstanceIp)()
      if (E.isLeft(iip)) continue
      if (!ours(iip.right) || annotation(iip.right, RESERVATION_KEY) === undefined) continue
      if ((iip.right.virtual_machine_interface_refs ?? []).length > 0) continue
      if (await leaseHolds(store, n, iip.right)) continue
      const r = await api.remove('instance-ip', iip.right.uuid)()
      if (E.isLeft(r)) failures.push({ target: `instance-ip ${iip.right.uuid}`, error: r.left })
      else reservationsRemoved.push(iip.right.uuid)
    }
  }

  // 4) stored endpoints whose interface is gone (only judged in projects that could be listed)
  const missing = live
    .filter((e: Endpoint) => {
      const id = e.controller?.interfaceId
      const n = netById.get(e.networkId)
      return id !== undefined && n !== undefined && !seenInterfaces.has(id) && !failures.some((f) => f.target === `interfaces of project ${n.controller.tenant}`)
    })
    .map((e) => e.id)

  return E.right({ removed, reservationsRemoved, missing, failures })
}

const leaseHolds = async (store: Store, n: Network, iip: Obj.InstanceIp): Promise<boolean> => {
  const a = IpAddress.decode(iip.instance_ip_address)
  if (E.isLeft(a)) return false
  const l = await store.leases.get(n.addressSpace, a.right)()
  if (E.isLeft(l)) return true // cannot tell: keep it
  return O.isSome(l.right) && l.right.value.owner.kind === 'runtime' && l.right.value.owner.ref === `${RESERVATION_PREFIX}${iip.uuid}`
}
