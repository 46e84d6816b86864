/**
 * `isthmus hosts`: the hosts of a cluster as etcd knows them (live or not, underlay address, VTEP
 * MAC, blocks per cluster network), and `isthmus hosts rm <host>`, which gives a gone host's blocks
 * back to the pool (refused for a live host unless forced). Read from etcd itself, with or
 * without a daemon on this machine; the cluster flags say where etcd is.
 */
import * as E from 'fp-ts/lib/Either.js'
import type { Argv } from 'yargs'
import {
  describe,
  HostName,
  hostsReport,
  removeHost,
  type Cluster,
  type CoreError,
  type HostReport
} from '@isthmus/core'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import { clusterSettings, openCluster, type ClusterSettings } from '@isthmus/wiring'
import { clusterArgsOf, etcdFlags } from './clusterOptions.js'
import { json, processOutput, table, type Output } from './leases.js'

/** Run `query` on the cluster of the flags, then close it; the exit code. */
const withCluster = async <A>(
  a: Readonly<Record<string, unknown>>,
  query: (cluster: Cluster) => TE.TaskEither<CoreError, A>,
  print: (x: A) => void,
  o: Output
): Promise<number> => {
  const settings = clusterSettings(clusterArgsOf(a), process.env, { underlay: false })
  if (E.isLeft(settings)) return fail(o, settings.left)
  if (settings.right === undefined) return fail(o, 'name the cluster: --cluster <name> --etcd-endpoints URL[,URL]')
  const s: ClusterSettings = settings.right
  const opened = await openCluster(s)()
  if (E.isLeft(opened)) return fail(o, `cannot reach the cluster ${s.name}: ${describe(opened.left)}`)
  try {
    const r = await query(opened.right)()
    if (E.isLeft(r)) return fail(o, describe(r.left))
    print(r.right)
    return 0
  } finally {
    await opened.right.close()
  }
}

const fail = (o: Output, sentence: string): number => {
  o.err(`isthmus: ${sentence}\n`)
  return 1
}

const blocksText = (h: HostReport): string =>
  Object.entries(h.blocks)
    .map(([network, cidrs]) => `${network}: ${cidrs.join(' ')}`)
    .join('; ') || '-'

/** The readable form of the report. */
export const hostsTable = (hosts: ReadonlyArray<HostReport>): string =>
  table(
    ['NAME', 'LIVE', 'UNDERLAY', 'VTEP MAC', 'SINCE', 'BLOCKS'],
    hosts.map((h) => [
      h.name,
      h.live ? 'yes' : 'no',
      h.underlay ?? '-',
      h.vtepMac ?? '-',
      h.since ?? '-',
      blocksText(h)
    ])
  )

export const hosts = (a: Readonly<Record<string, unknown>>, o: Output = processOutput): Promise<number> =>
  withCluster(a, hostsReport, (r) => o.out(a['json'] === true ? json({ hosts: r }) : hostsTable(r)), o)

export const hostsRemove = (a: Readonly<Record<string, unknown>>, o: Output = processOutput): Promise<number> => {
  const name = HostName.decode(a['host'])
  if (E.isLeft(name)) return Promise.resolve(fail(o, `hosts rm: ${JSON.stringify(a['host'])} is not a host name`))
  return withCluster(
    a,
    (cluster) => removeHost(cluster, name.right, { force: a['force'] === true }),
    ({ blocks }) =>
      o.out(
        blocks.length === 0
          ? `host ${name.right} held no blocks\n`
          : `host ${name.right}: ${blocks.length} block(s) back in the pool: ${blocks.map((b) => `${b.network} ${b.cidr}`).join(', ')}\n`
      ),
    o
  )
}

export const hostsCommand = (y: Argv): Argv =>
  y.command(
    'hosts',
    'List the hosts of a cluster (live or not, underlay, VTEP MAC, blocks), or remove one that is gone',
    (c) =>
      etcdFlags(c)
        .option('json', { type: 'boolean', default: false, describe: 'print JSON instead of a table' })
        // usage errors (exit code 2) before anything is asked of etcd
        .check((a) => {
          const s = clusterSettings(clusterArgsOf(a), process.env, { underlay: false })
          if (E.isLeft(s)) throw new Error(s.left)
          if (s.right === undefined) throw new Error('name the cluster: --cluster <name> --etcd-endpoints URL[,URL]')
          return true
        })
        .command(
          'rm <host>',
          "Give a gone host's blocks back to the pool (refused while it is live, unless --force)",
          (r) =>
            r.positional('host', { type: 'string', describe: 'the host to remove' }).option('force', {
              type: 'boolean',
              default: false,
              describe: "remove a live host too (its containers' addresses may then be handed out again)"
            }),
          async (r) => {
            process.exitCode = await hostsRemove(r)
          }
        ),
    async (a) => {
      process.exitCode = await hosts(a)
    }
  )
