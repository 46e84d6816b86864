/**
 * `isthmus leases`: the live attachments (Docker and CNI) and the other held addresses, read
 * from the host's store itself (the state directory, or its records in etcd with `--store etcd`),
 * so it works with or without a running daemon. A table by
 * default; with `--json`, the document `/IpamDriver.Leases` answers, alone on stdout.
 */
import { stat } from 'node:fs/promises'
import * as E from 'fp-ts/lib/Either.js'
import type * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import type { Argv } from 'yargs'
import {
  DEFAULT_STATE_DIR,
  describe,
  inspectLeases,
  type Attachment,
  type CoreError,
  type Env,
  type LeasesView
} from '@isthmus/core'
import { leasesAnswer } from '@isthmus/cnm-server'
import { Inspect } from '@isthmus/cnm-server/protocol'
import { openStore } from '@isthmus/wiring'
import { storeArgsOf, storeFlags, storeSettingsOf, type StoreArgs } from './clusterOptions.js'

/** Where a command's text goes (the handlers pass process.stdout and process.stderr). */
export interface Output {
  readonly out: (text: string) => void
  readonly err: (text: string) => void
}

export const processOutput: Output = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text)
}

/**
 * Run a read-only query on the store the flags name; the exit code. A state directory must exist:
 * a listing must not create an empty state where the user mistyped a path. An etcd store is asked
 * nothing before the query, whose first call fails within --etcd-deadline when etcd is away.
 */
export const queryStore = async <A>(
  a: StoreArgs,
  query: RTE.ReaderTaskEither<Pick<Env, 'store'>, CoreError, A>,
  print: (a: A) => void,
  o: Output
): Promise<number> => {
  const settings = storeSettingsOf(a, process.env)
  if (E.isLeft(settings)) {
    o.err(`isthmus: ${settings.left}\n`)
    return 1
  }
  const s = settings.right
  const where =
    s.etcd === undefined
      ? (s.stateDir ?? DEFAULT_STATE_DIR)
      : `the records of host ${s.etcd.host} in cluster ${s.etcd.cluster} (etcd at ${s.etcd.connection.endpoints.join(',')})`
  if (s.etcd === undefined) {
    const isDir = await stat(where).then(
      (st) => st.isDirectory(),
      () => false
    )
    if (!isDir) {
      o.err(`isthmus: no state directory at ${where} (see --state-dir)\n`)
      return 1
    }
  }
  const opened = await openStore(s)()
  if (E.isLeft(opened)) {
    o.err(`isthmus: cannot open ${where}: ${describe(opened.left)}\n`)
    return 1
  }
  try {
    const r = await query({ store: opened.right })()
    if (E.isLeft(r)) {
      o.err(`isthmus: ${describe(r.left)}\n`)
      return 1
    }
    print(r.right)
    return 0
  } finally {
    await opened.right.close()
  }
}

/** Columns padded to their widest cell, two spaces apart. */
export const table = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  return [line(headers), ...rows.map(line)].map((l) => `${l}\n`).join('')
}

export const json = (doc: unknown): string => `${JSON.stringify(doc, null, 2)}\n`

const short = (id: string): string => id.slice(0, 12)

const ownerText = (a: Attachment): string =>
  a.owner.kind === 'container'
    ? `cni ${short(a.owner.containerId)}/${a.owner.ifName}`
    : `docker ${short(a.owner.endpointId)}`

/** The readable form of a view. */
export const leasesTable = (v: LeasesView): string => {
  const attachments = table(
    ['NETWORK', 'OWNER', 'ADDRESSES', 'MAC', 'HOST IF', 'SANDBOX', 'SINCE'],
    v.attachments.map((a) => [
      a.networkName ?? short(a.networkId),
      ownerText(a),
      a.addresses.map((x) => x.cidr).join(',') || '-',
      a.mac ?? '-',
      a.hostIfName,
      a.sandbox ?? '-',
      a.since
    ])
  )
  const reserved = table(
    ['NETWORK', 'KIND', 'ADDRESS', 'HOLDER', 'SINCE'],
    v.reserved.map((r) => [r.networkName ?? `(pool ${r.poolId})`, r.kind, r.address, r.holder, r.since])
  )
  return `${attachments}\nReserved (not attachments):\n${reserved}`
}

export interface LeasesArgs extends StoreArgs {
  readonly network?: string | undefined
  readonly json: boolean
}

export const leases = (a: LeasesArgs, o: Output = processOutput): Promise<number> =>
  queryStore(
    a,
    inspectLeases(a.network === undefined ? {} : { network: a.network }),
    (v) => o.out(a.json ? json(Inspect.LeasesResponse.encode(leasesAnswer(v))) : leasesTable(v)),
    o
  )

export const leasesCommand = (y: Argv): Argv =>
  y.command(
    'leases',
    "List the live attachments (Docker and CNI) and the other held addresses, from the host's store",
    (c) =>
      storeFlags(c)
        .option('network', { type: 'string', describe: 'only this network (id, name or id prefix)' })
        .option('json', {
          type: 'boolean',
          default: false,
          describe: 'print the /IpamDriver.Leases JSON document instead of a table'
        }),
    async (a) => {
      process.exitCode = await leases({ ...storeArgsOf(a), network: a.network, json: a.json })
    }
  )
