/**
 * The CNI environment (CNI SPEC §Parameters), decoded with one table that says per command which
 * variable is required, as the reference skel's `getCmdArgsFromEnv` does. Every missing or
 * invalid variable is reported in one error (code 4), so a runtime author fixes them in one go.
 */
import * as E from 'fp-ts/lib/Either.js'
import { ContainerId, IfName, SandboxKey } from '@isthmus/core'
import { decodeCniArgs, NO_ARGS, type CniArgs } from './Args.js'
import { Code, cniError, type CniError } from './Error.js'
import { excerpt } from './Json.js'

/** @category model */
export type Command = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS' | 'VERSION'

/** @category constants */
export const COMMANDS: ReadonlyArray<Command> = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION']

/** The process environment as the envelope sees it: names to values, absent or empty alike. @category model */
export type RawEnv = Readonly<Record<string, string | undefined>>

/** The normalised invocation (the reference's `CmdArgs`), minus stdin. @category model */
export interface CmdArgs {
  readonly command: Command
  readonly containerId?: ContainerId
  /** Absent on DEL with an empty CNI_NETNS (the namespace is gone), and on GC/STATUS. */
  readonly netns?: SandboxKey
  readonly ifName?: IfName
  readonly args: CniArgs
  /** CNI_PATH split on `:`, empty entries dropped. */
  readonly path: ReadonlyArray<string>
}

// -------------------------------------------------------------------------------------
// validation rules (pkg/utils of the reference, with its exact messages)
// -------------------------------------------------------------------------------------

interface Problem {
  readonly msg: string
  readonly details?: string
}

/** CNI utils ValidateInterfaceName, message for message. @category utils */
export const ifNameProblem = (s: string): Problem | undefined => {
  if (s === '') return { msg: 'interface name is empty' }
  if (Buffer.byteLength(s) > 15) {
    return { msg: 'interface name is too long', details: 'interface name should be less than 16 characters' }
  }
  if (s === '.' || s === '..') return { msg: 'interface name is . or ..' }
  if (/[/:\s]/.test(s)) return { msg: 'interface name contains / or : or whitespace characters' }
  // Beyond the reference: core's one rule for names that reach the kernel and iptables (`+` is
  // an iptables wildcard, a leading `-` an option).
  return IfName.is(s) ? undefined : { msg: 'invalid interface name', details: `${JSON.stringify(s)}: ${IF_NAME_RULE}` }
}

/** What core's IfName accepts, in words. @category constants */
export const IF_NAME_RULE = 'letters, digits, _ . and - only, not starting with . or -'

const CONTAINER_ID_MAX = 256

/** CNI utils ValidateContainerID, and core's length bound (the reference has none). @category utils */
export const containerIdProblem = (s: string): Problem | undefined => {
  if (ContainerId.is(s)) return undefined
  if (s.length > CONTAINER_ID_MAX && ContainerId.is(s.slice(0, CONTAINER_ID_MAX))) {
    return { msg: 'containerID is too long', details: `at most ${CONTAINER_ID_MAX} characters, got ${s.length}` }
  }
  return { msg: 'invalid characters in containerID', details: excerpt(s, CONTAINER_ID_MAX) }
}

const netnsProblem = (s: string): Problem | undefined => {
  if (SandboxKey.is(s)) return undefined
  if (s.startsWith('/') && !s.includes('\0')) {
    return { msg: 'CNI_NETNS is too long', details: `at most 4096 characters, got ${s.length}` }
  }
  return { msg: 'CNI_NETNS must be an absolute path', details: excerpt(s) }
}

// -------------------------------------------------------------------------------------
// the table
// -------------------------------------------------------------------------------------

interface Row {
  readonly name: string
  /** Commands for which the variable must be set and not empty. */
  readonly required: ReadonlyArray<Command>
  /** Checked whenever the variable is set (and the command is not VERSION). */
  readonly check?: (v: string) => ReadonlyArray<Problem>
}

const one = (p: Problem | undefined): ReadonlyArray<Problem> => (p === undefined ? [] : [p])

/**
 * Which variable each command needs. CNI_PATH is required for ADD, CHECK and DEL as the reference
 * skel does (a delegated IPAM plugin is found through it) and for GC as the 1.1 spec says;
 * CNI_CONTAINERID is optional for GC and STATUS (spec 1.1; libcni sets it empty there).
 *
 * @category constants
 */
export const ENV_TABLE: ReadonlyArray<Row> = [
  { name: 'CNI_CONTAINERID', required: ['ADD', 'DEL', 'CHECK'], check: (v) => one(containerIdProblem(v)) },
  { name: 'CNI_NETNS', required: ['ADD', 'CHECK'], check: (v) => one(netnsProblem(v)) },
  { name: 'CNI_IFNAME', required: ['ADD', 'DEL', 'CHECK'], check: (v) => one(ifNameProblem(v)) },
  {
    name: 'CNI_ARGS',
    required: [],
    check: (v) => {
      const r = decodeCniArgs(v)
      return E.isLeft(r) ? r.left.map((msg) => ({ msg })) : []
    }
  },
  { name: 'CNI_PATH', required: ['ADD', 'DEL', 'CHECK', 'GC'] }
]

// Which variables a command reads at all; others (libcni sets every CNI_* for STATUS, empty or
// not) are not checked.
const READS: Readonly<Record<Command, ReadonlySet<string>>> = {
  ADD: new Set(['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH']),
  DEL: new Set(['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH']),
  CHECK: new Set(['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH']),
  GC: new Set(['CNI_PATH']),
  STATUS: new Set(['CNI_PATH']),
  VERSION: new Set()
}

/** The command named by CNI_COMMAND; case-sensitive, as the reference (`add` is refused). @category utils */
export const decodeCommand = (v: string | undefined): E.Either<CniError, Command> =>
  COMMANDS.includes(v as Command)
    ? E.right(v as Command)
    : E.left(cniError(Code.InvalidEnv, `unknown CNI_COMMAND: ${excerpt(v ?? '')}`))

/**
 * Decode the variables `command` reads. Missing ones come first, in the table's order and in the
 * reference's words (`required env variables [CNI_NETNS,CNI_PATH] missing`); invalid ones follow.
 * One problem keeps the reference's exact msg and details; several are all listed in `details`.
 *
 * @category codecs
 */
export const decodeEnv = (command: Command, env: RawEnv): E.Either<CniError, CmdArgs> => {
  const value = (name: string): string => env[name] ?? ''
  const missing = ENV_TABLE.filter((r) => r.required.includes(command) && value(r.name) === '').map((r) => r.name)
  const invalid: Array<{ readonly name: string; readonly problem: Problem }> = []
  for (const row of ENV_TABLE) {
    const v = value(row.name)
    if (v === '' || row.check === undefined || !READS[command].has(row.name)) continue
    for (const problem of row.check(v)) invalid.push({ name: row.name, problem })
  }
  const problems: ReadonlyArray<Problem> = [
    ...(missing.length > 0 ? [{ msg: `required env variables [${missing.join(',')}] missing` }] : []),
    ...invalid.map((i) => i.problem)
  ]
  const first = problems[0]
  if (first !== undefined) {
    if (problems.length === 1) return E.left(cniError(Code.InvalidEnv, first.msg, first.details))
    const all = [
      ...(missing.length > 0 ? [`missing: ${missing.join(', ')}`] : []),
      ...invalid.map(
        (i) => `${i.name}: ${i.problem.msg}${i.problem.details === undefined ? '' : ` (${i.problem.details})`}`
      )
    ]
    return E.left(cniError(Code.InvalidEnv, first.msg, all.join('; ')))
  }
  const reads = READS[command]
  const cid = value('CNI_CONTAINERID')
  const netns = value('CNI_NETNS')
  const ifName = value('CNI_IFNAME')
  const args = reads.has('CNI_ARGS') && value('CNI_ARGS') !== '' ? decodeCniArgs(value('CNI_ARGS')) : E.right(NO_ARGS)
  return E.right({
    command,
    ...(reads.has('CNI_CONTAINERID') && cid !== '' ? { containerId: cid as ContainerId } : {}),
    ...(reads.has('CNI_NETNS') && netns !== '' ? { netns: netns as SandboxKey } : {}),
    ...(reads.has('CNI_IFNAME') && ifName !== '' ? { ifName: ifName as IfName } : {}),
    args: E.isRight(args) ? args.right : NO_ARGS,
    path: value('CNI_PATH')
      .split(':')
      .filter((p) => p !== '')
  })
}
