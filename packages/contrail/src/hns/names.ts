/**
 * HNS names of Contrail objects, as the Contrail Windows driver gave them (docs/contrail.md,
 * "HNS"): a host network is named
 * `Contrail:<tenant>:<network>:<subnet>` and an endpoint by its endpoint id.
 *
 * The Go driver split names on `:`, so a tenant or network containing `:` corrupted the
 * association, and an IPv6 subnet could not be named at all. Here each field is escaped: `%`
 * becomes `%25` and `:` becomes `%3A` (percent-encoding of exactly those two characters), so the
 * name always has four `:`-separated fields and `parseHostNetworkName` gives back the original
 * fields. A name without `%` or `:` in its fields is the same as the Go driver's.
 */

/** @category constants */
export const HOST_NETWORK_PREFIX = 'Contrail'

/** What a host network name carries. @category model */
export interface HostNetworkFields {
  readonly tenant: string
  readonly network: string
  /** The subnet CIDR (`10.0.0.0/24`). */
  readonly subnet: string
}

/** Escape one field: `%` → `%25`, `:` → `%3A`. @category utils */
export const escapeField = (s: string): string => s.replace(/%/g, '%25').replace(/:/g, '%3A')

/** Undo `escapeField`; undefined for a field no escaping produces (a stray `%`). @category utils */
export const unescapeField = (s: string): string | undefined => {
  if (/%(?!25|3A|3a)/.test(s)) return undefined
  // one pass, so an unescaped `%` is never read again as the start of an escape
  return s.replace(/%(25|3A)/gi, (_m, g: string) => (g === '25' ? '%' : ':'))
}

/** `Contrail:<tenant>:<network>:<subnet>`, each field escaped. @category utils */
export const hostNetworkName = (f: HostNetworkFields): string =>
  [HOST_NETWORK_PREFIX, escapeField(f.tenant), escapeField(f.network), escapeField(f.subnet)].join(':')

/**
 * The fields of a host network name, or undefined when the name is not one isthmus made (other
 * prefix, wrong field count, bad escape): never an index out of range as in the Go driver.
 *
 * @category utils
 */
export const parseHostNetworkName = (name: string): HostNetworkFields | undefined => {
  const parts = name.split(':')
  if (parts.length !== 4 || parts[0] !== HOST_NETWORK_PREFIX) return undefined
  const [tenant, network, subnet] = parts.slice(1).map(unescapeField)
  if (tenant === undefined || network === undefined || subnet === undefined) return undefined
  return { tenant, network, subnet }
}
