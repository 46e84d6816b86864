/**
 * How to reach etcd and where in it to keep things: the settings the wiring decodes from flags or
 * a CNI netconf, their codec, their defaults, and the prefixes of the documented key layout.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as t from 'io-ts'
import { decodeWith, invalidConfig, type CoreError, type HostName, type Logger } from '@isthmus/core'

const URL_OF_ETCD = /^https?:\/\/[^\s/?#]+$/

/** One etcd client URL: `http://host:port` or `https://host:port`. @category codecs */
export const EtcdEndpoint = new t.Type<string, string, unknown>(
  'EtcdEndpoint',
  (u): u is string => typeof u === 'string' && URL_OF_ETCD.test(u),
  (u, c) =>
    typeof u === 'string' && URL_OF_ETCD.test(u)
      ? t.success(u)
      : t.failure(u, c, 'an etcd client URL (http://host:port or https://host:port)'),
  (a) => a
)

// A prefix is a path of keys: no whitespace or control characters, which no etcdctl user could type.
const PREFIX = /^\/[^\s\p{Cc}]*$/u

/** Where every key of a store or a cluster sits, starting with `/`. @category codecs */
export const EtcdPrefix = new t.Type<string, string, unknown>(
  'EtcdPrefix',
  (u): u is string => typeof u === 'string' && PREFIX.test(u),
  (u, c) =>
    typeof u === 'string' && PREFIX.test(u)
      ? t.success(u)
      : t.failure(u, c, 'a key prefix starting with / (no spaces)'),
  (a) => a
)

const Positive = new t.Type<number, number, unknown>(
  'a positive number',
  (u): u is number => typeof u === 'number' && Number.isFinite(u) && u > 0,
  (u, c) => (typeof u === 'number' && Number.isFinite(u) && u > 0 ? t.success(u) : t.failure(u, c)),
  (a) => a
)

/**
 * How to reach etcd, as the wiring decodes it from flags or a netconf. TLS: `caFile` alone checks
 * the server; with `certFile` and `keyFile` the client shows its own certificate.
 *
 * @category codecs
 */
export const EtcdSettings = t.intersection(
  [
    t.type({
      /** Client URLs of the etcd members; all `http://` or all `https://`. */
      endpoints: t.array(EtcdEndpoint),
      /** Every key under this prefix (a `/` is added at the end if missing). */
      prefix: EtcdPrefix
    }),
    t.partial({
      caFile: t.string,
      certFile: t.string,
      keyFile: t.string,
      username: t.string,
      password: t.string,
      /** How long one call may take before it fails with `Transient` (default 2000). */
      deadlineMs: Positive,
      /** The TTL of the etcd lease under which locks are held, in seconds (default 5, at least 2). */
      lockTtlSeconds: Positive,
      /** How long `withLock` waits for a lock held elsewhere before `Transient` (default 15000). */
      lockTimeoutMs: Positive
    })
  ],
  'EtcdSettings'
)
/** @category model */
export type EtcdSettings = t.TypeOf<typeof EtcdSettings>

/** The settings and what only a program can give: where the adapter says what it did on its own. @category model */
export type EtcdOptions = EtcdSettings & {
  /** Records quarantined, registrations renewed after an outage. Default: nowhere. */
  readonly log?: Logger
}

/** The settings checked, with defaults filled in. @category model */
export interface Resolved {
  readonly endpoints: ReadonlyArray<string>
  readonly prefix: string
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string }
  readonly auth?: { readonly username: string; readonly password: string }
  readonly deadlineMs: number
  readonly lockTtlSeconds: number
  readonly lockTimeoutMs: number
}

/** @category constants */
export const DEFAULT_DEADLINE_MS = 2_000
/** @category constants */
export const DEFAULT_LOCK_TTL_SECONDS = 5
/** @category constants */
export const DEFAULT_LOCK_TIMEOUT_MS = 15_000

const checked = (s: EtcdSettings): E.Either<CoreError, Resolved> => {
  const bad = (detail: string) => E.left(invalidConfig(`etcd ${detail}`))
  if (s.endpoints.length === 0) return bad('endpoints: give at least one client URL (http://127.0.0.1:2379)')
  const secure = s.endpoints.filter((u) => u.startsWith('https://')).length
  if (secure !== 0 && secure !== s.endpoints.length) return bad('endpoints: use https:// for all of them or for none')
  if ((s.certFile === undefined) !== (s.keyFile === undefined)) {
    return bad('certFile and keyFile: a client certificate needs both')
  }
  if ((s.caFile !== undefined || s.certFile !== undefined) && secure === 0) {
    return bad('endpoints: TLS files are given, so the endpoints must be https:// URLs')
  }
  if ((s.username === undefined) !== (s.password === undefined)) return bad('username and password: give both')
  const tls =
    secure === 0
      ? undefined
      : {
          ...(s.caFile === undefined ? {} : { caFile: s.caFile }),
          ...(s.certFile === undefined ? {} : { certFile: s.certFile }),
          ...(s.keyFile === undefined ? {} : { keyFile: s.keyFile })
        }
  return E.right({
    endpoints: s.endpoints,
    prefix: s.prefix.endsWith('/') ? s.prefix : `${s.prefix}/`,
    ...(tls === undefined ? {} : { tls }),
    ...(s.username === undefined || s.password === undefined
      ? {}
      : { auth: { username: s.username, password: s.password } }),
    deadlineMs: s.deadlineMs ?? DEFAULT_DEADLINE_MS,
    lockTtlSeconds: Math.max(2, Math.ceil(s.lockTtlSeconds ?? DEFAULT_LOCK_TTL_SECONDS)),
    lockTimeoutMs: s.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS
  })
}

/**
 * Decode and check settings from anywhere (flags, a netconf section): a bad field is a
 * `DecodeFailure` naming it, a bad combination an `InvalidConfig`.
 *
 * @category utils
 */
export const resolveSettings = (input: unknown): E.Either<CoreError, Resolved> =>
  pipe(decodeWith(EtcdSettings, 'etcd settings')(input), E.chain(checked))

/** The root of every key isthmus writes for one cluster. @category utils */
export const clusterRoot = (cluster: string): string => `/isthmus/${cluster}/`

/** The prefix of one host's own Store in a cluster: `/isthmus/<cluster>/hosts/<host>/`. @category utils */
export const hostStorePrefix = (cluster: string, host: HostName | string): string =>
  `${clusterRoot(cluster)}hosts/${host}/`

/** The prefix of what the hosts of a cluster share: `/isthmus/<cluster>/cluster/`. @category utils */
export const clusterPrefix = (cluster: string): string => `${clusterRoot(cluster)}cluster/`
