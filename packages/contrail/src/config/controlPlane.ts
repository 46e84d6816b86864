/**
 * The Contrail ControlPlane: a network is an existing Contrail virtual network (project = the
 * tenant), an endpoint is a virtual-machine-interface, a virtual-machine and an instance-ip
 * (contrail-hns-agent.md §1.3, §2.5). The controller assigns the address (the instance-ip), the
 * MAC (from the interface's uuid) and the gateway (the subnet's default_gateway).
 *
 * Creation order: interface, VM, interface→VM reference, instance-ip. The interface comes first
 * because it is the one object with a parent (the project): whatever a killed run left behind
 * can then be found by listing the project's interfaces (see `reconcile.ts`), and the VM and
 * instance-ip are found from the interface. Every object carries `annotations` naming the owner
 * (this host) and the endpoint. A failing step deletes what this call created, in reverse;
 * deletion is always instance-ip, then interface, then VM, with 404 meaning done.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import {
  addressInUse,
  DEFAULT_LOCAL_SPACE,
  decodeWith,
  IpAddress,
  invalidConfig,
  joinCidr,
  MacAddress,
  splitCidr,
  Subnet,
  type AddressRequest,
  type ControlPlane,
  type ControllerEndpoint,
  type ControllerNetwork,
  type CoreError,
  type EndpointAddress,
  type EndpointBinding,
  type Network,
  type NetworkSubnet,
  type Store
} from '@isthmus/core'
import { hostNetworkName } from '../hns/names.js'
import { isConflict, isControllerNotFound, type ConfigApi } from './client.js'
import * as Obj from './Objects.js'

/** @category model */
export interface ContrailControlPlaneOptions {
  readonly api: ConfigApi
  /** Written into every object's annotations, so reconcile knows what this host created. */
  readonly owner: string
  /** Where Docker's address reservations are found (see `contrailIpam`); without it, every Assigned address is asked for as a static one. */
  readonly store?: Store
  readonly domain?: string
  /** The project's security group every interface joins; skipped when the project has none. */
  readonly securityGroup?: string
}

/** @category constants */
export const DEFAULT_DOMAIN = 'default-domain'
/** Annotation keys on objects isthmus creates. @category constants */
export const OWNER_KEY = 'isthmus-owner'
/** @category constants */
export const ENDPOINT_KEY = 'isthmus-endpoint'
/** Lease owner refs of Docker reservations: `contrail-iip:<instance-ip uuid>`. @category constants */
export const RESERVATION_PREFIX = 'contrail-iip:'

type Task<A> = Promise<E.Either<CoreError, A>>

/** The subnets of a virtual network, each with the CIDR decoded. @category utils */
export const subnetsOf = (vn: Obj.VirtualNetwork): ReadonlyArray<{ readonly cidr: Subnet; readonly ipam: Obj.IpamSubnet }> =>
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

/** `annotations` marking an object as this owner's, for this endpoint. @category utils */
export const ownership = (owner: string, endpoint: string): Obj.KeyValuePairs => ({
  key_value_pair: [
    { key: OWNER_KEY, value: owner },
    { key: ENDPOINT_KEY, value: endpoint }
  ]
})

/** The value of an annotation key, if the object has it. @category utils */
export const annotation = (o: { readonly annotations?: Obj.KeyValuePairs | undefined }, key: string): string | undefined =>
  o.annotations?.key_value_pair.find((p) => p.key === key)?.value

const controllerOf = (network: Network): E.Either<CoreError, Required<ControllerNetwork>> => {
  const c = network.controller
  if (c?.projectId === undefined || c.networkId === undefined || c.subnetId === undefined || c.hostNetworkName === undefined) {
    return E.left(invalidConfig(`network ${network.name} is not bound to a Contrail virtual network`))
  }
  return E.right(c as Required<ControllerNetwork>)
}

/**
 * The ControlPlane over the Contrail config API.
 *
 * @category constructors
 */
export const contrailControlPlane = (options: ContrailControlPlaneOptions): ControlPlane => {
  const { api, owner } = options
  const domain = options.domain ?? DEFAULT_DOMAIN
  const sgName = options.securityGroup ?? 'default'

  /** A create that a retry may find already done: 409 means "look it up by name". */
  const ensure = async (type: Obj.ObjectType, fqName: ReadonlyArray<string>, body: unknown): Task<{ uuid: string; created: boolean }> => {
    const made = await api.create(type, body)()
    if (E.isRight(made)) return E.right({ uuid: made.right.uuid, created: true })
    if (!isConflict(made.left)) return made
    const found = await api.fqNameToId(type, fqName)()
    // 409 and no object of that name: the conflict was something else (an address in use).
    return E.isRight(found) ? E.right({ uuid: found.right, created: false }) : made
  }

  // ---------------------------------------------------------------------------------
  // networks: resolve, never create (the virtual network is the operator's)
  // ---------------------------------------------------------------------------------

  const ensureNetwork: ControlPlane['ensureNetwork'] = (spec) => async () => {
    const c = spec.controller
    if (c === undefined) return E.left(invalidConfig(`network ${spec.name} names no Contrail tenant and network`))
    const v4 = spec.subnets.filter((s) => (s.subnet === undefined ? s.family === 4 : !s.subnet.includes(':')))
    if (v4.length !== spec.subnets.length) {
      return E.left(invalidConfig(`network ${spec.name}: Contrail networks are IPv4 only in isthmus`))
    }
    if (v4.length > 1) return E.left(invalidConfig(`network ${spec.name}: a Contrail network takes one subnet, ${v4.length} were given`))
    const projectId = await api.fqNameToId('project', [domain, c.tenant])()
    if (E.isLeft(projectId)) return projectId
    const fq = [domain, c.tenant, c.network]
    const networkId = await api.fqNameToId('virtual-network', fq)()
    if (E.isLeft(networkId)) return networkId
    const vn = await api.read('virtual-network', networkId.right, Obj.VirtualNetwork, { excludeBackRefs: true, excludeChildren: true })()
    if (E.isLeft(vn)) return vn
    const subnets = subnetsOf(vn.right)
    const req = v4[0]
    const name = fq.join(':')
    if (subnets.length === 0) return E.left(invalidConfig(`Contrail virtual network ${name} has no IPAM subnet`))
    let chosen = subnets[0]!
    if (req?.subnet !== undefined) {
      const m = subnets.find((s) => s.cidr === req.subnet)
      if (m === undefined) {
        return E.left(invalidConfig(`Contrail virtual network ${name} has no subnet ${req.subnet} (it has ${subnets.map((s) => s.cidr).join(', ')})`))
      }
      chosen = m
    } else if (subnets.length > 1) {
      return E.left(invalidConfig(`Contrail virtual network ${name} has ${subnets.length} subnets: name one (docker --subnet, CNI contrail.subnet)`))
    }
    const subnetId = chosen.ipam.subnet_uuid
    if (subnetId === undefined) return E.left(invalidConfig(`subnet ${chosen.cidr} of ${name} has no subnet_uuid`))
    const gateway = gatewayOf(chosen.ipam)
    const ns: NetworkSubnet = {
      subnet: chosen.cidr,
      ...(gateway === undefined ? {} : { gateway }),
      // Docker: the pool our IPAM driver gave; addresses still come from the controller (contrailIpam)
      ...(req?.poolId === undefined ? {} : { poolId: req.poolId, ownedPool: false })
    }
    return E.right({
      addressSpace: spec.addressSpace ?? DEFAULT_LOCAL_SPACE,
      ipv4: [ns],
      ipv6: [],
      controller: {
        tenant: c.tenant,
        network: c.network,
        projectId: projectId.right,
        networkId: networkId.right,
        subnetId,
        hostNetworkName: hostNetworkName({ tenant: c.tenant, network: c.network, subnet: chosen.cidr })
      }
    })
  }

  const deleteNetwork: ControlPlane['deleteNetwork'] = () => async () => E.right(undefined)

  // ---------------------------------------------------------------------------------
  // endpoints
  // ---------------------------------------------------------------------------------

  type Wanted = { readonly _tag: 'Any' } | { readonly _tag: 'Static'; readonly address: IpAddress } | { readonly _tag: 'Reserved'; readonly iip: string; readonly address: IpAddress }

  const wantedOf = async (network: Network, reqs: ReadonlyArray<AddressRequest>): Task<Wanted> => {
    if (reqs.length > 1) return E.left(invalidConfig(`a Contrail endpoint has one address, ${reqs.length} were asked for`))
    const r = reqs[0]
    if (r === undefined) return E.right({ _tag: 'Any' })
    if (r._tag === 'Any') return r.family === 4 ? E.right({ _tag: 'Any' }) : E.left(invalidConfig('Contrail networks are IPv4 only in isthmus'))
    const address = r._tag === 'Static' ? r.address : splitCidr(r.cidr).address
    if (r._tag === 'Assigned' && options.store !== undefined) {
      const held = await options.store.leases.get(network.addressSpace, address)()
      if (E.isLeft(held)) return held
      if (O.isSome(held.right)) {
        const o = held.right.value.owner
        if (o.kind === 'runtime' && o.ref.startsWith(RESERVATION_PREFIX)) {
          return E.right({ _tag: 'Reserved', iip: o.ref.slice(RESERVATION_PREFIX.length), address })
        }
      }
    }
    return E.right({ _tag: 'Static', address })
  }

  const refTo = (fq: ReadonlyArray<string>, uuid: string) => ({ to: [...fq], uuid })

  const createEndpoint: ControlPlane['createEndpoint'] = (network, req) => async () => {
    const ctl = controllerOf(network)
    if (E.isLeft(ctl)) return ctl
    const c = ctl.right
    const ns = network.ipv4[0]
    if (ns === undefined) return E.left(invalidConfig(`network ${network.name} has no IPv4 subnet`))
    const wanted = await wantedOf(network, req.addresses)
    if (E.isLeft(wanted)) return wanted
    const w = wanted.right
    const marks = ownership(owner, req.id)
    const vnRef = refTo([domain, c.tenant, c.network], c.networkId)
    // What this call created, undone in the one order the server accepts: the instance-ip (or
    // our reference on Docker's reservation), the interface (it refers to the VM), the VM.
    const made: { vmi?: string; vm?: string; iip?: string; adopted?: string } = {}
    const vmiFq = [domain, c.tenant, req.id]
    const vmFq = [req.id]
    const fail = async <A>(e: CoreError): Task<A> => {
      if (made.adopted !== undefined && made.vmi !== undefined) {
        await api.refUpdate({
          type: 'instance-ip',
          uuid: made.adopted,
          'ref-type': 'virtual-machine-interface',
          'ref-uuid': made.vmi,
          'ref-fq-name': vmiFq,
          operation: 'DELETE',
          attr: null
        })()
      }
      if (made.iip !== undefined) await api.remove('instance-ip', made.iip)()
      if (made.vmi !== undefined) await api.remove('virtual-machine-interface', made.vmi)()
      if (made.vm !== undefined) await api.remove('virtual-machine', made.vm)()
      return E.left(e)
    }

    // 0) the project's default security group, when it has one
    const sgFq = [domain, c.tenant, sgName]
    const sg = await api.fqNameToId('security-group', sgFq)()
    if (E.isLeft(sg) && !isControllerNotFound(sg.left)) return sg

    // 1) the interface (MAC from the controller unless the runtime chose one)
    const vmiBody: Obj.VirtualMachineInterfaceCreate = {
      fq_name: vmiFq,
      parent_type: 'project',
      display_name: req.id,
      annotations: marks,
      port_security_enabled: true,
      virtual_network_refs: [vnRef],
      ...(E.isRight(sg) ? { security_group_refs: [refTo(sgFq, sg.right)] } : {}),
      ...(req.mac === undefined ? {} : { virtual_machine_interface_mac_addresses: { mac_address: [req.mac] } })
    }
    const vmi = await ensure('virtual-machine-interface', vmiFq, Obj.VirtualMachineInterfaceCreate.encode(vmiBody))
    if (E.isLeft(vmi)) return vmi
    const vmiId = vmi.right.uuid
    made.vmi = vmiId
    const vmiRead = await api.read('virtual-machine-interface', vmiId, Obj.VirtualMachineInterface, { excludeBackRefs: true, excludeChildren: true })()
    if (E.isLeft(vmiRead)) return fail(vmiRead.left)
    const macText = vmiRead.right.virtual_machine_interface_mac_addresses?.mac_address[0]
    const mac = decodeWith(MacAddress, 'virtual_machine_interface_mac_addresses')(macText)
    if (E.isLeft(mac)) return fail(mac.left)

    // 2) the VM (the container; CNM names only the endpoint, so the VM is named by it too)
    const vm = await ensure('virtual-machine', vmFq, Obj.VirtualMachineCreate.encode({ fq_name: vmFq, display_name: req.id, annotations: marks }))
    if (E.isLeft(vm)) return fail(vm.left)
    const vmId = vm.right.uuid
    made.vm = vmId

    // 3) interface → VM (ADD is idempotent on the server)
    const linked = await api.refUpdate({
      type: 'virtual-machine-interface',
      uuid: vmiId,
      'ref-type': 'virtual-machine',
      'ref-uuid': vmId,
      'ref-fq-name': vmFq,
      operation: 'ADD',
      attr: null
    })()
    if (E.isLeft(linked)) return fail(linked.left)

    // 4) the instance-ip: created now, or Docker's reservation taken over
    let iipId: string
    if (w._tag === 'Reserved') {
      iipId = w.iip
      const adopted = await api.refUpdate({
        type: 'instance-ip',
        uuid: iipId,
        'ref-type': 'virtual-machine-interface',
        'ref-uuid': vmiId,
        'ref-fq-name': vmiFq,
        operation: 'ADD',
        attr: null
      })()
      if (E.isLeft(adopted)) return fail(adopted.left)
      // the reservation itself is Docker's to release (ReleaseAddress): a rollback only drops our reference
      made.adopted = iipId
    } else {
      const iipFq = [req.id]
      const body: Obj.InstanceIpCreate = {
        fq_name: iipFq,
        display_name: req.id,
        annotations: marks,
        subnet_uuid: c.subnetId,
        virtual_network_refs: [vnRef],
        virtual_machine_interface_refs: [refTo(vmiFq, vmiId)],
        ...(w._tag === 'Static' ? { instance_ip_address: w.address } : {})
      }
      const iip = await ensure('instance-ip', iipFq, Obj.InstanceIpCreate.encode(body))
      if (E.isLeft(iip)) {
        const e = iip.left
        return fail(
          isConflict(e) && w._tag === 'Static'
            ? addressInUse(w.address, `Contrail virtual network ${c.tenant}:${c.network}`, 'another instance-ip')
            : e
        )
      }
      iipId = iip.right.uuid
      made.iip = iipId
    }
    const iipRead = await api.read('instance-ip', iipId, Obj.InstanceIp, { excludeBackRefs: true, excludeChildren: true })()
    if (E.isLeft(iipRead)) return fail(iipRead.left)
    const ip = decodeWith(IpAddress, 'instance_ip_address')(iipRead.right.instance_ip_address)
    if (E.isLeft(ip)) return fail(ip.left)
    if (w._tag !== 'Any' && ip.right !== w.address) {
      return fail(invalidConfig(`Contrail gave instance-ip ${ip.right}, not the ${w.address} asked for`))
    }

    const address: EndpointAddress = {
      cidr: joinCidr(ip.right, splitCidr(ns.subnet).prefix),
      ...(ns.gateway === undefined ? {} : { gateway: ns.gateway }),
      ...(ns.poolId === undefined ? {} : { poolId: ns.poolId }),
      ...(w._tag === 'Reserved' ? { fromRuntime: true } : {})
    }
    const identity: ControllerEndpoint = { vmId, interfaceId: vmiId, instanceIpId: iipId, projectId: c.projectId }
    const binding: EndpointBinding = { addresses: [address], mac: mac.right, controller: identity }
    return E.right(binding)
  }

  const deleteEndpoint: ControlPlane['deleteEndpoint'] = (network, endpoint) => async () => {
    const c = network.controller
    if (c === undefined) return E.right(undefined)
    return removeEndpointObjects(api, domain, c.tenant, endpoint.id, endpoint.controller ?? {})
  }

  return { ensureNetwork, deleteNetwork, createEndpoint, deleteEndpoint }
}

/** The uuid of `fq`, or undefined when the controller has no such object. */
const lookup = async (api: ConfigApi, type: Obj.ObjectType, fq: ReadonlyArray<string>): Task<string | undefined> => {
  const r = await api.fqNameToId(type, fq)()
  if (E.isRight(r)) return r
  return isControllerNotFound(r.left) ? E.right(undefined) : r
}

/**
 * Delete an endpoint's objects: every instance-ip on its interface (and the one recorded), then
 * the interface, then the VM. Ids not recorded (a run killed before the record) are found by the
 * names isthmus gives. 404 anywhere means already gone.
 *
 * @category utils
 */
export const removeEndpointObjects = async (
  api: ConfigApi,
  domain: string,
  tenant: string,
  endpointId: string,
  known: ControllerEndpoint
): Task<void> => {
  const vmi = known.interfaceId !== undefined ? E.right(known.interfaceId) : await lookup(api, 'virtual-machine-interface', [domain, tenant, endpointId])
  if (E.isLeft(vmi)) return vmi
  const iips = new Set<string>(known.instanceIpId === undefined ? [] : [known.instanceIpId])
  if (vmi.right !== undefined) {
    const r = await api.read('virtual-machine-interface', vmi.right, Obj.VirtualMachineInterface, { fields: ['instance_ip_back_refs'] })()
    if (E.isLeft(r)) {
      if (!isControllerNotFound(r.left)) return r
    } else {
      for (const b of r.right.instance_ip_back_refs ?? []) if (b.uuid !== undefined) iips.add(b.uuid)
    }
  }
  const named = await lookup(api, 'instance-ip', [endpointId])
  if (E.isLeft(named)) return named
  if (named.right !== undefined) iips.add(named.right)
  for (const iip of iips) {
    const r = await api.remove('instance-ip', iip)()
    if (E.isLeft(r)) return r
  }
  if (vmi.right !== undefined) {
    const r = await api.remove('virtual-machine-interface', vmi.right)()
    if (E.isLeft(r)) return r
  }
  const vm = known.vmId !== undefined ? E.right(known.vmId) : await lookup(api, 'virtual-machine', [endpointId])
  if (E.isLeft(vm)) return vm
  return vm.right === undefined ? E.right(undefined) : api.remove('virtual-machine', vm.right)()
}

