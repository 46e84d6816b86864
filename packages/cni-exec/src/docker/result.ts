/**
 * The CNI result of a Docker attachment (pure): what `GET /containers/{id}/json` says about the
 * endpoint, the interface name found in the sandbox, and the routes through it.
 */
import type { Dns } from '../protocol/NetConf.js'
import type { IpConfig, Result, ResultRoute } from '../protocol/Result.js'
import type { ContainerInspect, EndpointSettings } from '@isthmus/core'
import type { SandboxRoute } from '@isthmus/core'

const addressesOf = (ep: EndpointSettings): ReadonlyArray<IpConfig> => {
  const one = (address: string | undefined, prefix: number | undefined, gateway: string | undefined): IpConfig[] =>
    address === undefined || address === '' || prefix === undefined
      ? []
      : [
          {
            address: `${address}/${prefix}`,
            ...(gateway === undefined || gateway === '' ? {} : { gateway }),
            interface: 0
          }
        ]
  return [
    ...one(ep.IPAddress, ep.IPPrefixLen, ep.Gateway),
    ...one(ep.GlobalIPv6Address, ep.GlobalIPv6PrefixLen, ep.IPv6Gateway)
  ]
}

/** The container's DNS settings (`--dns`, `--dns-search`, `--dns-option`), when it has any. */
const dnsOf = (c: ContainerInspect): Dns => {
  const h = c.HostConfig
  const nonEmpty = (l: ReadonlyArray<string> | null | undefined): l is ReadonlyArray<string> =>
    l !== undefined && l !== null && l.length > 0
  return {
    ...(nonEmpty(h.Dns) ? { nameservers: [...h.Dns] } : {}),
    ...(nonEmpty(h.DnsSearch) ? { search: [...h.DnsSearch] } : {}),
    ...(nonEmpty(h.DnsOptions) ? { options: [...h.DnsOptions] } : {})
  }
}

/**
 * One interface (the container's, with its MAC and the container's SandboxKey), its addresses
 * with their gateways, the routes through it that go via a gateway (the connected subnet's own
 * route is implied by the address), and the netconf's `dns`, else the container's.
 *
 * @category utils
 */
export const dockerResult = (
  c: ContainerInspect,
  ep: EndpointSettings,
  ifName: string,
  routes: ReadonlyArray<SandboxRoute>,
  dns: Dns | undefined
): Result => ({
  interfaces: [
    {
      name: ifName,
      ...(ep.MacAddress === undefined || ep.MacAddress === '' ? {} : { mac: ep.MacAddress }),
      sandbox: c.NetworkSettings.SandboxKey
    }
  ],
  ips: addressesOf(ep),
  routes: routes.flatMap((r): ResultRoute[] => (r.gw === undefined ? [] : [{ dst: r.dst, gw: r.gw }])),
  dns: dns ?? dnsOf(c)
})

/** The addresses Docker holds for the attachment, as CIDRs. @category utils */
export const dockerAddresses = (ep: EndpointSettings): ReadonlyArray<string> => addressesOf(ep).map((ip) => ip.address)
