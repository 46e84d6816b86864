/**
 * The envelope, as the reference's `pkg/skel` (github.com/containernetworking/cni/pkg/skel): a pure function of the
 * environment and stdin to `{stdout, stderr, exitCode}`. It decodes the environment with the
 * per-command table, answers VERSION without reading stdin, checks the netconf's shared keys in
 * the reference's order and words, runs the command, and prints either the result in the
 * requested `cniVersion` or the error document. Only the executable's entry point touches the process.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import type * as T from 'fp-ts/lib/Task.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { causeText, NetworkId, jsonRefusalText, parseJsonWithin, type Logger } from '@isthmus/core'
import { add } from './commands/add.js'
import type { CommandOutcome } from './commands/context.js'
import { check } from './commands/check.js'
import { del } from './commands/del.js'
import { withDockerModes, type CommandTable } from './docker/dispatch.js'
import { gc } from './commands/gc.js'
import { status } from './commands/status.js'
import { decodeCommand, decodeEnv, type CmdArgs, type Command, type RawEnv } from './protocol/Env.js'
import { Code, cniError, decodeAs, errorDocument, internalError, type CniError } from './protocol/Error.js'
import { excerpt, STDIN_LIMITS } from './protocol/Json.js'
import { IsthmusConf, type NetConf } from './protocol/NetConf.js'
import { toVersion } from './protocol/Result.js'
import {
  atLeast,
  CURRENT_VERSION,
  IMPLICIT_VERSION,
  SUPPORTED_VERSIONS,
  versionInfo,
  type SupportedVersion
} from './protocol/Version.js'
import type { Runtime } from './runtime.js'

/**
 * What the process must do: write `stdout` (one JSON document or nothing), `stderr`, exit with `exitCode`.
 *
 * @category model
 */
export interface SkelOutput {
  readonly stdout: string
  readonly stderr: string
  readonly exitCode: number
}

/** stdin, read only when needed (VERSION reads none). @category model */
export type Stdin = string | (() => Promise<string>)

/** What the reference prints on stderr when CNI_COMMAND is unset. @category constants */
export const ABOUT = `CNI isthmus plugin\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}\n`

// The reference prints results and errors with 4-space indent and no newline, VERSION compact
// with one (read off the reference bridge plugin); consumers must not depend on it, but matching costs nothing.
const pretty = (doc: unknown): string => JSON.stringify(doc, null, 4)

const fail = (e: CniError, version: string): SkelOutput => ({
  stdout: errorDocument(e, version),
  stderr: '',
  exitCode: 1
})

/**
 * What a bug (anything thrown) prints: code 999 with a short sentence on stdout, the stack on
 * stderr, or in the call's log when it has one. The bin and the hand-off server end with it too.
 *
 * @category utils
 */
export const bugOutput = (thrown: unknown, version: string, log?: Logger): SkelOutput => {
  const { error, stack } = internalError(thrown)
  let logged = false
  try {
    log?.error('internal error', { stack })
    logged = log !== undefined
  } catch {
    // the stack goes to stderr instead
  }
  return { ...fail(error, version), stderr: logged ? '' : `${stack}\n` }
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/

/**
 * The shared keys, in the reference skel's order: JSON (6), `name` present (7), `name` format (7),
 * `cniVersion` supported (1), the command allowed at that version (1); then this plugin's keys (7).
 *
 * @category utils
 */
export const decodeNetConf = (command: Command, text: string): E.Either<CniError, NetConf> => {
  // Size and depth first: nothing below may walk an unbounded value.
  const parsed = parseJsonWithin(text, STDIN_LIMITS)
  if (E.isLeft(parsed)) {
    return E.left(cniError(Code.Decode, `error unmarshall network config: ${jsonRefusalText(parsed.left)}`))
  }
  const raw = parsed.right
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return E.left(cniError(Code.Decode, 'error unmarshall network config: not a JSON object'))
  }
  const obj = raw as Record<string, unknown>
  const name = obj['name']
  if (name === undefined || name === null || name === '') {
    return E.left(cniError(Code.InvalidConfig, 'missing network name'))
  }
  if (typeof name === 'string' && NAME_RE.test(name) && !NetworkId.is(name)) {
    return E.left(
      cniError(Code.InvalidConfig, 'network name is too long', `at most 128 characters, got ${name.length}`)
    )
  }
  if (typeof name !== 'string' || !NetworkId.is(name)) {
    return E.left(cniError(Code.InvalidConfig, 'invalid characters found in network name', excerpt(name, 256)))
  }
  const v = obj['cniVersion']
  const version =
    v === undefined || v === null || v === '' ? IMPLICIT_VERSION : typeof v === 'string' ? v : JSON.stringify(v)
  if (!(SUPPORTED_VERSIONS as ReadonlyArray<string>).includes(version)) {
    return E.left(
      cniError(
        Code.IncompatibleVersion,
        'incompatible CNI versions',
        `config is ${JSON.stringify(excerpt(version))}, ` +
          `plugin supports [${SUPPORTED_VERSIONS.map((s) => JSON.stringify(s)).join(' ')}]`
      )
    )
  }
  // From here on the request's version is known, and errors carry it.
  const versioned = (e: CniError): E.Either<CniError, NetConf> => E.left({ ...e, cniVersion: version })
  if (command === 'CHECK' && !atLeast(version, '0.4.0')) {
    return versioned(cniError(Code.IncompatibleVersion, 'config version does not allow CHECK'))
  }
  if ((command === 'GC' || command === 'STATUS') && !atLeast(version, '1.1.0')) {
    return versioned(cniError(Code.IncompatibleVersion, `config version does not allow ${command}`))
  }
  return pipe(
    decodeAs(IsthmusConf, Code.InvalidConfig, 'invalid network config')(obj),
    E.bimap(
      (e): CniError => ({ ...e, cniVersion: version }),
      (conf): NetConf => ({ cniVersion: version, name: name, conf, raw: obj, text })
    )
  )
}

const COMMANDS: CommandTable = withDockerModes({
  ADD: add,
  DEL: del,
  CHECK: check,
  GC: gc,
  STATUS: status
})

const logFields = (args: CmdArgs, nc: NetConf): Record<string, unknown> => ({
  op: args.command,
  networkId: nc.name,
  ...(args.containerId === undefined ? {} : { containerId: args.containerId }),
  ...(args.ifName === undefined ? {} : { ifName: args.ifName }),
  ...(args.netns === undefined ? {} : { netns: args.netns }),
  ...args.args.k8s
})

/**
 * The plugin's entry point as a function. Never throws and never rejects: bad input is the
 * protocol's error, a bug code 999 (`bugOutput`), both one document on stdout.
 *
 * @example
 * const out = await runSkel(runtime)({ CNI_COMMAND: 'VERSION' }, '')
 * // out.stdout === '{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n'
 *
 * @category constructors
 */
export const runSkel =
  (runtime: Runtime) =>
  async (env: RawEnv, stdin: Stdin): Promise<SkelOutput> => {
    // A bug anywhere below is still one error document (its stack in the call's log, see envelope).
    const call = { version: CURRENT_VERSION as string }
    try {
      return await envelope(runtime, env, stdin, call)()
    } catch (e) {
      return bugOutput(e, call.version)
    }
  }

/** A decoded request: the command and its environment. */
interface Request {
  readonly command: Exclude<Command, 'VERSION'>
  readonly args: CmdArgs
}

/** The command and its environment, or what to answer at once (no command: ABOUT; VERSION; a bad environment). */
const decodeRequest = (env: RawEnv): E.Either<SkelOutput, Request> => {
  const rawCommand = env['CNI_COMMAND']
  if (rawCommand === undefined || rawCommand === '') return E.left({ stdout: '', stderr: ABOUT, exitCode: 0 })
  return pipe(
    decodeCommand(rawCommand),
    E.mapLeft((e) => fail(e, CURRENT_VERSION)),
    E.chain((command) =>
      command === 'VERSION'
        ? E.left({ stdout: `${JSON.stringify(versionInfo())}\n`, stderr: '', exitCode: 0 })
        : pipe(
            decodeEnv(command, env),
            E.bimap(
              (e) => fail(e, CURRENT_VERSION),
              (args) => ({ command, args })
            )
          )
    )
  )
}

const readStdin = (stdin: Stdin): TE.TaskEither<CniError, string> =>
  typeof stdin === 'string'
    ? TE.right(stdin)
    : TE.tryCatch(stdin, (e) => cniError(Code.Io, 'error reading from stdin', causeText(e)))

const envelope = (runtime: Runtime, env: RawEnv, stdin: Stdin, call: { version: string }): T.Task<SkelOutput> =>
  pipe(
    TE.fromEither(decodeRequest(env)),
    TE.bindTo('request'),
    TE.bind('text', () =>
      pipe(
        readStdin(stdin),
        TE.mapLeft((e) => fail(e, CURRENT_VERSION))
      )
    ),
    TE.bind('netconf', ({ request, text }) =>
      TE.fromEither(
        pipe(
          decodeNetConf(request.command, text),
          E.mapLeft((e) => fail(e, CURRENT_VERSION))
        )
      )
    ),
    TE.chainTaskK(({ request, text, netconf }) => () => {
      call.version = netconf.cniVersion
      return runCommand(runtime, env, request, text, netconf)
    }),
    TE.toUnion
  )

// The process edge: runs the command's TaskEither once, with the call's logger open around it.
const runCommand = async (
  runtime: Runtime,
  env: RawEnv,
  request: Request,
  text: string,
  nc: NetConf
): Promise<SkelOutput> => {
  const version = nc.cniVersion as SupportedVersion
  // Logs go to the netconf's logFile, else to stderr; never to stdout, which holds the one result document.
  const file = nc.conf.logFile
  const { logger, close } = runtime.logger({
    level: nc.conf.logLevel ?? (file === undefined ? 'warn' : 'info'),
    stderr: file === undefined,
    ...(file === undefined ? {} : { file })
  })
  try {
    const started = Date.now()
    const fields = logFields(request.args, nc)
    logger.debug('request', { ...fields, stdin: text })
    const outcome = await COMMANDS[request.command]({ args: request.args, netconf: nc, env, runtime, log: logger })()
    const out: SkelOutput = E.isLeft(outcome)
      ? fail(outcome.left, version)
      : {
          stdout: outcome.right === undefined ? '' : pretty(toVersion(outcome.right, version)),
          stderr: '',
          exitCode: 0
        }
    done(logger, fields, started, outcome)
    return out
  } catch (e) {
    return bugOutput(e, version, logger)
  } finally {
    // A log that cannot be flushed must not turn the answer into another one.
    await close().catch(() => undefined)
  }
}

const done = (log: Logger, fields: Record<string, unknown>, started: number, outcome: CommandOutcome): void => {
  const durationMs = Date.now() - started
  if (E.isLeft(outcome)) {
    log.warn('failed', {
      ...fields,
      durationMs,
      code: outcome.left.code,
      msg: outcome.left.msg,
      details: outcome.left.details
    })
  } else log.info('done', { ...fields, durationMs, ...(outcome.right === undefined ? {} : { result: outcome.right }) })
}
