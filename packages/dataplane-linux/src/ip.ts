/**
 * Running iproute2: one `ip` process per step, several commands per process through
 * `ip -batch -` (each process costs 2-3 ms; the kernel work of a command is far less), in the
 * host namespace or inside a sandbox's network namespace.
 *
 * A batch stops at its first failing line and prints `Command failed -:N`; that line's argv
 * becomes the `Dataplane` error, so the error names the command that failed, not the batch.
 */
import { realpathSync } from 'node:fs'
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { dataplane, invalidConfig, type CoreError } from '@isthmus/core'
import { run, type Exec } from './exec.js'
import { decodeLinks, type IpLink } from './iproute.js'

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** The commands isthmus runs, by name or path. @category model */
export interface Tools {
  readonly exec: Exec
  readonly ip: string
  readonly nsenter: string
}

/** Where an `ip` command runs: the host namespace, or the network namespace at a path. @category model */
export type Where = { readonly _tag: 'Host' } | { readonly _tag: 'Netns'; readonly path: string }

/** @category constructors */
export const host: Where = { _tag: 'Host' }
/** @category constructors */
export const inNetns = (path: string): Where => ({ _tag: 'Netns', path })

/** One `ip` command as its tokens, e.g. `['link', 'set', 'dev', 'eth0', 'up']`. @category model */
export type IpCommand = ReadonlyArray<string>

// -------------------------------------------------------------------------------------
// argv
// -------------------------------------------------------------------------------------

// `ip -n NAME` opens /var/run/netns/NAME itself and is ~0.8 ms faster than `nsenter --net=PATH ip`
// (one exec instead of two; measured from Node: 3.2 ms against 4.0 ms). Paths elsewhere (CNI_NETNS
// may be /proc/<pid>/ns/net, Docker's are /var/run/docker/netns/<id>) go through nsenter.
// `ip -n` opens /var/run/netns/NAME; /run/netns/NAME (podman's) is the same file only where
// /var/run is a link to /run (Debian and most others), checked once.
const NAMED_NETNS = /^\/var\/run\/netns\/([^/]+)$/
const NAMED_NETNS_RUN = /^\/run\/netns\/([^/]+)$/
let varRunIsRun: boolean | undefined
const runIsVarRun = (): boolean => {
  if (varRunIsRun === undefined) {
    try {
      varRunIsRun = realpathSync('/var/run') === '/run'
    } catch {
      varRunIsRun = false
    }
  }
  return varRunIsRun
}

/** The file and arguments that run `ip <args>` at `where`. @category utils */
export const ipArgv = (
  tools: Tools,
  where: Where,
  args: ReadonlyArray<string>
): readonly [string, ReadonlyArray<string>] => {
  if (where._tag === 'Host') return [tools.ip, args]
  const named = NAMED_NETNS.exec(where.path)?.[1] ?? (runIsVarRun() ? NAMED_NETNS_RUN.exec(where.path)?.[1] : undefined)
  if (named !== undefined && named !== '.' && named !== '..') return [tools.ip, ['-n', named, ...args]]
  return [tools.nsenter, [`--net=${where.path}`, tools.ip, ...args]]
}

// `ip -batch` splits lines on whitespace and treats quotes, backslashes and `#` specially: a token
// carrying any of them could change the command. Names are IfName-validated upstream; this is
// the last check before text reaches the tool.
const SAFE_TOKEN = /^[^\s"'\\#]+$/

/** A token safe to put on an `ip -batch` line. @category utils */
export const isSafeToken = (s: string): boolean => SAFE_TOKEN.test(s)

const checkTokens = (lines: ReadonlyArray<IpCommand>): E.Either<CoreError, void> => {
  for (const line of lines) {
    for (const tok of line) {
      if (!isSafeToken(tok)) return E.left(invalidConfig(`refusing to pass ${JSON.stringify(tok)} to ip -batch`))
    }
  }
  return E.right(undefined)
}

// -------------------------------------------------------------------------------------
// running
// -------------------------------------------------------------------------------------

/** Run one `ip` command (argv, no batch); returns stdout. @category utils */
export const ip = (tools: Tools, where: Where, args: ReadonlyArray<string>): TE.TaskEither<CoreError, string> => {
  const [file, argv] = ipArgv(tools, where, args)
  return pipe(
    run(tools.exec, file, argv),
    TE.map((o) => o.stdout)
  )
}

/** @category model */
export interface BatchOptions {
  /** Print `show` output as JSON (`ip -json`). */
  readonly json?: boolean
  /** Keep going after a failing line (`ip -force`); the exit code is still non-zero. */
  readonly force?: boolean
}

/** The outcome of a `-force` batch: what it printed and which lines failed with what. @category model */
export interface ForcedBatch {
  readonly stdout: string
  readonly stderr: string
  /** 0-based indices of the lines that failed. */
  readonly failed: ReadonlyArray<number>
}

const globalOpts = (o: BatchOptions): ReadonlyArray<string> => [
  ...(o.json === true ? ['-json'] : []),
  ...(o.force === true ? ['-force'] : [])
]

const failedLines = (stderr: string): ReadonlyArray<number> =>
  [...stderr.matchAll(/Command failed -:(\d+)/g)].map((m) => Number(m[1]) - 1)

/**
 * Run `lines` in one `ip -batch -` process at `where`; returns stdout. On failure the error's
 * argv is the failing line as a standalone `ip` command.
 *
 * @category utils
 */
export const ipBatch = (
  tools: Tools,
  where: Where,
  lines: ReadonlyArray<IpCommand>,
  options: BatchOptions = {}
): TE.TaskEither<CoreError, string> =>
  pipe(
    TE.fromEither(checkTokens(lines)),
    TE.chain(() => {
      const opts = globalOpts(options)
      const [file, argv] = ipArgv(tools, where, [...opts, '-batch', '-'])
      return pipe(
        run(tools.exec, file, argv, lines.map((l) => l.join(' ')).join('\n') + '\n'),
        TE.bimap(
          (e) => (e._tag === 'Dataplane' ? blameLine(tools, where, lines, opts, e) : e),
          (o) => o.stdout
        )
      )
    })
  )

const blameLine = (
  tools: Tools,
  where: Where,
  lines: ReadonlyArray<IpCommand>,
  opts: ReadonlyArray<string>,
  e: Extract<CoreError, { _tag: 'Dataplane' }>
): CoreError => {
  // Argument errors (`argument "x" is wrong`) exit at once without naming the line; a one-line
  // batch is unambiguous anyway.
  const index = failedLines(e.stderr)[0] ?? (lines.length === 1 ? 0 : undefined)
  const line = index === undefined ? undefined : lines[index]
  if (line === undefined) return e
  const [file, argv] = ipArgv(tools, where, [...opts, ...line])
  return dataplane([file, ...argv], e.exitCode, e.stderr)
}

/**
 * Run `lines` with `ip -force -batch -`: every line runs, and the caller decides which failures
 * matter (a delete of something already gone does not).
 *
 * @category utils
 */
export const ipBatchForced = (
  tools: Tools,
  where: Where,
  lines: ReadonlyArray<IpCommand>,
  options: Omit<BatchOptions, 'force'> = {}
): TE.TaskEither<CoreError, ForcedBatch> =>
  pipe(
    TE.fromEither(checkTokens(lines)),
    TE.chain(() => {
      const [file, argv] = ipArgv(tools, where, [...globalOpts({ ...options, force: true }), '-batch', '-'])
      return pipe(
        tools.exec(file, argv, lines.map((l) => l.join(' ')).join('\n') + '\n'),
        TE.chain((o) => {
          const failed = failedLines(o.stderr)
          // A non-zero exit that names no line is not a per-line failure (bad netns, bad argument).
          return o.exitCode !== 0 && failed.length === 0
            ? TE.left(dataplane([file, ...argv], o.exitCode, o.stderr))
            : TE.right<CoreError, ForcedBatch>({ stdout: o.stdout, stderr: o.stderr, failed })
        })
      )
    })
  )

/**
 * Run deletions in one process (`ip -force -batch -`), where something already gone is success:
 * a missing device (deleting one end of a veth pair takes the other with it, wherever it is) or
 * a missing neighbour/address/route entry.
 *
 * @category utils
 */
export const deleteAll = (
  tools: Tools,
  where: Where,
  lines: ReadonlyArray<IpCommand>
): TE.TaskEither<CoreError, void> =>
  pipe(
    ipBatchForced(tools, where, lines),
    TE.chain((r) => {
      const errors = r.stderr.split('\n').filter(
        (l) =>
          l.trim() !== '' &&
          !/^Command failed/.test(l) &&
          // Gone before the command ran, or while it ran (`RTNETLINK answers: No such device`).
          !/Cannot find device|No such file or directory|No such device/.test(l) &&
          // A warning, not a failure: iproute2 prints it when links change during its netlink dump
          // (parallel CNI DELs on one bridge); the command itself went on.
          !/^Dump was interrupted and may be inconsistent/.test(l)
      )
      if (r.failed.length === 0 || errors.length === 0) return TE.right(undefined)
      const line = lines[r.failed[0] ?? 0] ?? lines[0] ?? []
      const [file, argv] = ipArgv(tools, where, line)
      return TE.left(dataplane([file, ...argv], 1, r.stderr))
    })
  )

/** Delete links by name in one process; a name already gone is success. @category utils */
export const deleteLinks = (tools: Tools, where: Where, names: ReadonlyArray<string>): TE.TaskEither<CoreError, void> =>
  deleteAll(
    tools,
    where,
    names.map((n) => ['link', 'del', 'dev', n])
  )

/** `ip -json [-details] link show [dev NAME]`, decoded. @category utils */
export const showLinks = (
  tools: Tools,
  where: Where,
  dev?: string,
  details = false
): TE.TaskEither<CoreError, ReadonlyArray<IpLink>> =>
  pipe(
    ip(tools, where, [
      '-json',
      ...(details ? ['-details'] : []),
      'link',
      'show',
      ...(dev === undefined ? [] : ['dev', dev])
    ]),
    TE.chainEitherK((out) => decodeLinks(out))
  )

/**
 * Like `showLinks` for one device, but a missing device is `undefined` rather than an error.
 *
 * @category utils
 */
export const findLink = (
  tools: Tools,
  where: Where,
  dev: string,
  details = false
): TE.TaskEither<CoreError, IpLink | undefined> =>
  pipe(
    ip(tools, where, ['-json', ...(details ? ['-details'] : []), 'addr', 'show', 'dev', dev]),
    TE.chainEitherK((out) => decodeLinks(out)),
    TE.map((links) => links.find((l) => l.ifname === dev)),
    TE.orElse((e) => (isNoDevice(e) ? TE.right(undefined) : TE.left(e)))
  )

// -------------------------------------------------------------------------------------
// error predicates
// -------------------------------------------------------------------------------------

const stderrOf = (e: CoreError): string => (e._tag === 'Dataplane' ? e.stderr : '')

/** `ip` said the device does not exist (show, set and del word it differently). @category utils */
export const isNoDevice = (e: CoreError): boolean =>
  /Cannot find device|does not exist|No such device/.test(stderrOf(e))

/** `ip` said the object already exists. @category utils */
export const isExists = (e: CoreError): boolean => /File exists/.test(stderrOf(e))
