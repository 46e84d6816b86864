/**
 * What every command gets, and the helpers they share: opening the core for the netconf (and
 * closing it whatever happens), running a flow with core errors mapped to CNI errors, and running
 * the delegated IPAM plugin.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import * as t from 'io-ts'
import {
  compositeControlPlane,
  DEFAULT_STATE_DIR,
  describe,
  isNotFound,
  parseJson,
  decodeJson,
  type CoreError,
  type Env,
  type Flow,
  type Logger,
  type StepErrors
} from '@isthmus/core'
import type { CmdArgs, RawEnv } from '../protocol/Env.js'
import { Code, cniError, isCniError, type CniError } from '../protocol/Error.js'
import { excerpt } from '../protocol/Json.js'
import type { NetConf } from '../protocol/NetConf.js'
import { decodeResult, type Result } from '../protocol/Result.js'
import { compareVersions } from '../protocol/Version.js'
import type { ControllerPorts, CoreSession, PluginRun, Runtime } from '../runtime.js'
import { noController } from '../noController.js'
import { controllerSettingsOf, ipamModeOf, isIpamCall, toCniError } from '../translate.js'

/** @category model */
export interface CommandContext {
  readonly args: CmdArgs
  readonly netconf: NetConf
  /** The raw environment, passed on to delegates unchanged. */
  readonly env: RawEnv
  readonly runtime: Runtime
  readonly log: Logger
}

/** A result to print (ADD), nothing (DEL, CHECK, GC, STATUS), or the error document. @category model */
export type CommandOutcome = E.Either<CniError, Result | undefined>

/** A command, run once by the envelope. @category model */
export type CommandTask = TE.TaskEither<CniError, Result | undefined>

/** What could not be opened: the state store, or the controller of the `contrail` section. @category model */
export type Opening = 'store' | 'controller'

// -------------------------------------------------------------------------------------
// CNI errors inside core's saga
// -------------------------------------------------------------------------------------

/** A failure inside a CNI saga: a core error from a flow, or a CNI error as it will be answered. */
export type StepError = CoreError | CniError

const isCoreError = (e: StepError): e is CoreError => '_tag' in e

/**
 * The CNI sagas' errors: an undo that finds its object gone had nothing to do; a warning names a
 * core error with its sentence and a CNI error with its msg and details.
 *
 * @category constants
 */
export const cniStepErrors: StepErrors<StepError> = {
  gone: (e) => isCoreError(e) && isNotFound(e),
  describe: (e) => (isCoreError(e) ? describe(e) : e.details === undefined ? e.msg : `${e.msg}: ${e.details}`)
}

/** A saga's failure as the CNI error to answer: a CNI error as it is, a core error mapped. @category utils */
export const answerOf = (e: StepError): CniError => (isCoreError(e) ? toCniError(e) : e)

/** The netconf's `prevResult`, decoded, when it has one. @category utils */
export const prevResultOf = (ctx: CommandContext): E.Either<CniError, Result | undefined> =>
  ctx.netconf.conf.prevResult === undefined
    ? E.right(undefined)
    : decodeResult(ctx.netconf.conf.prevResult, ctx.netconf.cniVersion)

/**
 * The delegated IPAM plugin the command goes on to, if any: none when the netconf's IPAM is
 * isthmus's own, nor when isthmus is itself the IPAM of another plugin.
 *
 * @category utils
 */
export const delegatedPlugin = (ctx: CommandContext): string | undefined => {
  const { conf } = ctx.netconf
  const mode = ipamModeOf(conf, ctx.runtime.selfNames)
  return !isIpamCall(conf, ctx.runtime.selfNames) && mode._tag === 'Delegated' ? mode.plugin : undefined
}

// -------------------------------------------------------------------------------------
// the core
// -------------------------------------------------------------------------------------

// First, as it holds nothing to close: credentials are read, nothing is contacted.
const controllerOf = (ctx: CommandContext): TE.TaskEither<CoreError, ControllerPorts> => {
  const settings = controllerSettingsOf(ctx.netconf.conf, ctx.env)
  return settings === undefined ? TE.right(noController) : ctx.runtime.controller(settings, ctx.log)
}

const openStore = (ctx: CommandContext): TE.TaskEither<CoreError, CoreSession> => {
  const { conf } = ctx.netconf
  const chain = conf.chainPrefix === undefined ? {} : { chainPrefix: conf.chainPrefix }
  return ctx.runtime.open({ stateDir: conf.stateDir ?? DEFAULT_STATE_DIR, ...chain }, ctx.log)
}

/** The session's Env with the controller's control plane in front of the built-in one, and its agent. */
const withController = (opened: CoreSession, ports: ControllerPorts): CoreSession => ({
  ...opened,
  env: {
    ...opened.env,
    controlPlane: compositeControlPlane({ controller: ports.controlPlane, builtin: opened.env.controlPlane }),
    agent: ports.agent
  }
})

// The store is closed whatever `run` does, a thrown bug included (the envelope reports that one).
const closing =
  <A>(opened: CoreSession, run: TE.TaskEither<CniError, A>): TE.TaskEither<CniError, A> =>
  () =>
    run().finally(() => opened.close())

/**
 * Run `f` with the core opened at the netconf's `stateDir`; the store is closed afterwards.
 * Networks that name a controller go to the `contrail` section's controller and agent (or, when
 * the netconf has none, to a guard that refuses them); every other network to the built-in
 * IPAM, with no agent.
 *
 * @category utils
 */
export const withCore = <A>(
  ctx: CommandContext,
  f: (s: CoreSession) => TE.TaskEither<CniError, A>,
  onOpenError: (e: CoreError, what: Opening) => CniError = toCniError
): TE.TaskEither<CniError, A> =>
  pipe(
    TE.Do,
    TE.bind('ports', () =>
      pipe(
        controllerOf(ctx),
        TE.mapLeft((e) => onOpenError(e, 'controller'))
      )
    ),
    TE.bind('opened', () =>
      pipe(
        openStore(ctx),
        TE.mapLeft((e) => onOpenError(e, 'store'))
      )
    ),
    TE.chain(({ ports, opened }) => closing(opened, f(withController(opened, ports))))
  )

/** Run a flow; a core error becomes its CNI error. @category utils */
export const runFlow = <A>(env: Env, flow: Flow<A>): TE.TaskEither<CniError, A> =>
  pipe(flow(env), TE.mapLeft(toCniError))

// -------------------------------------------------------------------------------------
// delegation (CNI SPEC §Delegated plugins)
// -------------------------------------------------------------------------------------

// A failed delegate's own error document, if it printed one; its code passes through unchanged.
const delegateDocument = (stdout: string): CniError | undefined =>
  pipe(
    parseJson('the delegate error')(stdout),
    E.match(
      () => undefined,
      (doc) =>
        isCniError(doc)
          ? { code: doc.code, msg: doc.msg, ...(doc.details === undefined ? {} : { details: doc.details }) }
          : undefined
    )
  )

const delegateOutcome =
  (ctx: CommandContext, plugin: string, command: string) =>
  (run: PluginRun | undefined): E.Either<CniError, string> => {
    if (run === undefined) {
      const path = excerpt(ctx.args.path.join(' '), 256)
      return E.left(
        cniError(Code.InvalidConfig, `failed to find plugin ${JSON.stringify(excerpt(plugin))} in path [${path}]`)
      )
    }
    if (run.stderr.trim() !== '') ctx.log.debug('delegate stderr', { plugin, command, stderr: run.stderr.trim() })
    if (run.exitCode === 0) return E.right(run.stdout)
    const failure = run.stderr.trim() || run.stdout.trim() || `exit ${run.exitCode}`
    return E.left(
      delegateDocument(run.stdout) ?? cniError(Code.Internal, `delegated plugin ${plugin} failed (${command})`, failure)
    )
  }

/**
 * Run the delegated plugin with the same stdin and environment, CNI_COMMAND set to `command`.
 * Its error document passes through with its code unchanged (as the reference propagates it);
 * a failure without one becomes 999 with its stderr, as libcni does.
 *
 * @category utils
 */
export const runDelegate = (
  ctx: CommandContext,
  plugin: string,
  command: string,
  stdin: string = ctx.netconf.text
): TE.TaskEither<CniError, string> =>
  pipe(
    TE.rightTask(() => ctx.runtime.delegate.exec(plugin, ctx.args.path, { ...ctx.env, CNI_COMMAND: command }, stdin)),
    TE.chainEitherK(delegateOutcome(ctx, plugin, command))
  )

/** The delegate's ADD result, decoded. @category utils */
export const delegateAdd = (ctx: CommandContext, plugin: string): TE.TaskEither<CniError, Result> =>
  pipe(
    runDelegate(ctx, plugin, 'ADD'),
    TE.chainEitherK((out) =>
      pipe(
        parseJson(`the result of ${plugin}`)(out),
        E.mapLeft((e) => cniError(Code.Decode, `delegated plugin ${plugin} printed no JSON result`, describe(e)))
      )
    ),
    TE.chainEitherK((doc) => decodeResult(doc, ctx.netconf.cniVersion, `the result of ${plugin}`))
  )

/** What VERSION answers, as far as this plugin reads it. */
const Versions = t.type({ supportedVersions: t.array(t.unknown) })

const speaks110 = (out: string): boolean =>
  pipe(
    decodeJson(Versions, 'the VERSION answer')(out),
    E.exists((v) => v.supportedVersions.some((s) => typeof s === 'string' && compareVersions(s, '1.1.0') >= 0))
  )

/**
 * Whether the delegate speaks spec 1.1.0 (GC, STATUS): asked with VERSION. Older plugins (the
 * Debian reference plugins speak up to 1.0.0) would refuse the command with code 4.
 *
 * @category utils
 */
export const delegateSpeaks110 = (ctx: CommandContext, plugin: string): TE.TaskEither<never, boolean> =>
  pipe(
    runDelegate(ctx, plugin, 'VERSION', JSON.stringify({ cniVersion: ctx.netconf.cniVersion })),
    TE.match(() => false, speaks110),
    TE.rightTask
  )

/**
 * The delegated IPAM's own command after ours (DEL, CHECK, GC, STATUS), when there is one
 * (`delegatedPlugin`); GC and STATUS only go to a delegate that speaks 1.1.0.
 *
 * @category utils
 */
export const forwardToDelegate = (
  ctx: CommandContext,
  command: 'DEL' | 'CHECK' | 'GC' | 'STATUS'
): TE.TaskEither<CniError, void> => {
  const plugin = delegatedPlugin(ctx)
  if (plugin === undefined) return TE.right(undefined)
  const run = pipe(
    runDelegate(ctx, plugin, command),
    TE.map(() => undefined)
  )
  return command === 'DEL' || command === 'CHECK'
    ? run
    : pipe(
        delegateSpeaks110(ctx, plugin),
        TE.chainW((speaks) => (speaks ? run : TE.right(undefined)))
      )
}
