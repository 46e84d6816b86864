/**
 * Cluster mode's settings (multi-host, docs/multi-host.md): which cluster this daemon joins, how it
 * reaches etcd, what it calls itself and where other hosts send its VXLAN traffic. One io-ts codec
 * is their definition; `clusterSettings` builds them from the flags of `isthmus serve` and `isthmus
 * hosts`, the etcd password from the environment only (argv is visible to every user in `ps`).
 */
import { hostname } from 'node:os'
import { sequenceS } from 'fp-ts/lib/Apply.js'
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as t from 'io-ts'
import { decodeWith, describe, HostName, IfName, IpAddress, report } from '@isthmus/core'

// -------------------------------------------------------------------------------------
// codecs
// -------------------------------------------------------------------------------------

const intIn = (name: string, min: number, max: number) =>
  new t.Type<number, number, unknown>(
    name,
    (u): u is number => typeof u === 'number' && Number.isInteger(u) && u >= min && u <= max,
    (u, c) =>
      typeof u === 'number' && Number.isInteger(u) && u >= min && u <= max
        ? t.success(u)
        : t.failure(u, c, `a whole number from ${min} to ${max}`),
    (a) => a
  )

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/

/** A cluster's name: the etcd prefix `/isthmus/<name>/` holds everything of it. @category codecs */
export const ClusterName = new t.Type<string, string, unknown>(
  'ClusterName',
  (u): u is string => typeof u === 'string' && NAME.test(u),
  (u, c) =>
    typeof u === 'string' && NAME.test(u)
      ? t.success(u)
      : t.failure(u, c, 'a cluster name (letters, digits, _ . -; at most 63)'),
  (a) => a
)

const isEtcdUrl = (s: string): boolean => {
  try {
    const u = new URL(s)
    // A password in a URL would sit in argv and in every log line: refused, like the flag itself.
    return (
      (u.protocol === 'http:' || u.protocol === 'https:') &&
      u.username === '' &&
      u.password === '' &&
      u.hostname !== '' &&
      (u.pathname === '' || u.pathname === '/')
    )
  } catch {
    return false
  }
}

/** An etcd client URL (`http://10.0.0.5:2379`, `https://…` with TLS), without userinfo. @category codecs */
export const EtcdUrl = new t.Type<string, string, unknown>(
  'EtcdUrl',
  (u): u is string => typeof u === 'string' && isEtcdUrl(u),
  (u, c) =>
    typeof u === 'string' && isEtcdUrl(u)
      ? t.success(u.replace(/\/$/, ''))
      : t.failure(
          typeof u === 'string' && u.includes('@') ? '(not shown)' : u,
          c,
          'an http:// or https:// URL of etcd (host and port, no user or password, no path)'
        ),
  (a) => a
)

/** A readable file named by an absolute path (the TLS files). @category codecs */
export const AbsolutePath = new t.Type<string, string, unknown>(
  'AbsolutePath',
  (u): u is string => typeof u === 'string' && u.startsWith('/') && !u.includes('\0'),
  (u, c) =>
    typeof u === 'string' && u.startsWith('/') && !u.includes('\0')
      ? t.success(u)
      : t.failure(u, c, 'an absolute path'),
  (a) => a
)

const DeadlineMs = intIn('DeadlineMs', 100, 120_000)
const BlockPrefix = intIn('BlockPrefix', 8, 30)
const TtlSeconds = intIn('TtlSeconds', 2, 3600)
const UnderlayMtu = intIn('Mtu', 1280, 65535)

/** How this daemon reaches etcd. @category codecs */
export const EtcdConnection = t.intersection(
  [
    t.type({
      endpoints: t.array(EtcdUrl),
      /** Every etcd call answers or fails (CNI 11, a Docker Err) within this many ms. */
      deadlineMs: DeadlineMs
    }),
    t.partial({
      /** Verify etcd's certificate against this CA (else the system's). */
      caFile: AbsolutePath,
      /** Client certificate and key, both or neither. */
      certFile: AbsolutePath,
      keyFile: AbsolutePath,
      username: t.string,
      password: t.string
    })
  ],
  'EtcdConnection'
)
/** @category model */
export type EtcdConnection = t.TypeOf<typeof EtcdConnection>

/** @category codecs */
export const ClusterSettings = t.intersection(
  [
    t.type({
      /** The cluster (etcd prefix `/isthmus/<name>/`). */
      name: ClusterName,
      /** This host's name in the cluster (its hostname by default). */
      host: HostName,
      /** This host's address on the underlay: other hosts send its VXLAN traffic there. */
      underlay: IpAddress,
      etcd: EtcdConnection,
      /** Prefix length of the blocks a host claims of a cluster network's subnet. */
      blockPrefix: BlockPrefix,
      /** Seconds a host stays listed after its daemon stopped renewing its registration. */
      ttlSeconds: TtlSeconds,
      /** MTU of the underlay: a cluster network's MTU is this less the VXLAN overhead. */
      underlayMtu: UnderlayMtu
    }),
    t.partial({
      /** The underlay's device (found from `underlay` when absent). */
      underlayDev: IfName
    })
  ],
  'ClusterSettings'
)
/** @category model */
export type ClusterSettings = t.TypeOf<typeof ClusterSettings>

// -------------------------------------------------------------------------------------
// defaults
// -------------------------------------------------------------------------------------

/** @category constants */
export const CLUSTER_DEFAULTS = {
  blockPrefix: 26,
  ttlSeconds: 15,
  deadlineMs: 2_000,
  underlayMtu: 1500
} as const

/** The variable the etcd password comes from (never a flag: argv is visible in `ps`). @category constants */
export const ETCD_PASSWORD_VAR = 'ISTHMUS_ETCD_PASSWORD'

// -------------------------------------------------------------------------------------
// from flags
// -------------------------------------------------------------------------------------

/** The cluster flags as parsed (`isthmus serve`, `isthmus hosts`). @category model */
export interface ClusterArgs {
  readonly cluster?: string | undefined
  /** Comma-separated etcd URLs. */
  readonly etcdEndpoints?: string | undefined
  readonly etcdCa?: string | undefined
  readonly etcdCert?: string | undefined
  readonly etcdKey?: string | undefined
  readonly etcdUser?: string | undefined
  readonly etcdDeadline?: number | undefined
  readonly hostName?: string | undefined
  readonly underlayIp?: string | undefined
  readonly underlayDev?: string | undefined
  readonly underlayMtu?: number | undefined
  readonly blockSize?: number | undefined
  readonly leaseTtl?: number | undefined
}

/** Which flags a command asks for: `hosts` needs no underlay (it only reads and releases). */
export interface ClusterNeeds {
  readonly underlay: boolean
}

// One flag's value through its codec; the error names the flag and what it takes.
const flag = <A>(name: string, codec: t.Type<A, unknown>, value: unknown): E.Either<string, A> => {
  const r = codec.decode(value)
  if (E.isRight(r)) return r
  // "(root): expected …" of a single value; "2: expected …" of the third URL of a list.
  const why = report(r.left).map((l) =>
    l.replace(/^\(root\): /, '').replace(/^(\d+): /, (_m, i: string) => `URL ${Number(i) + 1}: `)
  )
  return E.left(`--${name}: ${why.join('; ')}`)
}

const given = (v: string | undefined): v is string => v !== undefined && v !== ''

/** The etcd connection flags, by their ClusterArgs key. @category constants */
export const ETCD_FLAGS: ReadonlyArray<readonly [keyof ClusterArgs, string]> = [
  ['etcdEndpoints', 'etcd-endpoints'],
  ['etcdCa', 'etcd-ca'],
  ['etcdCert', 'etcd-cert'],
  ['etcdKey', 'etcd-key'],
  ['etcdUser', 'etcd-user'],
  ['etcdDeadline', 'etcd-deadline']
]

const CLUSTER_ONLY: ReadonlyArray<readonly [keyof ClusterArgs, string]> = [
  ...ETCD_FLAGS,
  ['underlayIp', 'underlay-ip'],
  ['underlayDev', 'underlay-dev'],
  ['underlayMtu', 'underlay-mtu'],
  ['blockSize', 'block-size'],
  ['leaseTtl', 'lease-ttl']
]

/**
 * The cluster settings of the flags: `undefined` without `--cluster` (one host, no etcd); a
 * sentence naming the flag when one is missing, malformed, or given without `--cluster`.
 *
 * @category constructors
 */
export const clusterSettings = (
  a: ClusterArgs,
  env: Readonly<Record<string, string | undefined>>,
  needs: ClusterNeeds = { underlay: true }
): E.Either<string, ClusterSettings | undefined> => {
  if (!given(a.cluster)) {
    const stray = CLUSTER_ONLY.filter(([k]) => a[k] !== undefined).map(([, f]) => `--${f}`)
    return stray.length === 0 ? E.right(undefined) : E.left(`${stray.join(', ')}: only with --cluster <name>`)
  }
  if (!given(a.etcdEndpoints)) return E.left('--cluster needs --etcd-endpoints URL[,URL]')
  if (needs.underlay && !given(a.underlayIp)) {
    return E.left("--cluster needs --underlay-ip, this host's address other hosts send VXLAN traffic to")
  }
  if (given(a.etcdCert) !== given(a.etcdKey)) return E.left('--etcd-cert and --etcd-key go together')
  const password = env[ETCD_PASSWORD_VAR]
  if (given(a.etcdUser) && !given(password)) {
    return E.left(`--etcd-user needs the password in the environment variable ${ETCD_PASSWORD_VAR}`)
  }
  const endpoints = a.etcdEndpoints
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
  const optional = <A>(name: string, codec: t.Type<A, unknown>, v: unknown): E.Either<string, A | undefined> =>
    v === undefined ? E.right(undefined) : flag(name, codec, v)
  return pipe(
    sequenceS(E.Apply)({
      name: flag('cluster', ClusterName, a.cluster),
      endpoints: flag('etcd-endpoints', t.array(EtcdUrl), endpoints),
      host: flag('host-name', HostName, a.hostName ?? hostname()),
      // `hosts` reads and releases only: it sends no VXLAN traffic, so it has no underlay address.
      underlay: needs.underlay ? flag('underlay-ip', IpAddress, a.underlayIp) : E.right('0.0.0.0'),
      underlayDev: optional('underlay-dev', IfName, a.underlayDev),
      deadlineMs: flag('etcd-deadline', DeadlineMs, a.etcdDeadline ?? CLUSTER_DEFAULTS.deadlineMs),
      blockPrefix: flag('block-size', BlockPrefix, a.blockSize ?? CLUSTER_DEFAULTS.blockPrefix),
      ttlSeconds: flag('lease-ttl', TtlSeconds, a.leaseTtl ?? CLUSTER_DEFAULTS.ttlSeconds),
      underlayMtu: flag('underlay-mtu', UnderlayMtu, a.underlayMtu ?? CLUSTER_DEFAULTS.underlayMtu),
      caFile: optional('etcd-ca', AbsolutePath, a.etcdCa),
      certFile: optional('etcd-cert', AbsolutePath, a.etcdCert),
      keyFile: optional('etcd-key', AbsolutePath, a.etcdKey)
    }),
    E.chain(({ endpoints, deadlineMs, caFile, certFile, keyFile, underlayDev, ...rest }) =>
      // The whole through its codec, the one definition of the settings.
      E.mapLeft(describe)(
        decodeWith(
          ClusterSettings,
          'cluster settings'
        )({
          ...rest,
          ...defined({ underlayDev }),
          etcd: {
            endpoints,
            deadlineMs,
            ...defined({ caFile, certFile, keyFile }),
            ...(given(a.etcdUser) ? { username: a.etcdUser, password } : {})
          }
        })
      )
    )
  )
}

// The entries whose value is present (exactOptionalPropertyTypes: no key holds undefined).
const defined = <R extends Record<string, unknown>>(r: R): Partial<R> =>
  Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as Partial<R>
