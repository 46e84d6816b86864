/**
 * The rules isthmus wants for a network and for an endpoint's published ports, in the exact text
 * `iptables-save` prints (so an unchanged network costs no write), per address family.
 *
 * A network (tag `isthmus:net:<id>`):
 *  - nat `<P>-POSTROUTING`: masquerade what leaves the subnet through another interface (only with
 *    ipMasquerade and not internal; Docker's `-s <subnet> ! -o <bridge> -j MASQUERADE`); masquerade
 *    DNATed connections from the subnet back into the bridge (hairpin: a sandbox reaching another
 *    through a published port must see the reply come from the address it called), and DNATed
 *    connections from the host itself (127.0.0.1:<port> → sandbox; what Docker does without
 *    userland-proxy, together with route_localnet on the bridge).
 *  - filter `<P>-FORWARD`: accept the bridge's traffic (replies and published ports in, anything
 *    out); for an internal network accept only bridge-to-bridge and drop the rest both ways.
 *  - a cluster network (option `isthmus.cluster`): its masquerade spares destinations inside its
 *    subnet (a container on another host sees the sender's own address), and FORWARD accepts
 *    traffic of the subnet between the bridge and the VXLAN devices (`istx+`) both ways, internal
 *    or not.
 *  - filter `<P>-INPUT` (IPv4): route_localnet lets 127.0.0.0/8 packets in from the bridge, so drop
 *    those that are not replies to our own DNAT (the kube-proxy guard against CVE-2020-8558).
 * An endpoint (tag `isthmus:ep:<host veth>`): nat `<P>-DNAT`, jumped to from PREROUTING and OUTPUT
 * for local destinations, DNAT of each published port to the endpoint's address.
 */
import {
  CLUSTER_OPTION,
  familyOf,
  splitCidr,
  type Endpoint,
  type IfName,
  type Network,
  type PortMapping
} from '@isthmus/core'
import { chainNames, commentOf, type IpFamily, type Rule } from './iptables.js'
import { OVERLAY_IF_PREFIX } from './overlay/device.js'

/** The owner tag of a network's rules. @category utils */
export const networkTag = (network: Network): string => `isthmus:net:${network.id}`

/** The owner tag of an endpoint's rules: its host veth name is unique and fits any comment. @category utils */
export const endpointTag = (hostIfName: IfName | string): string => `isthmus:ep:${hostIfName}`

/** The rules of a network in one family (none when it has no subnet of that family). @category utils */
export const networkRules = (
  prefix: string,
  network: Network,
  bridge: string,
  family: IpFamily
): ReadonlyArray<Rule> => {
  const subnets = (family === 4 ? network.ipv4 : network.ipv6).map((s) => s.subnet)
  if (subnets.length === 0) return []
  const c = chainNames(prefix)
  const tag = commentOf(networkTag(network))
  const nat = (spec: string): Rule => ({ table: 'nat', chain: c.postrouting, spec })
  const fwd = (spec: string): Rule => ({ table: 'filter', chain: c.forward, spec })
  // A cluster network reaches its other hosts through the VXLAN devices: what crosses keeps its
  // source address, and is let through both ways.
  const cluster = network.options[CLUSTER_OPTION] !== undefined
  const overlay = `${OVERLAY_IF_PREFIX}+`
  const masquerade =
    network.ipMasquerade && !network.internal
      ? subnets.map((s) => nat(`-s ${s}${cluster ? ` ! -d ${s}` : ''} ! -o ${bridge} ${tag} -j MASQUERADE`))
      : []
  const hairpin = subnets.map((s) => nat(`-s ${s} -o ${bridge} -m conntrack --ctstate DNAT ${tag} -j MASQUERADE`))
  const fromHost =
    family === 4
      ? [nat(`-o ${bridge} -m addrtype --src-type LOCAL -m conntrack --ctstate DNAT ${tag} -j MASQUERADE`)]
      : []
  // Any isthmus VXLAN device, but only the network's own subnet on the far side: an internal
  // network must not reach another cluster network's hosts through that network's tunnel.
  const fromOverlay = cluster ? subnets.map((s) => fwd(`-s ${s} -i ${overlay} -o ${bridge} ${tag} -j ACCEPT`)) : []
  const toOverlay = cluster ? subnets.map((s) => fwd(`-d ${s} -i ${bridge} -o ${overlay} ${tag} -j ACCEPT`)) : []
  const forward = network.internal
    ? [
        fwd(`-i ${bridge} -o ${bridge} ${tag} -j ACCEPT`),
        ...toOverlay,
        ...fromOverlay,
        fwd(`-i ${bridge} ${tag} -j DROP`),
        fwd(`-o ${bridge} ${tag} -j DROP`)
      ]
    : [
        fwd(`-o ${bridge} -m conntrack --ctstate RELATED,ESTABLISHED ${tag} -j ACCEPT`),
        fwd(`-o ${bridge} -m conntrack --ctstate DNAT ${tag} -j ACCEPT`),
        // (out of the bridge into the tunnel is accepted with the rest of what leaves it)
        ...fromOverlay,
        fwd(`-i ${bridge} ${tag} -j ACCEPT`)
      ]
  const localnetGuard =
    family === 4
      ? [
          {
            table: 'filter',
            chain: c.input,
            spec: `-d 127.0.0.0/8 -i ${bridge} -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT ${tag} -j DROP`
          }
        ]
      : []
  return [...masquerade, ...hairpin, ...fromHost, ...forward, ...localnetGuard]
}

// 0.0.0.0 and :: mean "every address of the host", as in Docker's `-p 0.0.0.0:8080:80`.
const ANY = new Set(['0.0.0.0', '::'])

/**
 * DNAT rules for `ports` of an endpoint in one family: to the endpoint's first address of that
 * family. A mapping with a host IP of the other family, or an endpoint without an address of
 * this family, gives no rule here.
 *
 * @category utils
 */
export const portRules = (
  prefix: string,
  endpoint: Endpoint,
  ports: ReadonlyArray<PortMapping>,
  family: IpFamily
): ReadonlyArray<Rule> => {
  const address = endpoint.addresses.map((a) => a.cidr).find((c) => familyOf(c) === family)
  if (address === undefined) return []
  const ip = splitCidr(address).address
  const to = family === 4 ? ip : `[${ip}]`
  const tag = commentOf(endpointTag(endpoint.hostIfName))
  const chain = chainNames(prefix).dnat
  return ports
    .filter((p) => p.hostIp === undefined || familyOf(p.hostIp) === family)
    .map((p): Rule => {
      const dst = p.hostIp === undefined || ANY.has(p.hostIp) ? '' : `-d ${p.hostIp}/${family === 4 ? 32 : 128} `
      return {
        table: 'nat',
        chain,
        spec: `${dst}-p ${p.protocol} -m ${p.protocol} --dport ${p.hostPort} ${tag} -j DNAT --to-destination ${to}:${p.containerPort}`
      }
    })
}

/** The families an endpoint's port rules may live in: those of its addresses. @category utils */
export const endpointFamilies = (endpoint: Endpoint): ReadonlyArray<IpFamily> =>
  ([4, 6] as const).filter((f) => endpoint.addresses.some((a) => familyOf(a.cidr) === f))

/** The families a network has subnets in. @category utils */
export const networkFamilies = (network: Network): ReadonlyArray<IpFamily> =>
  ([4, 6] as const).filter((f) => (f === 4 ? network.ipv4 : network.ipv6).length > 0)
