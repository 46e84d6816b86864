/**
 * A Contrail endpoint: a virtual-machine-interface, a virtual-machine and an instance-ip
 * (docs/contrail.md, "What is made in Contrail"). The controller assigns the address (the
 * instance-ip), the MAC (from the interface's uuid) and the gateway (the subnet's default_gateway).
 *
 * Creation order: interface, VM, interface→VM reference, instance-ip. The interface comes first
 * because it is the one object with a parent (the project): whatever a killed run left behind
 * can then be found by listing the project's interfaces (see `reconcile.ts`), and the VM and
 * instance-ip are found from the interface. Every object carries `annotations` naming the owner
 * (this host) and the endpoint. The steps run as core's saga: a failing step undoes what this
 * call created, the instance-ip (or our reference on Docker's reservation) first, then the
 * interface, then the VM (the server refuses to delete a VM an interface still refers to).
 */
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import * as T from 'fp-ts/lib/Task.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import {
  addressInUse,
  begin,
  bindStep,
  decodeWith,
  doStep,
  invalidConfig,
  IpAddress,
  joinCidr,
  MacAddress,
  splitCidr,
  type AddressRequest,
  type ControlPlane,
  type ControllerNetwork,
  type CoreError,
  type EndpointBinding,
  type EndpointRequest,
  type Network,
  type NetworkSubnet,
  type SagaEnv,
  type Step,
  type Store
} from '@isthmus/core'
import { isConflict, isControllerNotFound, type ConfigApi } from './client.js'
import { ownership, RESERVATION_PREFIX } from './marks.js'
import * as Obj from './Objects.js'

/** What endpoint creation needs from its control plane. */
export interface EndpointContext {
  readonly api: ConfigApi
  readonly owner: string
  readonly domain: string
  readonly securityGroup: string
  readonly store?: Store | undefined
}

/** The address asked for: any, a given one, or the one a Docker reservation holds. */
type Wanted =
  | { readonly _tag: 'Any' }
  | { readonly _tag: 'Static'; readonly address: IpAddress }
  | { readonly _tag: 'Reserved'; readonly iip: string; readonly address: IpAddress }

/** Everything fixed before the first request. */
interface Plan {
  readonly req: EndpointRequest
  readonly c: Required<ControllerNetwork>
  readonly ns: NetworkSubnet
  readonly wanted: Wanted
  readonly vmiFq: ReadonlyArray<string>
  readonly vmFq: ReadonlyArray<string>
  readonly vnRef: Obj.Ref
}

/** The interface and the VM, made together and undone together (interface first). */
interface Attached {
  readonly vmi: string
  readonly mac: MacAddress
  readonly vm: string
}

const READ_OWN = { excludeBackRefs: true, excludeChildren: true } as const

const refTo = (fq: ReadonlyArray<string>, uuid: string): Obj.Ref => ({ to: [...fq], uuid })

const controllerOf = (network: Network): E.Either<CoreError, Required<ControllerNetwork>> => {
  const c = network.controller
  if (
    c?.projectId === undefined ||
    c.networkId === undefined ||
    c.subnetId === undefined ||
    c.hostNetworkName === undefined
  ) {
    return E.left(invalidConfig(`network ${network.name} is not bound to a Contrail virtual network`))
  }
  return E.right(c as Required<ControllerNetwork>)
}

/** Whether the store holds `address` as a Docker reservation: its instance-ip, if so. */
const reservationOf = (
  store: Store,
  network: Network,
  address: IpAddress
): TE.TaskEither<CoreError, string | undefined> =>
  pipe(
    store.leases.get(network.addressSpace, address),
    TE.map(
      O.match(
        () => undefined,
        ({ owner: o }) =>
          o.kind === 'runtime' && o.ref.startsWith(RESERVATION_PREFIX)
            ? o.ref.slice(RESERVATION_PREFIX.length)
            : undefined
      )
    )
  )

const wantedOf = (
  ctx: EndpointContext,
  network: Network,
  reqs: ReadonlyArray<AddressRequest>
): TE.TaskEither<CoreError, Wanted> => {
  if (reqs.length > 1) {
    return TE.left(invalidConfig(`a Contrail endpoint has one address, ${reqs.length} were asked for`))
  }
  const r = reqs[0]
  if (r === undefined) return TE.right({ _tag: 'Any' })
  if (r._tag === 'Any') {
    return r.family === 4
      ? TE.right({ _tag: 'Any' })
      : TE.left(invalidConfig('Contrail networks are IPv4 only in isthmus'))
  }
  const address = r._tag === 'Static' ? r.address : splitCidr(r.cidr).address
  const asStatic: Wanted = { _tag: 'Static', address }
  if (r._tag !== 'Assigned' || ctx.store === undefined) return TE.right(asStatic)
  return pipe(
    reservationOf(ctx.store, network, address),
    TE.map((iip): Wanted => (iip === undefined ? asStatic : { _tag: 'Reserved', iip, address }))
  )
}

const planOf = (ctx: EndpointContext, network: Network, req: EndpointRequest): TE.TaskEither<CoreError, Plan> =>
  pipe(
    TE.fromEither(controllerOf(network)),
    TE.bindTo('c'),
    TE.bind('ns', () => {
      const ns = network.ipv4[0]
      return ns === undefined ? TE.left(invalidConfig(`network ${network.name} has no IPv4 subnet`)) : TE.right(ns)
    }),
    TE.bind('wanted', () => wantedOf(ctx, network, req.addresses)),
    TE.map(({ c, ns, wanted }) => ({
      req,
      c,
      ns,
      wanted,
      vmiFq: [ctx.domain, c.tenant, req.id],
      // CNM names only the endpoint, so the VM is named by it too
      vmFq: [req.id],
      vnRef: refTo([ctx.domain, c.tenant, c.network], c.networkId)
    }))
  )

/** A create that a retry may find already done: 409 means "look it up by name". */
const ensure = (
  api: ConfigApi,
  type: Obj.ObjectType,
  fq: ReadonlyArray<string>,
  body: unknown
): TE.TaskEither<CoreError, string> =>
  pipe(
    api.create(type, body),
    TE.map((made) => made.uuid),
    // 409 and no object of that name: the conflict was something else (an address in use).
    TE.orElse((e) =>
      isConflict(e)
        ? pipe(
            api.fqNameToId(type, fq),
            TE.orElse(() => TE.left(e))
          )
        : TE.left(e)
    )
  )

/** The project's security group, when it has one. */
const securityGroup = (ctx: EndpointContext, plan: Plan): TE.TaskEither<CoreError, Obj.Ref | undefined> => {
  const fq = [ctx.domain, plan.c.tenant, ctx.securityGroup]
  return pipe(
    ctx.api.fqNameToId('security-group', fq),
    TE.map((uuid): Obj.Ref | undefined => refTo(fq, uuid)),
    TE.orElse((e) => (isControllerNotFound(e) ? TE.right(undefined) : TE.left(e)))
  )
}

/** The interface (MAC from the controller unless the runtime chose one). */
const createInterface = (
  ctx: EndpointContext,
  plan: Plan,
  sg: Obj.Ref | undefined
): TE.TaskEither<CoreError, string> => {
  const { req } = plan
  const body: Obj.VirtualMachineInterfaceCreate = {
    fq_name: [...plan.vmiFq],
    parent_type: 'project',
    display_name: req.id,
    annotations: ownership(ctx.owner, req.id),
    port_security_enabled: true,
    virtual_network_refs: [plan.vnRef],
    ...(sg === undefined ? {} : { security_group_refs: [sg] }),
    ...(req.mac === undefined ? {} : { virtual_machine_interface_mac_addresses: { mac_address: [req.mac] } })
  }
  return ensure(ctx.api, 'virtual-machine-interface', plan.vmiFq, Obj.VirtualMachineInterfaceCreate.encode(body))
}

const readMac = (api: ConfigApi, vmi: string): TE.TaskEither<CoreError, MacAddress> =>
  pipe(
    api.read('virtual-machine-interface', vmi, Obj.VirtualMachineInterface, READ_OWN),
    TE.chainEitherK((r) =>
      decodeWith(
        MacAddress,
        'virtual_machine_interface_mac_addresses'
      )(r.virtual_machine_interface_mac_addresses?.mac_address[0])
    )
  )

const createVm = (ctx: EndpointContext, plan: Plan): TE.TaskEither<CoreError, string> => {
  const body = { fq_name: [...plan.vmFq], display_name: plan.req.id, annotations: ownership(ctx.owner, plan.req.id) }
  return ensure(ctx.api, 'virtual-machine', plan.vmFq, Obj.VirtualMachineCreate.encode(body))
}

/** Undo `attach`: the interface, then the VM even when the first failed; the first failure wins. */
const detach = (api: ConfigApi, a: Attached): TE.TaskEither<CoreError, void> =>
  pipe(
    api.remove('virtual-machine-interface', a.vmi),
    T.chain((first) =>
      pipe(
        api.remove('virtual-machine', a.vm),
        T.map((second) => (E.isLeft(first) ? first : second))
      )
    )
  )

/** The interface and the VM, a saga of its own: a VM that fails takes the interface back. */
const attach = (ctx: EndpointContext, plan: Plan, op: string, sg: Obj.Ref | undefined): Step<SagaEnv, Attached> =>
  pipe(
    begin<SagaEnv>(op),
    bindStep(
      'interface',
      () => RTE.fromTaskEither(createInterface(ctx, plan, sg)),
      (s) => RTE.fromTaskEither(ctx.api.remove('virtual-machine-interface', s.interface))
    ),
    bindStep('mac', (s) => RTE.fromTaskEither(readMac(ctx.api, s.interface))),
    bindStep('vm', () => RTE.fromTaskEither(createVm(ctx, plan))),
    RTE.map((s) => ({ vmi: s.interface, mac: s.mac, vm: s.vm }))
  )

/** The interface's reference to its VM. */
const vmLink = (plan: Plan, a: Attached): Obj.RefUpdateRequest => ({
  type: 'virtual-machine-interface',
  uuid: a.vmi,
  'ref-type': 'virtual-machine',
  'ref-uuid': a.vm,
  'ref-fq-name': [...plan.vmFq],
  operation: 'ADD',
  attr: null
})

/** An instance-ip's reference to the interface. */
const vmiRef = (plan: Plan, vmi: string, iip: string, operation: 'ADD' | 'DELETE'): Obj.RefUpdateRequest => ({
  type: 'instance-ip',
  uuid: iip,
  'ref-type': 'virtual-machine-interface',
  'ref-uuid': vmi,
  'ref-fq-name': [...plan.vmiFq],
  operation,
  attr: null
})

/** The instance-ip: created now, or Docker's reservation taken over (a reference to the interface). */
const assignAddress = (ctx: EndpointContext, plan: Plan, vmi: string): TE.TaskEither<CoreError, string> => {
  const { req, c, wanted: w } = plan
  if (w._tag === 'Reserved') {
    return pipe(
      ctx.api.refUpdate(vmiRef(plan, vmi, w.iip, 'ADD')),
      TE.map(() => w.iip)
    )
  }
  const body: Obj.InstanceIpCreate = {
    fq_name: [req.id],
    display_name: req.id,
    annotations: ownership(ctx.owner, req.id),
    subnet_uuid: c.subnetId,
    virtual_network_refs: [plan.vnRef],
    virtual_machine_interface_refs: [refTo(plan.vmiFq, vmi)],
    ...(w._tag === 'Static' ? { instance_ip_address: w.address } : {})
  }
  return pipe(
    ensure(ctx.api, 'instance-ip', [req.id], Obj.InstanceIpCreate.encode(body)),
    TE.mapLeft((e) =>
      isConflict(e) && w._tag === 'Static'
        ? addressInUse(w.address, `Contrail virtual network ${c.tenant}:${c.network}`, 'another instance-ip')
        : e
    )
  )
}

/** Undo `assignAddress`: Docker's reservation is Docker's to release (ReleaseAddress), so only our reference goes. */
const unassignAddress = (ctx: EndpointContext, plan: Plan, vmi: string, iip: string): TE.TaskEither<CoreError, void> =>
  plan.wanted._tag === 'Reserved'
    ? ctx.api.refUpdate(vmiRef(plan, vmi, iip, 'DELETE'))
    : ctx.api.remove('instance-ip', iip)

/** The address the controller gave, which must be the one asked for. */
const readAddress = (ctx: EndpointContext, plan: Plan, iip: string): TE.TaskEither<CoreError, IpAddress> => {
  const w = plan.wanted
  return pipe(
    ctx.api.read('instance-ip', iip, Obj.InstanceIp, READ_OWN),
    TE.chainEitherK((r) => decodeWith(IpAddress, 'instance_ip_address')(r.instance_ip_address)),
    TE.chainEitherK((ip) =>
      w._tag !== 'Any' && ip !== w.address
        ? E.left(invalidConfig(`Contrail gave instance-ip ${ip}, not the ${w.address} asked for`))
        : E.right(ip)
    )
  )
}

const bindingOf = (plan: Plan, a: Attached, iip: string, ip: IpAddress): EndpointBinding => {
  const { ns } = plan
  return {
    addresses: [
      {
        cidr: joinCidr(ip, splitCidr(ns.subnet).prefix),
        ...(ns.gateway === undefined ? {} : { gateway: ns.gateway }),
        ...(ns.poolId === undefined ? {} : { poolId: ns.poolId }),
        ...(plan.wanted._tag === 'Reserved' ? { fromRuntime: true } : {})
      }
    ],
    mac: a.mac,
    controller: { vmId: a.vm, interfaceId: a.vmi, instanceIpId: iip, projectId: plan.c.projectId }
  }
}

const createSteps = (ctx: EndpointContext, plan: Plan): Step<SagaEnv, EndpointBinding> => {
  const op = `contrail createEndpoint ${plan.req.id}`
  return pipe(
    begin<SagaEnv>(op),
    bindStep('securityGroup', () => RTE.fromTaskEither(securityGroup(ctx, plan))),
    bindStep(
      'interfaceAndVm',
      ({ securityGroup: sg }) => attach(ctx, plan, op, sg),
      ({ interfaceAndVm }) => RTE.fromTaskEither(detach(ctx.api, interfaceAndVm))
    ),
    // interface → VM (ADD is idempotent on the server); deleting the interface drops it
    doStep('link', ({ interfaceAndVm }) => RTE.fromTaskEither(ctx.api.refUpdate(vmLink(plan, interfaceAndVm)))),
    bindStep(
      'instanceIp',
      ({ interfaceAndVm }) => RTE.fromTaskEither(assignAddress(ctx, plan, interfaceAndVm.vmi)),
      ({ interfaceAndVm, instanceIp }) => RTE.fromTaskEither(unassignAddress(ctx, plan, interfaceAndVm.vmi, instanceIp))
    ),
    bindStep('address', ({ instanceIp }) => RTE.fromTaskEither(readAddress(ctx, plan, instanceIp))),
    RTE.map(({ interfaceAndVm, instanceIp, address }) => bindingOf(plan, interfaceAndVm, instanceIp, address))
  )
}

/**
 * `createEndpoint` of the Contrail ControlPlane; an undo that fails is logged (warn) on the
 * config API client's logger, with its step.
 *
 * @category utils
 */
export const createContrailEndpoint =
  (ctx: EndpointContext): ControlPlane['createEndpoint'] =>
  (network, req) =>
    pipe(
      planOf(ctx, network, req),
      TE.chain((plan) => createSteps(ctx, plan)({ log: ctx.api.log }))
    )
