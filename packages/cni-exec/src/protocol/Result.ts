/**
 * Results per version (CNI SPEC §Result; reference pkg/types/040 and 100) and the converters
 * between them. A result is built once in the 1.x shape (`Result`) and converted to the
 * request's version on the way out; a `prevResult` in any supported version is converted in.
 *
 * | version             | shape                                      |
 * |---------------------|--------------------------------------------|
 * | 0.3.0, 0.3.1, 0.4.0 | `ips[]` entries carry `"version": "4"/"6"` |
 * | 1.0.0, 1.1.0        | no `version`; 1.1.0 adds interface and route fields (carried along) |
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as t from 'io-ts'
import { Code, cniError, decodeAs, type CniError } from './Error.js'
import { isPre1, SUPPORTED_VERSIONS, type SupportedVersion } from './Version.js'

// -------------------------------------------------------------------------------------
// codecs
// -------------------------------------------------------------------------------------

/** @category codecs */
export const Interface = t.intersection(
  [
    t.type({ name: t.string }),
    t.partial({ mac: t.string, mtu: t.number, sandbox: t.string, socketPath: t.string, pciID: t.string })
  ],
  'Interface'
)
/** @category model */
export type Interface = t.TypeOf<typeof Interface>

/** An `ips[]` entry of a 1.x result; `interface` is an index into `interfaces`. @category codecs */
export const IpConfig = t.intersection(
  [t.type({ address: t.string }), t.partial({ gateway: t.string, interface: t.number })],
  'IpConfig'
)
/** @category model */
export type IpConfig = t.TypeOf<typeof IpConfig>

/** An `ips[]` entry of a 0.3.x/0.4.0 result. @category codecs */
export const IpConfig040 = t.intersection(
  [
    t.type({ version: t.keyof({ '4': null, '6': null }), address: t.string }),
    t.partial({ gateway: t.string, interface: t.number })
  ],
  'IpConfig040'
)
/** @category model */
export type IpConfig040 = t.TypeOf<typeof IpConfig040>

/** @category codecs */
export const ResultRoute = t.intersection(
  [
    t.type({ dst: t.string }),
    t.partial({ gw: t.string, mtu: t.number, advmss: t.number, priority: t.number, table: t.number, scope: t.number })
  ],
  'ResultRoute'
)
/** @category model */
export type ResultRoute = t.TypeOf<typeof ResultRoute>

/** @category codecs */
export const ResultDns = t.partial(
  { nameservers: t.array(t.string), domain: t.string, search: t.array(t.string), options: t.array(t.string) },
  'ResultDns'
)
/** @category model */
export type ResultDns = t.TypeOf<typeof ResultDns>

const body = <I extends t.Mixed>(ip: I) =>
  t.partial({ interfaces: t.array(Interface), ips: t.array(ip), routes: t.array(ResultRoute), dns: ResultDns })

/** A 1.0.0 / 1.1.0 result. @category codecs */
export const Result100 = t.intersection([t.type({ cniVersion: t.string }), body(IpConfig)], 'Result100')
/** @category model */
export type Result100 = t.TypeOf<typeof Result100>

/** A 0.3.0 / 0.3.1 / 0.4.0 result. @category codecs */
export const Result040 = t.intersection([t.type({ cniVersion: t.string }), body(IpConfig040)], 'Result040')
/** @category model */
export type Result040 = t.TypeOf<typeof Result040>

/** The version-free result the commands build (1.x shape without `cniVersion`). @category model */
export interface Result {
  readonly interfaces?: ReadonlyArray<Interface>
  readonly ips?: ReadonlyArray<IpConfig>
  readonly routes?: ReadonlyArray<ResultRoute>
  readonly dns?: ResultDns
}

// -------------------------------------------------------------------------------------
// converters
// -------------------------------------------------------------------------------------

const familyOfAddress = (cidr: string): '4' | '6' => (cidr.includes(':') ? '6' : '4')

// Known keys only, in the spec's order; absent optional fields stay absent.
const ipOut = (ip: IpConfig): IpConfig => ({
  address: ip.address,
  ...(ip.gateway === undefined ? {} : { gateway: ip.gateway }),
  ...(ip.interface === undefined ? {} : { interface: ip.interface })
})

/**
 * The result in `version`'s shape: 0.3.x/0.4.0 add `version` to each ip from its family (libcni
 * convert.go); everything else is carried as it is.
 *
 * @category utils
 */
export const toVersion = (r: Result, version: SupportedVersion): Result100 | Result040 => {
  const rest = {
    ...(r.interfaces === undefined ? {} : { interfaces: r.interfaces.map((i) => ({ ...i })) })
  }
  const routes = r.routes === undefined ? {} : { routes: r.routes.map((x) => ({ ...x })) }
  const dns = { dns: { ...(r.dns ?? {}) } }
  if (isPre1(version)) {
    const ips =
      r.ips === undefined
        ? {}
        : { ips: r.ips.map((ip): IpConfig040 => ({ version: familyOfAddress(ip.address), ...ipOut(ip) })) }
    return { cniVersion: version, ...rest, ...ips, ...routes, ...dns }
  }
  const ips = r.ips === undefined ? {} : { ips: r.ips.map(ipOut) }
  return { cniVersion: version, ...rest, ...ips, ...routes, ...dns }
}

/** The result without its version: 0.3.x/0.4.0 drop `ips[].version`. @category utils */
export const fromVersioned = (r: Result100 | Result040): Result => ({
  ...(r.interfaces === undefined ? {} : { interfaces: r.interfaces }),
  ...(r.ips === undefined ? {} : { ips: r.ips.map(ipOut) }),
  ...(r.routes === undefined ? {} : { routes: r.routes }),
  ...(r.dns === undefined ? {} : { dns: r.dns })
})

/**
 * Decode a `prevResult` (or a delegate's answer). Its own `cniVersion` decides the shape; absent,
 * the netconf's (libcni does the same). Versions this plugin does not speak are code 1.
 *
 * @category codecs
 */
export const decodeResult = (u: unknown, fallbackVersion: string, what = 'prevResult'): E.Either<CniError, Result> => {
  const own = typeof u === 'object' && u !== null ? (u as Record<string, unknown>)['cniVersion'] : undefined
  const version = typeof own === 'string' && own !== '' ? own : fallbackVersion
  if (!(SUPPORTED_VERSIONS as ReadonlyArray<string>).includes(version)) {
    return E.left(cniError(Code.IncompatibleVersion, `unsupported CNI result version "${version}"`, `in ${what}`))
  }
  const versioned = { ...(u as object), cniVersion: version }
  const decoded: E.Either<CniError, Result100 | Result040> = isPre1(version as SupportedVersion)
    ? decodeAs(Result040, Code.Decode, `invalid ${what}`)(versioned)
    : decodeAs(Result100, Code.Decode, `invalid ${what}`)(versioned)
  return pipe(decoded, E.map(fromVersioned))
}

/**
 * Chain `ours` after `prev` (CNI SPEC §prevResult: a plugin outputs the previous result with its
 * own changes): interfaces appended with ips' indices shifted, ips and routes appended, `dns`
 * ours when we have one.
 *
 * @category utils
 */
export const appendResult = (prev: Result, ours: Result): Result => {
  const offset = prev.interfaces?.length ?? 0
  const hasDns = ours.dns !== undefined && Object.keys(ours.dns).length > 0
  return {
    interfaces: [...(prev.interfaces ?? []), ...(ours.interfaces ?? [])],
    ips: [
      ...(prev.ips ?? []),
      ...(ours.ips ?? []).map((ip) => (ip.interface === undefined ? ip : { ...ip, interface: ip.interface + offset }))
    ],
    routes: [...(prev.routes ?? []), ...(ours.routes ?? [])],
    ...(hasDns ? { dns: ours.dns } : prev.dns === undefined ? {} : { dns: prev.dns })
  }
}

/** An IPAM plugin's result: no interfaces, no `ips[].interface` (CNI SPEC §IPAM). @category utils */
export const asIpamResult = (r: Result): Result => ({
  ips: (r.ips ?? []).map((ip) => ({
    address: ip.address,
    ...(ip.gateway === undefined ? {} : { gateway: ip.gateway })
  })),
  routes: r.routes ?? [],
  ...(r.dns === undefined ? {} : { dns: r.dns })
})
