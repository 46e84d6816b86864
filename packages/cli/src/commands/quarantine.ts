/**
 * `isthmus quarantine`: the records the store found unreadable and moved aside (what each was,
 * when and why, where its bytes are), read from the host's store itself (the state directory, or
 * etcd with `--store etcd`), with or without a running daemon. A table by default; with
 * `--json`, `{"records": [...]}` alone on stdout.
 * `isthmus quarantine drop <id>...` forgets entries and their bytes; a lease's entry also frees
 * the address its hold kept.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type { Argv } from 'yargs'
import type { CoreError, Env, QuarantinedRecord } from '@isthmus/core'
import { storeArgsOf, storeFlags, type StoreArgs } from './clusterOptions.js'
import { json, processOutput, queryStore, table, type Output } from './leases.js'

const listQuery = ({ store }: Pick<Env, 'store'>) => store.quarantine.list()

/** The readable form of a listing. */
export const quarantineTable = (records: ReadonlyArray<QuarantinedRecord>): string => {
  if (records.length === 0) return 'Nothing is quarantined.\n'
  const rows = table(
    ['ID', 'OBJECT', 'SINCE', 'BYTES AT', 'WHY'],
    records.map((r) => [r.id, r.object, r.at || '-', r.location, r.reason])
  )
  const held = records.filter((r) => r.holds !== undefined)
  const note =
    held.length === 0
      ? ''
      : `\nHeld until dropped (no container may use them when you drop): ${held
          .map((r) => `${r.holds!.address} in ${r.holds!.addressSpace}`)
          .join(', ')}\n`
  return `${rows}${note}`
}

export interface QuarantineArgs extends StoreArgs {
  readonly json: boolean
}

export const quarantineList = (a: QuarantineArgs, o: Output = processOutput): Promise<number> =>
  queryStore(a, listQuery, (records) => o.out(a.json ? json({ records }) : quarantineTable(records)), o)

export interface DropArgs extends StoreArgs {
  readonly ids: ReadonlyArray<string>
}

interface Dropped {
  readonly id: string
  readonly found: boolean
  readonly entry?: QuarantinedRecord | undefined
}

// Each id in turn: what it was (for the message), then the drop.
const dropQuery =
  (ids: ReadonlyArray<string>) =>
  ({ store }: Pick<Env, 'store'>): TE.TaskEither<CoreError, ReadonlyArray<Dropped>> =>
    TE.traverseSeqArray((id: string) =>
      pipe(
        store.quarantine.list(),
        TE.map((all) => all.find((r) => r.id === id)),
        TE.chain((entry) =>
          pipe(
            store.quarantine.drop(id),
            TE.map((found): Dropped => ({ id, found, entry }))
          )
        )
      )
    )(ids)

export const quarantineDrop = async (a: DropArgs, o: Output = processOutput): Promise<number> => {
  let missing = 0
  const code = await queryStore(
    a,
    dropQuery(a.ids),
    (results) => {
      for (const r of results) {
        if (!r.found) {
          missing++
          o.err(`isthmus: no quarantine entry ${r.id} (see isthmus quarantine)\n`)
        } else {
          const held = r.entry?.holds
          o.out(
            `dropped ${r.id}${held === undefined ? '' : `; ${held.address} in ${held.addressSpace} is free again`}\n`
          )
        }
      }
    },
    o
  )
  return code !== 0 ? code : missing > 0 ? 1 : 0
}

export const quarantineCommand = (y: Argv): Argv =>
  y.command(
    'quarantine',
    'List the records found unreadable and moved aside (kind, object, when, why, where the bytes are); drop entries',
    (c) =>
      storeFlags(c)
        .command(
          '$0',
          'List the quarantined records',
          (l) =>
            l.option('json', {
              type: 'boolean',
              default: false,
              describe: 'print {"records": [...]} as JSON instead of a table'
            }),
          async (l) => {
            process.exitCode = await quarantineList({ ...storeArgsOf(l), json: l.json })
          }
        )
        .command(
          'drop <ids..>',
          "Forget quarantined records and their bytes; a lease's entry frees the address its hold kept",
          (d) =>
            d.positional('ids', { type: 'string', array: true, demandOption: true, describe: 'entry ids, as listed' }),
          async (d) => {
            process.exitCode = await quarantineDrop({ ...storeArgsOf(d), ids: d.ids })
          }
        ),
    () => undefined
  )
