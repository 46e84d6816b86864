/**
 * Contrail settings → the Contrail ports: the config API as a control plane, the vRouter agent,
 * Docker's IPAM over the config API. Two sources name the same things: the flags of `isthmus
 * serve`, and a CNI netconf's `contrail` section; the keystone credentials are resolved here for
 * both, one way.
 *
 * Credentials never come from argv or a netconf (a process list shows argv to every user; a
 * netconf sits in a world-readable directory): they come from the standard OpenStack variables
 * (OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME or OS_TENANT_NAME, OS_USER_DOMAIN_NAME,
 * OS_PROJECT_DOMAIN_NAME), or from a credentials file of the same KEY=VALUE lines (an openrc file;
 * `export` and quotes allowed). The variables win over the file. An error names the file or the
 * missing variables, never a value read from them.
 */
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import * as E from 'fp-ts/lib/Either.js'
import * as T from 'fp-ts/lib/Task.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import {
  compositeControlPlane,
  describe,
  invalidConfig,
  type ControlPlane,
  type CoreError,
  type Env,
  type Ipam,
  type Logger,
  type Store
} from '@isthmus/core'
import type { ControllerSettings, Runtime } from '@isthmus/cni-exec'
import {
  configApi,
  contrailControlPlane,
  contrailIpam,
  DEFAULT_HTTP_POLICY,
  keystoneAuth,
  parseCredentialsFile,
  reconcileController,
  userinfoOf,
  vrouterAgent,
  type Auth,
  type HttpPolicy
} from '@isthmus/contrail'

// -------------------------------------------------------------------------------------
// keystone credentials
// -------------------------------------------------------------------------------------

type Vars = Readonly<Record<string, string | undefined>>

/** A keystone endpoint and where its credentials may be found. @category model */
export interface KeystoneSource {
  readonly url: string
  readonly version: 'v2' | 'v3'
  readonly credentialsFile?: string | undefined
  /** The `OS_*` variables (they win over the file). */
  readonly vars: Vars
}

/** How the errors name the places the settings came from (flags or netconf keys). @category model */
export interface Wording {
  readonly unreadable: (file: string, code: string) => string
  readonly missing: (names: ReadonlyArray<string>, file: string | undefined) => string
}

const FLAG_WORDING: Wording = {
  unreadable: (file, code) => `cannot read --contrail-credentials-file ${file}: ${code}`,
  missing: (names) => `--keystone-url needs ${names.join(', ')} in the environment or in --contrail-credentials-file`
}

const NETCONF_WORDING: Wording = {
  unreadable: (file, code) => `cannot read contrail.keystone.credentialsFile ${file}: ${code}`,
  missing: (names, file) =>
    `keystone needs ${names.join(', ')} in ` +
    (file === undefined ? 'the environment (or contrail.keystone.credentialsFile)' : `the environment or ${file}`)
}

/** The read of a credentials file: its text, or the error code (never the error's text). */
type FileRead = E.Either<string, string>

const errorCode = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? 'unreadable'

/**
 * The credentials of `k` from the variables and the file's read (undefined: no file named). Left
 * is one sentence worded for where the settings came from.
 *
 * @category utils
 */
export const keystoneOf = (k: KeystoneSource, file: FileRead | undefined, wording: Wording): E.Either<string, Auth> =>
  pipe(
    file === undefined
      ? E.right({})
      : pipe(
          file,
          E.bimap((code) => wording.unreadable(k.credentialsFile ?? '', code), parseCredentialsFile)
        ),
    E.chain((fromFile) =>
      pipe(
        keystoneAuth({ url: k.url, version: k.version }, k.vars, fromFile),
        E.mapLeft((missing) => wording.missing(missing, k.credentialsFile))
      )
    )
  )

// -------------------------------------------------------------------------------------
// from the flags of `isthmus serve`
// -------------------------------------------------------------------------------------

/** The Contrail flags of `isthmus serve`, as yargs gives them. @category model */
export interface ContrailArgs {
  readonly contrailApi?: string | undefined
  readonly keystoneUrl?: string | undefined
  readonly keystoneVersion: 'v2' | 'v3'
  readonly contrailCredentialsFile?: string | undefined
  readonly vrouterAgent: string
  readonly contrailOwner: string
}

/** Everything the daemon needs to reach Contrail, credentials resolved. @category model */
export interface ContrailSettings {
  readonly api: string
  readonly auth: Auth
  readonly agent: string
  readonly owner: string
}

/**
 * The settings of the flags, or undefined without `--contrail-api`. Left is one sentence naming
 * what is missing.
 *
 * @category constructors
 */
export const contrailSettings = (
  a: ContrailArgs,
  env: Vars,
  read: (path: string) => string = (p) => readFileSync(p, 'utf8')
): E.Either<string, ContrailSettings | undefined> => {
  if (a.contrailApi === undefined || a.contrailApi === '') return E.right(undefined)
  const base = { api: a.contrailApi, agent: a.vrouterAgent, owner: a.contrailOwner }
  if (a.keystoneUrl === undefined || a.keystoneUrl === '') return E.right({ ...base, auth: { kind: 'none' } })
  const file = a.contrailCredentialsFile
  const k: KeystoneSource = { url: a.keystoneUrl, version: a.keystoneVersion, credentialsFile: file, vars: env }
  const text = file === undefined ? undefined : E.tryCatch(() => read(file), errorCode)
  return pipe(
    keystoneOf(k, text, FLAG_WORDING),
    E.map((auth) => ({ ...base, auth }))
  )
}

/** The daemon's ports with Contrail put in: control plane, agent and Docker IPAM. @category model */
export interface WithContrail {
  readonly env: Env
  readonly ipam: Ipam
  /** Controller and agent reconciliation at start (see @isthmus/contrail reconcile); logs what it did. */
  readonly reconcile: () => Promise<void>
}

/**
 * Contrail around the built-in ports: networks that name a controller go to the config API, the
 * others stay with the built-in IPAM.
 *
 * @category constructors
 */
export const withContrail = (
  s: ContrailSettings,
  base: {
    readonly env: Env
    readonly ipam: Ipam
    readonly store: Store
    readonly builtin: ControlPlane
    readonly log: Logger
  }
): WithContrail => {
  const urls = [
    ['--contrail-api', s.api],
    ['--vrouter-agent', s.agent],
    ...(s.auth.kind === 'keystone' ? [['--keystone-url', s.auth.url]] : [])
  ] as const
  const withUserinfo = urls.filter(([, url]) => userinfoOf(url) !== undefined).map(([flag]) => flag)
  if (withUserinfo.length > 0) {
    base.log.warn(
      'credentials in a URL on the command line are visible to every user of this host; ' +
        'they are sent as HTTP Basic authorization',
      { flags: withUserinfo }
    )
  }
  const api = configApi({ url: s.api, auth: s.auth, log: base.log })
  const agent = vrouterAgent({ url: s.agent, log: base.log })
  const controlPlane = compositeControlPlane({
    controller: contrailControlPlane({ api, owner: s.owner, store: base.store }),
    builtin: base.builtin
  })
  const log = base.log
  return {
    env: { ...base.env, controlPlane, agent },
    ipam: contrailIpam(base.ipam, { api, store: base.store, owner: s.owner }),
    reconcile: async () => {
      const ctl = await reconcileController({ api, store: base.store, owner: s.owner })()
      if (E.isLeft(ctl)) log.warn('contrail reconcile failed', { detail: describe(ctl.left) })
      else {
        log.info('contrail reconciled', {
          removed: ctl.right.removed.length,
          reservationsRemoved: ctl.right.reservationsRemoved.length,
          missing: ctl.right.missing,
          failures: ctl.right.failures.map((f) => `${f.target}: ${describe(f.error)}`)
        })
      }
      const ag = await agent.reconcile(base.store)()
      if (E.isLeft(ag)) log.warn('vrouter agent reconcile failed', { detail: describe(ag.left) })
      else {
        log.info('vrouter agent reconciled', {
          reposted: ag.right.reposted.length,
          failures: ag.right.failures.map((f) => `${f.endpointId}: ${describe(f.error)}`)
        })
      }
    }
  }
}

// -------------------------------------------------------------------------------------
// from a CNI netconf's `contrail` section
// -------------------------------------------------------------------------------------

/** What resolving a netconf's settings needs from the host. @category model */
export interface ContrailDeps {
  readonly readFile: (path: string) => Promise<string>
  readonly hostname: () => string
}

const realDeps: ContrailDeps = { readFile: (p) => readFile(p, 'utf8'), hostname }

const readCredentials = (deps: ContrailDeps, file: string | undefined): T.Task<FileRead | undefined> =>
  file === undefined ? T.of(undefined) : () => deps.readFile(file).then(E.right, (e: unknown) => E.left(errorCode(e)))

/**
 * The CNI frontend's controller port over the real Contrail config API and vRouter agent.
 * Nothing is contacted here: the clients are lazy, so DEL of a builtin network never waits on
 * the controller.
 *
 * @category constructors
 */
export const contrailController =
  (deps: ContrailDeps = realDeps): Runtime['controller'] =>
  (s: ControllerSettings, log) => {
    const k = s.keystone
    const auth: TE.TaskEither<CoreError, Auth> =
      k === undefined
        ? TE.right({ kind: 'none' })
        : pipe(
            TE.fromTask(readCredentials(deps, k.credentialsFile)),
            TE.chainEitherKW((file) => keystoneOf(k, file, NETCONF_WORDING)),
            TE.mapLeft(invalidConfig)
          )
    const policy: HttpPolicy = {
      ...DEFAULT_HTTP_POLICY,
      ...(s.timeoutMs === undefined ? {} : { timeoutMs: s.timeoutMs }),
      ...(s.retries === undefined ? {} : { retries: s.retries })
    }
    return pipe(
      auth,
      TE.map((a) => {
        const api = configApi({ url: s.api, auth: a, policy, log })
        const owner = s.owner ?? deps.hostname()
        return {
          controlPlane: contrailControlPlane({ api, owner, ...(s.domain === undefined ? {} : { domain: s.domain }) }),
          agent: vrouterAgent({ ...(s.agent === undefined ? {} : { url: s.agent }), policy, log })
        }
      })
    )
  }
