/**
 * What every command gets, and the helpers they share: opening the core for the netconf (and
 * closing it whatever happens), running a flow with core errors mapped to CNI errors, and running
 * the delegated IPAM plugin.
 */
import * as E from 'fp-ts/lib/Either.js'
import { compositeControlPlane, DEFAULT_STATE_DIR, type CoreError, type Env, type Flow, type Logger } from '@isthmus/core'
import type { CmdArgs, RawEnv } from '../protocol/Env.js'
import { Code, cniError, isCniError, type CniError } from '../protocol/Error.js'
import { excerpt } from '../protocol/Json.js'
import type { NetConf } from '../protocol/NetConf.js'
import { decodeResult, type Result } from '../protocol/Result.js'
import { compareVersions } from '../protocol/Version.js'
import type { CoreSession, Runtime } from '../runtime.js'
import { noController } from '../noController.js'
import { controllerSettingsOf, toCniError } from '../translate.js'

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

/** What could not be opened: the state store, or the controller of the `contrail` section. @category model */
export type Opening = 'store' | 'controller'

/**
 * Run `f` with the core opened at the netconf's `stateDir`; the store is closed afterwards.
 * Networks that name a controller go to the `contrail` section's controller and agent (or, when
 * the netconf has none, to a guard that refuses them); every other network to the built-in
 * IPAM, with no agent.
 *
 * @category utils
 */
export const withCore = async <A>(
  ctx: CommandContext,
  f: (s: CoreSession) => Promise<E.Either<CniError, A>>,
  onOpenError: (e: CoreError, what: Opening) => CniError = toCniError
): Promise<E.Either<CniError, A>> => {
  const { conf } = ctx.netconf
  // First, as it holds nothing to close: credentials are read, nothing is contacted.
  const settings = controllerSettingsOf(conf, ctx.env)
  const ports = settings === undefined ? E.right(noController) : await ctx.runtime.controller(settings, ctx.log)()
  if (E.isLeft(ports)) return E.left(onOpenError(ports.left, 'controller'))
  const opened = await ctx.runtime.open(
    { stateDir: conf.stateDir ?? DEFAULT_STATE_DIR, ...(conf.chainPrefix === undefined ? {} : { chainPrefix: conf.chainPrefix }) },
    ctx.log
  )()
  if (E.isLeft(opened)) return E.left(onOpenError(opened.left, 'store'))
  const { env } = opened.right
  const session: CoreSession = {
    ...opened.right,
    env: {
      ...env,
      controlPlane: compositeControlPlane({ controller: ports.right.controlPlane, builtin: env.controlPlane }),
      agent: ports.right.agent
    }
  }
  try {
    return await f(session)
  } finally {
    await opened.right.close()
  }
}

/** Run a flow; a core error becomes its CNI error. @category utils */
export const runFlow = async <A>(env: Env, flow: Flow<A>): Promise<E.Either<CniError, A>> => {
  const r = await flow(env)()
  return E.isLeft(r) ? E.left(toCniError(r.left)) : r
}

// -------------------------------------------------------------------------------------
// delegation (CNI SPEC §Delegated plugins)
// -------------------------------------------------------------------------------------

/**
 * Run the delegated plugin with the same stdin and environment, CNI_COMMAND set to `command`.
 * Its error document passes through with its code unchanged (as the reference propagates it);
 * a failure without one becomes 999 with its stderr, as libcni does.
 *
 * @category utils
 */
export const runDelegate = async (
  ctx: CommandContext,
  plugin: string,
  command: string,
  stdin: string = ctx.netconf.text
): Promise<E.Either<CniError, string>> => {
  const run = await ctx.runtime.delegate.exec(plugin, ctx.args.path, { ...ctx.env, CNI_COMMAND: command }, stdin)
  if (run === undefined) {
    return E.left(cniError(Code.InvalidConfig, `failed to find plugin ${JSON.stringify(excerpt(plugin))} in path [${excerpt(ctx.args.path.join(' '), 256)}]`))
  }
  if (run.stderr.trim() !== '') ctx.log.debug('delegate stderr', { plugin, command, stderr: run.stderr.trim() })
  if (run.exitCode === 0) return E.right(run.stdout)
  let doc: unknown
  try {
    doc = JSON.parse(run.stdout)
  } catch {
    doc = undefined
  }
  return E.left(
    isCniError(doc)
      ? { code: doc.code, msg: doc.msg, ...(doc.details === undefined ? {} : { details: doc.details }) }
      : cniError(Code.Internal, `delegated plugin ${plugin} failed (${command})`, run.stderr.trim() || run.stdout.trim() || `exit ${run.exitCode}`)
  )
}

/** The delegate's ADD result, decoded. @category utils */
export const delegateAdd = async (ctx: CommandContext, plugin: string): Promise<E.Either<CniError, Result>> => {
  const out = await runDelegate(ctx, plugin, 'ADD')
  if (E.isLeft(out)) return out
  let doc: unknown
  try {
    doc = JSON.parse(out.right)
  } catch (e) {
    return E.left(cniError(Code.Decode, `delegated plugin ${plugin} printed no JSON result`, e instanceof Error ? e.message : String(e)))
  }
  return decodeResult(doc, ctx.netconf.cniVersion, `the result of ${plugin}`)
}

/**
 * Whether the delegate speaks spec 1.1.0 (GC, STATUS): asked with VERSION. Older plugins (the
 * Debian reference plugins speak up to 1.0.0) would refuse the command with code 4.
 *
 * @category utils
 */
export const delegateSpeaks110 = async (ctx: CommandContext, plugin: string): Promise<boolean> => {
  const out = await runDelegate(ctx, plugin, 'VERSION', JSON.stringify({ cniVersion: ctx.netconf.cniVersion }))
  if (E.isLeft(out)) return false
  try {
    const v = JSON.parse(out.right) as { supportedVersions?: unknown }
    return Array.isArray(v.supportedVersions) && v.supportedVersions.some((s) => typeof s === 'string' && compareVersions(s, '1.1.0') >= 0)
  } catch {
    return false
  }
}
