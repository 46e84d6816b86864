/**
 * The cluster flags of `isthmus serve` and `isthmus hosts` (multi-host, docs/multi-host.md), and
 * the store flags of the inspection commands; their meaning and checks are @isthmus/wiring's
 * `clusterSettings`. The etcd password is read from ISTHMUS_ETCD_PASSWORD only: a flag's value is
 * visible to every user in `ps`.
 */
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import * as E from 'fp-ts/lib/Either.js'
import type { Argv } from 'yargs'
import { DEFAULT_STATE_DIR } from '@isthmus/core'
import {
  CLUSTER_DEFAULTS,
  clusterSettings,
  ETCD_FLAGS,
  ETCD_PASSWORD_VAR,
  etcdStoreOf,
  STORE_KINDS,
  type ClusterArgs,
  type StoreSettings
} from '@isthmus/wiring'

/** The flags that say how to reach the cluster's etcd (every cluster command). */
export const etcdFlags = <T>(y: Argv<T>) =>
  y
    .option('cluster', {
      type: 'string',
      describe: 'the cluster to join: every key of it sits under /isthmus/<name>/ in etcd (multi-host mode)'
    })
    .option('etcd-endpoints', {
      type: 'string',
      describe: 'etcd client URLs, comma-separated (http://10.0.0.5:2379 or https://… with TLS)'
    })
    .option('etcd-ca', { type: 'string', describe: "CA file to check etcd's certificate with" })
    .option('etcd-cert', { type: 'string', describe: 'client certificate file for etcd (with --etcd-key)' })
    .option('etcd-key', { type: 'string', describe: 'client key file for etcd (with --etcd-cert)' })
    .option('etcd-user', {
      type: 'string',
      describe: `etcd user; its secret is read only from the environment variable ${ETCD_PASSWORD_VAR}`
    })
    .option('etcd-deadline', {
      type: 'number',
      describe: `ms within which every etcd call answers or fails (CNI code 11, a Docker Err); default ${CLUSTER_DEFAULTS.deadlineMs}`
    })

/** The flags of a host that joins the cluster (`isthmus serve`). */
export const clusterFlags = <T>(y: Argv<T>) =>
  etcdFlags(y)
    .option('host-name', {
      type: 'string',
      default: hostname(),
      describe: "this host's name in the cluster"
    })
    .option('underlay-ip', {
      type: 'string',
      describe: "this host's address that other hosts send VXLAN traffic to"
    })
    .option('underlay-dev', {
      type: 'string',
      describe: 'the device of --underlay-ip (found from the address when absent)'
    })
    .option('underlay-mtu', {
      type: 'number',
      describe: `MTU of the underlay; cluster networks get it less the VXLAN overhead (default ${CLUSTER_DEFAULTS.underlayMtu})`
    })
    .option('block-size', {
      type: 'number',
      describe: `prefix length of the blocks a host claims of a cluster network's subnet (default ${CLUSTER_DEFAULTS.blockPrefix})`
    })
    .option('lease-ttl', {
      type: 'number',
      describe: `seconds this host stays listed after it stopped renewing its registration (default ${CLUSTER_DEFAULTS.ttlSeconds})`
    })

/** The parsed cluster flags (yargs's camel-case keys). */
export const clusterArgsOf = (a: Readonly<Record<string, unknown>>): ClusterArgs => {
  const str = (k: string): string | undefined => (typeof a[k] === 'string' ? a[k] : undefined)
  const num = (k: string): number | undefined => (typeof a[k] === 'number' ? a[k] : undefined)
  return {
    cluster: str('cluster'),
    etcdEndpoints: str('etcdEndpoints'),
    etcdCa: str('etcdCa'),
    etcdCert: str('etcdCert'),
    etcdKey: str('etcdKey'),
    etcdUser: str('etcdUser'),
    etcdDeadline: num('etcdDeadline'),
    hostName: str('hostName'),
    underlayIp: str('underlayIp'),
    underlayDev: str('underlayDev'),
    underlayMtu: num('underlayMtu'),
    blockSize: num('blockSize'),
    leaseTtl: num('leaseTtl')
  }
}

/** A yargs `check`: the cluster flags make settings, or the command stops with the sentence. */
export const checkClusterFlags =
  (needs: { readonly underlay: boolean }) =>
  (a: Readonly<Record<string, unknown>>): true => {
    const s = clusterSettings(clusterArgsOf(a), process.env, needs)
    if (E.isLeft(s)) throw new Error(s.left)
    return true
  }

/**
 * The flags of a command that reads one host's store (`leases`, `networks`, `quarantine`): the
 * state directory, or with `--store etcd` the cluster's etcd flags and whose records to read.
 */
export const storeFlags = <T>(y: Argv<T>) =>
  etcdFlags(y)
    .option('store', {
      choices: STORE_KINDS,
      default: 'file',
      describe: "where the host's own records are kept: files under --state-dir, or etcd (with --cluster)"
    })
    .option('state-dir', { type: 'string', default: DEFAULT_STATE_DIR, describe: 'the state directory to read' })
    .option('host-name', {
      type: 'string',
      describe: "with --store etcd: the host whose records to read (default: this machine's hostname)"
    })
    // usage errors (exit code 2) before the store is opened
    .check((a) => {
      const s = storeSettingsOf(storeArgsOf(a), process.env)
      if (E.isLeft(s)) throw new Error(s.left)
      return true
    })

/** The parsed store flags. */
export interface StoreArgs extends ClusterArgs {
  /** `file` when absent. */
  readonly store?: string | undefined
  readonly stateDir: string
}

/** The parsed store flags (yargs's camel-case keys). */
export const storeArgsOf = (a: Readonly<Record<string, unknown>>): StoreArgs => ({
  ...clusterArgsOf(a),
  store: typeof a['store'] === 'string' ? a['store'] : undefined,
  stateDir: typeof a['stateDir'] === 'string' ? a['stateDir'] : DEFAULT_STATE_DIR
})

const ETCD_ONLY: ReadonlyArray<readonly [keyof ClusterArgs, string]> = [
  ['cluster', 'cluster'],
  ...ETCD_FLAGS,
  ['hostName', 'host-name']
]

/**
 * The store a reading command opens (it never sweeps: a daemon or CNI call may be at work in it),
 * or the sentence naming the flag that is wrong, missing, or given without `--store etcd`.
 */
export const storeSettingsOf = (
  a: StoreArgs,
  env: Readonly<Record<string, string | undefined>>
): E.Either<string, StoreSettings> => {
  if ((a.store ?? 'file') !== 'etcd') {
    const stray = ETCD_ONLY.filter(([k]) => a[k] !== undefined).map(([, f]) => `--${f}`)
    return stray.length > 0
      ? E.left(`${stray.join(', ')}: only with --store etcd`)
      : E.right({ kind: 'file', stateDir: resolve(a.stateDir), sweepOnOpen: false })
  }
  const s = clusterSettings(a, env, { underlay: false })
  if (E.isLeft(s)) return s
  if (s.right === undefined) return E.left('--store etcd needs --cluster <name> --etcd-endpoints URL[,URL]')
  return E.right({ kind: 'etcd', etcd: etcdStoreOf(s.right), sweepOnOpen: false })
}
