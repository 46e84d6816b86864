/**
 * Contrail (Tungsten Fabric) VNC config API objects as on the wire (docs/contrail.md, "The
 * config API on the wire"; the schema is
 * https://github.com/tungstenfabric/tf-api-client/blob/master/schema/vnc_cfg.xsd):
 * hyphenated type names, underscored property names. Only the fields isthmus reads or
 * writes are named; decoding keeps the others (objects are open), encoding of our own create
 * bodies goes through `t.exact` so nothing else is sent.
 */
import * as t from 'io-ts'

/** A reference to another object; `attr` carries per-reference data (ipam subnets on a VN). @category codecs */
export const Ref = t.intersection(
  [t.type({ to: t.array(t.string) }), t.partial({ uuid: t.string, href: t.string, attr: t.unknown })],
  'Ref'
)
/** @category model */
export type Ref = t.TypeOf<typeof Ref>

/** @category codecs */
export const SubnetType = t.type({ ip_prefix: t.string, ip_prefix_len: t.number }, 'SubnetType')

/** IpamSubnetType: one subnet of a virtual network, with what the server computed for it. @category codecs */
export const IpamSubnet = t.intersection(
  [
    t.type({ subnet: SubnetType }),
    t.partial({
      default_gateway: t.union([t.string, t.null]),
      dns_server_address: t.union([t.string, t.null]),
      subnet_uuid: t.string,
      enable_dhcp: t.boolean,
      addr_from_start: t.boolean,
      subnet_name: t.string
    })
  ],
  'IpamSubnet'
)
/** @category model */
export type IpamSubnet = t.TypeOf<typeof IpamSubnet>

/** The `attr` of a VN's network_ipam_refs entry (VnSubnetsType). @category codecs */
export const VnSubnets = t.type({ ipam_subnets: t.array(IpamSubnet) }, 'VnSubnets')

/** `annotations` (KeyValuePairs): where isthmus marks what it created. @category codecs */
export const KeyValuePairs = t.type(
  { key_value_pair: t.array(t.type({ key: t.string, value: t.string })) },
  'KeyValuePairs'
)
/** @category model */
export type KeyValuePairs = t.TypeOf<typeof KeyValuePairs>

const common = {
  uuid: t.string,
  fq_name: t.array(t.string)
}
const commonOptional = {
  name: t.string,
  href: t.string,
  parent_type: t.string,
  parent_uuid: t.string,
  display_name: t.string,
  annotations: KeyValuePairs
}

/** @category codecs */
export const VirtualNetwork = t.intersection(
  [
    t.type(common),
    t.partial({
      ...commonOptional,
      network_ipam_refs: t.array(t.intersection([Ref, t.type({ attr: VnSubnets })])),
      instance_ip_back_refs: t.array(Ref)
    })
  ],
  'VirtualNetwork'
)
/** @category model */
export type VirtualNetwork = t.TypeOf<typeof VirtualNetwork>

/** @category codecs */
export const VirtualMachine = t.intersection(
  [t.type(common), t.partial({ ...commonOptional, virtual_machine_interface_back_refs: t.array(Ref) })],
  'VirtualMachine'
)
/** @category model */
export type VirtualMachine = t.TypeOf<typeof VirtualMachine>

/** @category codecs */
export const MacAddresses = t.type({ mac_address: t.array(t.string) }, 'MacAddresses')

/** @category codecs */
export const VirtualMachineInterface = t.intersection(
  [
    t.type(common),
    t.partial({
      ...commonOptional,
      virtual_machine_interface_mac_addresses: MacAddresses,
      virtual_network_refs: t.array(Ref),
      virtual_machine_refs: t.array(Ref),
      security_group_refs: t.array(Ref),
      instance_ip_back_refs: t.array(Ref),
      port_security_enabled: t.boolean
    })
  ],
  'VirtualMachineInterface'
)
/** @category model */
export type VirtualMachineInterface = t.TypeOf<typeof VirtualMachineInterface>

/** @category codecs */
export const InstanceIp = t.intersection(
  [
    t.type(common),
    t.partial({
      ...commonOptional,
      instance_ip_address: t.string,
      subnet_uuid: t.string,
      instance_ip_family: t.string,
      virtual_network_refs: t.array(Ref),
      virtual_machine_interface_refs: t.array(Ref)
    })
  ],
  'InstanceIp'
)
/** @category model */
export type InstanceIp = t.TypeOf<typeof InstanceIp>

/** @category codecs */
export const Project = t.intersection([t.type(common), t.partial(commonOptional)], 'Project')
/** @category model */
export type Project = t.TypeOf<typeof Project>

// -------------------------------------------------------------------------------------
// create bodies (what isthmus sends; exact, so nothing unnamed leaks)
// -------------------------------------------------------------------------------------

const RefOut = t.exact(t.intersection([t.type({ to: t.array(t.string) }), t.partial({ uuid: t.string })]), 'RefOut')

/** @category codecs */
export const VirtualMachineCreate = t.exact(
  t.intersection([
    t.type({ fq_name: t.array(t.string) }),
    t.partial({ display_name: t.string, annotations: KeyValuePairs })
  ]),
  'VirtualMachineCreate'
)
/** @category model */
export type VirtualMachineCreate = t.TypeOf<typeof VirtualMachineCreate>

/** @category codecs */
export const VirtualMachineInterfaceCreate = t.exact(
  t.intersection([
    t.type({
      fq_name: t.array(t.string),
      parent_type: t.literal('project'),
      virtual_network_refs: t.array(RefOut)
    }),
    t.partial({
      display_name: t.string,
      annotations: KeyValuePairs,
      port_security_enabled: t.boolean,
      security_group_refs: t.array(RefOut),
      virtual_machine_refs: t.array(RefOut),
      virtual_machine_interface_mac_addresses: MacAddresses
    })
  ]),
  'VirtualMachineInterfaceCreate'
)
/** @category model */
export type VirtualMachineInterfaceCreate = t.TypeOf<typeof VirtualMachineInterfaceCreate>

/** @category codecs */
export const InstanceIpCreate = t.exact(
  t.intersection([
    t.type({ fq_name: t.array(t.string), virtual_network_refs: t.array(RefOut) }),
    t.partial({
      display_name: t.string,
      annotations: KeyValuePairs,
      subnet_uuid: t.string,
      instance_ip_address: t.string,
      virtual_machine_interface_refs: t.array(RefOut)
    })
  ]),
  'InstanceIpCreate'
)
/** @category model */
export type InstanceIpCreate = t.TypeOf<typeof InstanceIpCreate>

// -------------------------------------------------------------------------------------
// generic requests and responses
// -------------------------------------------------------------------------------------

/** The short envelope a create answers with: read the object back for computed fields. @category codecs */
export const Created = t.intersection(
  [
    t.type({ uuid: t.string, fq_name: t.array(t.string) }),
    t.partial({ name: t.string, href: t.string, parent_uuid: t.string })
  ],
  'Created'
)
/** @category model */
export type Created = t.TypeOf<typeof Created>

/** POST /fqname-to-id @category codecs */
export const FqNameToIdRequest = t.type({ type: t.string, fq_name: t.array(t.string) }, 'FqNameToIdRequest')
/** @category codecs */
export const FqNameToIdResponse = t.type({ uuid: t.string }, 'FqNameToIdResponse')

/** POST /id-to-fqname @category codecs */
export const IdToFqNameRequest = t.type({ uuid: t.string }, 'IdToFqNameRequest')
/** @category codecs */
export const IdToFqNameResponse = t.type({ fq_name: t.array(t.string), type: t.string }, 'IdToFqNameResponse')

/** POST /ref-update @category codecs */
export const RefUpdateRequest = t.type(
  {
    type: t.string,
    uuid: t.string,
    'ref-type': t.string,
    'ref-uuid': t.string,
    'ref-fq-name': t.union([t.array(t.string), t.undefined]),
    operation: t.keyof({ ADD: null, DELETE: null }),
    attr: t.union([t.unknown, t.null])
  },
  'RefUpdateRequest'
)
/** @category model */
export type RefUpdateRequest = t.TypeOf<typeof RefUpdateRequest>
/** @category codecs */
export const RefUpdateResponse = t.type({ uuid: t.string }, 'RefUpdateResponse')

/** One entry of a list without `detail`. @category codecs */
export const ListEntry = t.intersection(
  [t.type({ uuid: t.string, fq_name: t.array(t.string) }), t.partial({ href: t.string })],
  'ListEntry'
)

/** The envelope of one object: `{"virtual-network": {...}}`. @category codecs */
export const envelope = <C extends t.Mixed>(type: string, codec: C) => t.type({ [type]: codec }, `${type} envelope`)

/** The answer of `GET /<type>s?detail=true`: `{"<type>s":[{"<type>":{...}}]}`. @category codecs */
export const detailList = <C extends t.Mixed>(type: string, codec: C) =>
  t.type({ [`${type}s`]: t.array(envelope(type, codec)) }, `${type} list`)

/** The object types isthmus touches. @category model */
export type ObjectType =
  | 'project'
  | 'virtual-network'
  | 'virtual-machine'
  | 'virtual-machine-interface'
  | 'instance-ip'
  | 'security-group'
  | 'network-ipam'
  | 'domain'
