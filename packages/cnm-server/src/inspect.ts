/**
 * The inspection routes on the plugin socket (POST, and GET for curl): the core's read-only
 * queries translated into the answers of protocol/Inspect.ts. The translations are exported
 * for `isthmus leases --json` and `isthmus networks --json`, which print the same documents.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as t from 'io-ts'
import {
  inspectLeases,
  inspectNetworks,
  inspectSummary,
  type CoreError,
  type Env,
  type InspectSummary,
  type LeasesView,
  type NetworksView,
  type PoolUsage
} from '@isthmus/core'
import type { PluginMetrics } from './metrics.js'
import * as Inspect from './protocol/Inspect.js'
import { IMPLEMENTS } from './protocol/Plugin.js'
import { CONTENT_TYPE, route, type Route } from './router.js'

/** What the daemon tells about itself. @category model */
export interface DaemonInfo {
  /** The isthmus version (the CLI's package.json). */
  readonly version: string
  /** The CNI versions the plugin executable answers. */
  readonly cniVersions: ReadonlyArray<string>
  /** The effective settings; without them `/IpamDriver.Configuration` is not served. */
  readonly configuration?: Inspect.ConfigurationResponse
}

// Counts leave bigint for JSON numbers here (exact up to 2^53, see PoolUsage).
const poolAnswer = (u: PoolUsage): Inspect.PoolUsage => ({ ...u, size: Number(u.size), free: Number(u.free) })

/** The `/IpamDriver.Leases` answer of a view. @category translations */
export const leasesAnswer = (v: LeasesView): Inspect.LeasesResponse => v

/** The `/IpamDriver.Networks` answer of a view. @category translations */
export const networksAnswer = (v: NetworksView): Inspect.NetworksResponse => ({
  networks: v.networks.map((n) => ({ ...n, pools: n.pools.map(poolAnswer) })),
  otherPools: v.otherPools.map(poolAnswer)
})

/** The `/IpamDriver.Metrics` answer. @category translations */
export const metricsAnswer = (
  s: InspectSummary,
  requests: ReadonlyArray<Inspect.RequestCount>
): Inspect.MetricsResponse => ({
  requests,
  networks: s.networks,
  endpoints: s.endpoints,
  leases: s.leases,
  pools: s.pools.map((p) => {
    const { poolId, size, used, free, leased } = poolAnswer(p)
    return { poolId, size, used, free, leased }
  })
})

/** The API version of CONTENT_TYPE (`application/vnd.docker.plugins.v1.2+json`). */
const PLUGIN_API = /v(\d+\.\d+)\+json$/.exec(CONTENT_TYPE)?.[1] ?? 'unknown'

// The answers are encoded by their codecs: the branded strings of the core leave as plain JSON.
const answer =
  <A, O>(codec: t.Type<A, O>) =>
  (a: A): object =>
    codec.encode(a) as object

/** The inspection routes over the store of `env`. @category constructors */
export const inspectRoutes = (
  env: Pick<Env, 'store'>,
  about: DaemonInfo,
  metrics?: PluginMetrics
): ReadonlyArray<Route> => {
  const get = (r: Route): Route => ({ ...r, allowGet: true })
  const configuration = about.configuration
  return [
    get(
      route('IpamDriver', 'Leases', Inspect.LeasesRequest, (req) =>
        pipe(
          inspectLeases(req.network === undefined || req.network === '' ? {} : { network: req.network })(env),
          TE.map((v) => answer(Inspect.LeasesResponse)(leasesAnswer(v)))
        )
      )
    ),
    get(
      route('IpamDriver', 'Networks', t.unknown, () =>
        pipe(
          inspectNetworks(env),
          TE.map((v) => answer(Inspect.NetworksResponse)(networksAnswer(v)))
        )
      )
    ),
    get(
      route('IpamDriver', 'Metrics', t.unknown, () =>
        pipe(
          TE.Do,
          TE.bind('summary', () => inspectSummary(env)),
          TE.bind('requests', () => TE.fromTask(() => metrics?.requests() ?? Promise.resolve([]))),
          TE.map(({ summary, requests }) => answer(Inspect.MetricsResponse)(metricsAnswer(summary, requests)))
        )
      )
    ),
    get(
      route('IpamDriver', 'Version', t.unknown, () =>
        TE.right<CoreError, object>(
          answer(Inspect.VersionResponse)({
            version: about.version,
            pluginApi: { version: PLUGIN_API, contentType: CONTENT_TYPE, implements: IMPLEMENTS.Implements },
            cniVersions: about.cniVersions,
            node: process.version
          })
        )
      )
    ),
    ...(configuration === undefined
      ? []
      : [
          get(
            route('IpamDriver', 'Configuration', t.unknown, () =>
              TE.right<CoreError, object>(answer(Inspect.ConfigurationResponse)(configuration))
            )
          )
        ])
  ]
}
