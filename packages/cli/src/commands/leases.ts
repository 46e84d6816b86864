/**
 * `isthmus leases`: the live attachments (Docker and CNI) and the other held addresses, read
 * from the state directory itself, so it works with or without a running daemon. A table by
 * default; with `--json`, the document `/IpamDriver.Leases` answers, alone on stdout.
 */
import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
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
 * Run a read-only query on the state directory; the exit code. The directory must exist: a
 * listing must not create an empty state where the user mistyped a path. Opening does not sweep
 * (a daemon or CNI process may be working in it).
 */
export const queryStateDir = async <A>(
  dir: string,
  query: RTE.ReaderTaskEither<Pick<Env, 'store'>, CoreError, A>,
  print: (a: A) => void,
  o: Output
): Promise<number> => {
  const stateDir = resolve(dir)
  const isDir = await stat(stateDir).then(
    (s) => s.isDirectory(),
    () => false
  )
  if (!isDir) {
    o.err(`isthmus: no state directory at ${stateDir} (see --state-dir)\n`)
    return 1
  }
  const opened = await openStore({ stateDir, sweepOnOpen: false })()
  if (E.isLeft(opened)) {
    o.err(`isthmus: cannot open ${stateDir}: ${describe(opened.left)}\n`)
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

export interface LeasesArgs {
  readonly stateDir: string
  readonly network?: string | undefined
  readonly json: boolean
}

export const leases = (a: LeasesArgs, o: Output = processOutput): Promise<number> =>
  queryStateDir(
    a.stateDir,
    inspectLeases(a.network === undefined ? {} : { network: a.network }),
    (v) => o.out(a.json ? json(Inspect.LeasesResponse.encode(leasesAnswer(v))) : leasesTable(v)),
    o
  )

export const leasesCommand = (y: Argv): Argv =>
  y.command(
    'leases',
    'List the live attachments (Docker and CNI) and the other held addresses, from the state directory',
    (c) =>
      c
        .option('state-dir', { type: 'string', default: DEFAULT_STATE_DIR, describe: 'the state directory to read' })
        .option('network', { type: 'string', describe: 'only this network (id, name or id prefix)' })
        .option('json', {
          type: 'boolean',
          default: false,
          describe: 'print the /IpamDriver.Leases JSON document instead of a table'
        }),
    async (a) => {
      process.exitCode = await leases({ stateDir: a.stateDir, network: a.network, json: a.json })
    }
  )
