/**
 * iptables as isthmus uses it: a few chains of its own (prefix configurable, `ISTHMUS` by
 * default), one jump into each from the built-in chain it hangs off, and rules tagged with a
 * comment naming their owner (`isthmus:net:<network id>`, `isthmus:ep:<host veth>`).
 *
 * Every change is a *sync*: read the whole ruleset with one `iptables-save`, compare the owner's
 * tagged rules (and the jumps and chains) with what they should be, and apply the difference in
 * one `iptables-restore --noflush` transaction: atomic, so a reader never sees half a network,
 * and idempotent by construction. When another process changed the ruleset between the read and
 * the write, the transaction fails as a whole and the sync starts over.
 *
 * Only contention is retried, within an overall deadline (`deadlineMs`): the xtables lock held by
 * another program (iptables-legacy; `-w` makes iptables-restore itself wait for it) and our
 * compare-and-swap finding that another writer changed the table since our read. Anything else
 * (a rule iptables refuses, a command that cannot run) fails at once, naming the rule.
 *
 * Built-in chains and other programs' chains are never flushed or rewritten: only our jump rules
 * are inserted into or deleted from them.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import * as t from 'io-ts'
import { dataplane, decodeWith, transient, type CoreError } from '@isthmus/core'
import { run, type Exec } from './exec.js'

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** The iptables of one address family: `iptables` for 4, `ip6tables` for 6. @category model */
export type IpFamily = 4 | 6

/** The commands for one family. @category model */
export interface IptablesCommands {
  readonly save: string
  readonly restore: string
}

/** @category model */
export interface Iptables {
  readonly exec: Exec
  /** Chain name prefix: `<prefix>-POSTROUTING` etc. At most 16 characters (chain names max 28). */
  readonly prefix: string
  readonly commands: { readonly 4: IptablesCommands; readonly 6: IptablesCommands }
  /**
   * How long one change may wait for other writers (the xtables lock, other processes committing
   * to the same table), in ms; then it fails with `Transient`.
   */
  readonly deadlineMs: number
}

/** The default of `Iptables.deadlineMs`. @category constants */
export const DEFAULT_IPTABLES_DEADLINE_MS = 5_000

/** One rule: its table, chain and the match/target text exactly as `iptables-save` prints it. @category model */
export interface Rule {
  readonly table: string
  readonly chain: string
  readonly spec: string
}

/** A chain of ours and the built-in chain that jumps to it (with the jump's own matches). @category model */
interface Hook {
  readonly table: string
  readonly chain: string
  readonly from: string
  readonly match: string
}

/** The chain names under a prefix. @category utils */
export const chainNames = (prefix: string) => ({
  postrouting: `${prefix}-POSTROUTING`,
  dnat: `${prefix}-DNAT`,
  forward: `${prefix}-FORWARD`,
  input: `${prefix}-INPUT`,
  /** In each table we write, never jumped to: the table's generation, for compare-and-swap (`plan`). */
  generation: `${prefix}-GEN`
})

const hooksOf = (prefix: string, family: IpFamily): ReadonlyArray<Hook> => {
  const c = chainNames(prefix)
  const local = '-m addrtype --dst-type LOCAL'
  return [
    { table: 'nat', chain: c.postrouting, from: 'POSTROUTING', match: '' },
    { table: 'nat', chain: c.dnat, from: 'PREROUTING', match: local },
    { table: 'nat', chain: c.dnat, from: 'OUTPUT', match: local },
    { table: 'filter', chain: c.forward, from: 'FORWARD', match: '' },
    // The guard against 127.0.0.0/8 from a bridge exists only for IPv4 (route_localnet).
    ...(family === 4 ? [{ table: 'filter', chain: c.input, from: 'INPUT', match: '' }] : [])
  ]
}

const jumpSpec = (h: Hook): string => (h.match === '' ? `-j ${h.chain}` : `${h.match} -j ${h.chain}`)

// -------------------------------------------------------------------------------------
// codecs: iptables-save output
// -------------------------------------------------------------------------------------

/** A table as `iptables-save` prints it. @category model */
export interface SavedTable {
  readonly chains: ReadonlyArray<string>
  readonly rules: ReadonlyArray<{ readonly chain: string; readonly spec: string }>
}
/** @category model */
export type SavedRuleset = Readonly<Record<string, SavedTable>>

const parseSave = (text: string): E.Either<string, SavedRuleset> => {
  const tables: Record<string, { chains: string[]; rules: Array<{ chain: string; spec: string }> }> = {}
  let current: { chains: string[]; rules: Array<{ chain: string; spec: string }> } | undefined
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trimEnd()
    if (line === '' || line.startsWith('#')) continue
    if (line.startsWith('*')) {
      current = tables[line.slice(1)] ??= { chains: [], rules: [] }
    } else if (line === 'COMMIT') {
      current = undefined
    } else if (current !== undefined && line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0]
      if (name === undefined || name === '') return E.left(`line ${i + 1}: chain without a name`)
      current.chains.push(name)
    } else if (current !== undefined && line.startsWith('-A ')) {
      const m = /^-A (\S+)(?: (.*))?$/.exec(line)
      if (m?.[1] === undefined) return E.left(`line ${i + 1}: unreadable rule`)
      current.rules.push({ chain: m[1], spec: m[2] ?? '' })
    } else {
      return E.left(`line ${i + 1}: unexpected ${JSON.stringify(line.slice(0, 60))}`)
    }
  }
  return E.right(tables)
}

/**
 * `iptables-save` output, parsed into tables of chains and rules (parse, don't validate: a line
 * this reader does not know fails the decode instead of being skipped).
 *
 * @category codecs
 */
export const IptablesSave = new t.Type<SavedRuleset, string, unknown>(
  'IptablesSave',
  (u): u is SavedRuleset => typeof u === 'object' && u !== null,
  (u, c) => {
    if (typeof u !== 'string') return t.failure(u, c, 'iptables-save text')
    const r = parseSave(u)
    return E.isRight(r) ? t.success(r.right) : t.failure(u, c, `iptables-save text (${r.left})`)
  },
  () => {
    throw new Error('IptablesSave is decode-only')
  }
)

/** The owner tag in a rule's `-m comment --comment`, if any. @category utils */
export const tagOf = (spec: string): string | undefined => {
  const m = /-m comment --comment (?:"([^"]*)"|(\S+))/.exec(spec)
  return m === null ? undefined : (m[1] ?? m[2])
}

/** `-m comment --comment "<tag>"` as iptables-save prints it. @category utils */
export const commentOf = (tag: string): string => `-m comment --comment "${tag}"`

// -------------------------------------------------------------------------------------
// reading and writing
// -------------------------------------------------------------------------------------

/** Read the family's whole ruleset. @category utils */
export const save = (ipt: Iptables, family: IpFamily): TE.TaskEither<CoreError, SavedRuleset> =>
  pipe(
    run(ipt.exec, ipt.commands[family].save, []),
    TE.chainEitherK((o) => decodeWith(IptablesSave, `${ipt.commands[family].save} output`)(o.stdout))
  )

/** How a restore ended: applied, lost to another writer (try again from a fresh read), or refused. */
type Restored =
  | { readonly _tag: 'Applied' }
  | { readonly _tag: 'Contended'; readonly why: string }
  | { readonly _tag: 'Refused'; readonly error: CoreError }

// iptables' exit status for "resource problem": the xtables lock was not had within -w.
const LOCK_HELD_EXIT = 4

// `iptables-restore: line N failed: ...` (a rule that does not apply) or `Error occurred at line: N`
// (a rule that does not parse).
const failedLine = (stderr: string): number | undefined => {
  const m = /line:? (\d+)/.exec(stderr)
  return m?.[1] === undefined ? undefined : Number(m[1])
}

/**
 * Apply restore text without flushing anything else, waiting at most `waitS` seconds for the
 * legacy xtables lock (`-w`; iptables-nft has no such lock and ignores it).
 */
const restore = (ipt: Iptables, family: IpFamily, text: string, waitS: number): TE.TaskEither<CoreError, Restored> => {
  const file = ipt.commands[family].restore
  return pipe(
    ipt.exec(file, ['-w', String(waitS), '--noflush'], text),
    TE.map((o): Restored => {
      if (o.exitCode === 0) return { _tag: 'Applied' }
      const said = o.stderr.trim()
      if (o.exitCode === LOCK_HELD_EXIT && /xtables lock/.test(said)) return { _tag: 'Contended', why: said }
      const lines = text.split('\n')
      const n = failedLine(said)
      const line = n === undefined ? undefined : lines[n - 1]
      if (line !== undefined && isGenerationLine(ipt, line)) {
        return { _tag: 'Contended', why: 'another writer changed the table since it was read' }
      }
      // The rule iptables refused, in its table, and iptables' own words (without its usage hint).
      const table =
        n === undefined
          ? undefined
          : lines
              .slice(0, n)
              .reverse()
              .find((l) => l.startsWith('*'))
      const argv = [file, '--noflush', ...(line === undefined ? [] : [...(table === undefined ? [] : [table]), line])]
      return { _tag: 'Refused', error: dataplane(argv, o.exitCode, said.replace(/\n?Try `.*$/s, '')) }
    })
  )
}

/**
 * Read the family's ruleset, turn it into restore text with `write`, apply it; when another writer
 * wins (the lock, or our compare-and-swap), start over from a fresh read, until `deadlineMs` has
 * passed. True when something was written, false when nothing was to change.
 */
const writeLoop = (
  ipt: Iptables,
  what: string,
  family: IpFamily,
  write: (saved: SavedRuleset) => string
): TE.TaskEither<CoreError, boolean> => {
  const deadline = Date.now() + ipt.deadlineMs
  // iptables waits for the lock in whole seconds; an exec's own timeout (10 s) stays above it.
  const waitS = (): number => Math.min(9, Math.max(1, Math.floor((deadline - Date.now()) / 1000)))
  const attempt = (n: number): TE.TaskEither<CoreError, boolean> =>
    pipe(
      save(ipt, family),
      TE.chain((saved) => {
        const text = write(saved)
        return text === '' ? TE.right<CoreError, Restored | undefined>(undefined) : restore(ipt, family, text, waitS())
      }),
      TE.chain((r) => {
        if (r === undefined) return TE.right(false)
        switch (r._tag) {
          case 'Applied':
            return TE.right(true)
          case 'Refused':
            return TE.left(r.error)
          case 'Contended':
            return Date.now() >= deadline
              ? TE.left(
                  transient(`iptables: ${what} waited ${ipt.deadlineMs} ms for other writers and gave up (${r.why})`)
                )
              : pipe(
                  backoff(n),
                  TE.chain(() => attempt(n + 1))
                )
        }
      })
    )
  return attempt(1)
}

const ours = (prefix: string, chain: string): boolean => chain.startsWith(`${prefix}-`)

/** What one sync wants: the owner's rules (empty = remove them), and whether our chains must exist. */
interface Want {
  readonly tag: string
  readonly rules: ReadonlyArray<Rule>
  readonly hooks: boolean
}

/** The restore text that turns `saved` into what `want` asks for; empty when nothing is to change. */
const plan = (ipt: Iptables, family: IpFamily, saved: SavedRuleset, want: Want): string => {
  const byTable = new Map<string, string[]>()
  const emit = (table: string, line: string): void => {
    const lines = byTable.get(table) ?? []
    lines.push(line)
    byTable.set(table, lines)
  }

  if (want.hooks) {
    const hooks = hooksOf(ipt.prefix, family)
    for (const table of new Set(hooks.map((h) => h.table))) {
      const tbl = saved[table] ?? { chains: [], rules: [] }
      for (const chain of new Set(hooks.filter((h) => h.table === table).map((h) => h.chain))) {
        if (!tbl.chains.includes(chain)) emit(table, `-N ${chain}`)
      }
      // Jumps: exactly one per hook, with our exact matches; strays (duplicates from a race, old
      // forms) are deleted.
      for (const from of new Set(hooks.filter((h) => h.table === table).map((h) => h.from))) {
        const wanted = hooks.filter((h) => h.table === table && h.from === from).map(jumpSpec)
        const present = tbl.rules
          .filter((r) => r.chain === from && /-j (\S+)$/.exec(r.spec)?.[1] !== undefined)
          .filter((r) => ours(ipt.prefix, /-j (\S+)$/.exec(r.spec)?.[1] ?? ''))
          .map((r) => r.spec)
        if (sameList([...present].sort(), [...wanted].sort())) continue
        for (const spec of present) emit(table, `-D ${from} ${spec}`)
        for (const spec of wanted) emit(table, `-I ${from} ${spec}`)
      }
    }
  }

  // The owner's rules, per table and chain, in order.
  const tables = new Set([...want.rules.map((r) => r.table), ...Object.keys(saved)])
  for (const table of tables) {
    const tbl = saved[table] ?? { chains: [], rules: [] }
    const present = tbl.rules.filter((r) => ours(ipt.prefix, r.chain) && tagOf(r.spec) === want.tag)
    const wanted = want.rules.filter((r) => r.table === table)
    const key = (r: { chain: string; spec: string }): string => `${r.chain} ${r.spec}`
    // Order matters within a chain (ACCEPT before DROP), not across chains.
    if (sameList(byChain(present).map(key), byChain(wanted).map(key))) continue
    for (const r of present) emit(table, `-D ${r.chain} ${r.spec}`)
    for (const r of wanted) emit(table, `-A ${r.chain} ${r.spec}`)
  }

  if (byTable.size === 0) return ''
  // Compare-and-swap, per table: each table's section also replaces that table's generation N (as
  // we read it) by N+1. If another writer committed to the table since our read, the generation we
  // delete is gone and the section fails; the sync then starts over from a fresh read. So two
  // writers never both add the same rules. Per table because iptables-restore commits each table
  // on its own (iptables-nft too: "commit per table ... the existing behaviour"), and stops at the
  // first table that fails.
  return [...byTable.entries()]
    .map(([table, lines]) => `*${table}\n${[...generationLines(ipt, saved, table), ...lines].join('\n')}\nCOMMIT\n`)
    .join('')
}

const GEN = /--comment "?isthmus:gen:(\d+)"?/

const generationLines = (ipt: Iptables, saved: SavedRuleset, table: string): ReadonlyArray<string> => {
  const chain = chainNames(ipt.prefix).generation
  const tbl = saved[table] ?? { chains: [], rules: [] }
  const present = tbl.rules.filter((r) => r.chain === chain)
  const current = Math.max(0, ...present.map((r) => Number(GEN.exec(r.spec)?.[1] ?? 0)))
  return [
    ...(tbl.chains.includes(chain) ? [] : [`-N ${chain}`]),
    ...present.map((r) => `-D ${chain} ${r.spec}`),
    `-A ${chain} ${commentOf(`isthmus:gen:${current + 1}`)} -j RETURN`
  ]
}

// A stable sort by chain name: keeps each chain's rules in order.
const byChain = <R extends { readonly chain: string }>(rs: ReadonlyArray<R>): ReadonlyArray<R> =>
  [...rs].sort((a, b) => (a.chain < b.chain ? -1 : a.chain > b.chain ? 1 : 0))

const sameList = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i])

// Each lost attempt means another writer committed, so N racing writers finish within N
// attempts; the jitter keeps them from re-reading in lockstep.
const backoff = (attempt: number): TE.TaskEither<never, void> =>
  TE.fromTask(() => new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(20, 3 * attempt))))

/** A line of our compare-and-swap on the table's generation (see `plan`). */
const isGenerationLine = (ipt: Iptables, line: string): boolean => {
  const gen = chainNames(ipt.prefix).generation
  return line === `-N ${gen}` || line.startsWith(`-D ${gen} `)
}

/**
 * Make the rules tagged `tag` in the family's chains exactly `rules` (and, with `hooks`, make sure
 * our chains and their jumps exist). Costs one `iptables-save` when nothing is to change and one
 * `iptables-restore` more when something is. True when it changed something.
 *
 * @category utils
 */
export const sync = (
  ipt: Iptables,
  family: IpFamily,
  tag: string,
  rules: ReadonlyArray<Rule>,
  hooks = rules.length > 0
): TE.TaskEither<CoreError, boolean> =>
  writeLoop(ipt, `the rules of ${tag}`, family, (saved) => plan(ipt, family, saved, { tag, rules, hooks }))

/** What is ours in a family's ruleset: chains as `table/chain`, and the owner tags of their rules. @category model */
export interface OwnRules {
  readonly chains: ReadonlyArray<string>
  readonly tags: ReadonlySet<string>
}

/** Our chains and the tags of the rules in them, from one `iptables-save`. @category utils */
export const ownRules = (ipt: Iptables, family: IpFamily): TE.TaskEither<CoreError, OwnRules> =>
  pipe(
    save(ipt, family),
    TE.map((saved) => {
      const tables = Object.entries(saved)
      return {
        chains: tables.flatMap(([table, tbl]) =>
          tbl.chains.filter((c) => ours(ipt.prefix, c)).map((c) => `${table}/${c}`)
        ),
        tags: new Set(
          tables.flatMap(([, tbl]) =>
            tbl.rules.filter((r) => ours(ipt.prefix, r.chain)).flatMap((r) => tagOf(r.spec) ?? [])
          )
        )
      }
    })
  )

/**
 * Remove everything under our prefix in the family: the jumps from built-in chains, then our
 * chains with all their rules. For uninstalling and for tests; networks still in use lose their
 * masquerade, forwarding and published ports.
 *
 * @category utils
 */
export const removeAll = (ipt: Iptables, family: IpFamily): TE.TaskEither<CoreError, void> =>
  pipe(
    writeLoop(ipt, `removing the ${ipt.prefix} chains`, family, (saved) =>
      Object.entries(saved)
        .map(([table, tbl]) => {
          const jumps = tbl.rules
            .filter((r) => !ours(ipt.prefix, r.chain) && ours(ipt.prefix, /-j (\S+)$/.exec(r.spec)?.[1] ?? ''))
            .map((r) => `-D ${r.chain} ${r.spec}`)
          const chains = tbl.chains.filter((c) => ours(ipt.prefix, c))
          const lines = [...jumps, ...chains.map((c) => `-F ${c}`), ...chains.map((c) => `-X ${c}`)]
          // The generation goes first, as in every write: a table changed since the read fails
          // (a table written by an isthmus without one is removed without the check).
          const cas = tbl.chains.includes(chainNames(ipt.prefix).generation) ? generationLines(ipt, saved, table) : []
          return lines.length === 0 ? '' : `*${table}\n${[...cas, ...lines].join('\n')}\nCOMMIT\n`
        })
        .join('')
    ),
    TE.map(() => undefined)
  )
