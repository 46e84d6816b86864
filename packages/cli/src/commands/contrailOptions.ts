/**
 * `isthmus serve` with Contrail: the flags, where the keystone credentials come from, and the
 * wiring of the Contrail ports around the embedded defaults.
 *
 * Credentials are never taken from argv (a process list shows argv to every user): they come
 * from the standard OpenStack variables (OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME or
 * OS_TENANT_NAME, OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME), or from the file named by
 * `--contrail-credentials-file`, which holds the same KEY=VALUE lines (an openrc file; `export`
 * and quotes allowed). The variables win over the file.
 *
 * A URL flag may still carry userinfo (`http://user:pass@host:8082`): it is sent as HTTP Basic
 * authorization, blanked in every log line and error sentence, and warned about at start.
 */
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import * as E from 'fp-ts/lib/Either.js'
import type { Argv } from 'yargs'
import { compositeControlPlane, describe, type ControlPlane, type Env, type Ipam, type Logger, type Store } from '@isthmus/core'
import {
  configApi,
  contrailControlPlane,
  contrailIpam,
  DEFAULT_AGENT_URL,
  keystoneAuth,
  parseCredentialsFile,
  reconcileController,
  userinfoOf,
  vrouterAgent,
  type Auth
} from '@isthmus/contrail'

/** The flags as yargs gives them. */
export interface ContrailArgs {
  readonly contrailApi?: string | undefined
  readonly keystoneUrl?: string | undefined
  readonly keystoneVersion: 'v2' | 'v3'
  readonly contrailCredentialsFile?: string | undefined
  readonly vrouterAgent: string
  readonly contrailOwner: string
}

/** Add the Contrail flags to a command. */
export const contrailFlags = <T>(y: Argv<T>) =>
  y
    .option('contrail-api', { type: 'string', describe: 'Contrail config API URL (http://host:8082); networks created with -o tenant=… -o network=… then use it' })
    .option('keystone-url', { type: 'string', describe: 'keystone URL with its version path (http://host:5000/v3); no authentication when absent' })
    .option('keystone-version', { choices: ['v2', 'v3'] as const, default: 'v3' as const, describe: 'keystone API version' })
    .option('contrail-credentials-file', { type: 'string', describe: 'openrc-style file with OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME (the OS_* environment variables win)' })
    .option('vrouter-agent', { type: 'string', default: DEFAULT_AGENT_URL, describe: 'vRouter agent port API URL' })
    .option('contrail-owner', { type: 'string', default: hostname(), describe: 'name marking the Contrail objects this host creates (for reconciliation)' })

// The openrc parser is the CNI plugin's too: one reading of the same files everywhere.
export { parseCredentialsFile }

/** Everything serve needs to reach Contrail. */
export interface ContrailSettings {
  readonly api: string
  readonly auth: Auth
  readonly agent: string
  readonly owner: string
}

/**
 * The settings, or undefined without `--contrail-api`. Left is one sentence naming what is
 * missing (never a value read from the credentials).
 */
export const contrailSettings = (
  a: ContrailArgs,
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')
): E.Either<string, ContrailSettings | undefined> => {
  if (a.contrailApi === undefined || a.contrailApi === '') return E.right(undefined)
  const base = { api: a.contrailApi, agent: a.vrouterAgent, owner: a.contrailOwner }
  if (a.keystoneUrl === undefined || a.keystoneUrl === '') return E.right({ ...base, auth: { kind: 'none' } })
  let file: Record<string, string> = {}
  if (a.contrailCredentialsFile !== undefined) {
    try {
      file = parseCredentialsFile(readFile(a.contrailCredentialsFile))
    } catch (e) {
      return E.left(`cannot read --contrail-credentials-file ${a.contrailCredentialsFile}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}`)
    }
  }
  const auth = keystoneAuth({ url: a.keystoneUrl, version: a.keystoneVersion }, env, file)
  return E.isLeft(auth)
    ? E.left(`--keystone-url needs ${auth.left.join(', ')} in the environment or in --contrail-credentials-file`)
    : E.right({ ...base, auth: auth.right })
}

/** The embedded defaults with Contrail put in: control plane, agent and Docker IPAM. */
export interface WithContrail {
  readonly env: Env
  readonly ipam: Ipam
  /** Controller and agent reconciliation at start (see @isthmus/contrail reconcile). */
  readonly reconcile: () => Promise<void>
}

export const withContrail = (s: ContrailSettings, base: { readonly env: Env; readonly ipam: Ipam; readonly store: Store; readonly builtin: ControlPlane; readonly log: Logger }): WithContrail => {
  const urls = [['--contrail-api', s.api], ['--vrouter-agent', s.agent], ...(s.auth.kind === 'keystone' ? [['--keystone-url', s.auth.url]] : [])]
  const withUserinfo = urls.filter(([, url]) => userinfoOf(url!) !== undefined).map(([flag]) => flag)
  if (withUserinfo.length > 0) {
    base.log.warn('credentials in a URL on the command line are visible to every user of this host; they are sent as HTTP Basic authorization', { flags: withUserinfo })
  }
  const api = configApi({ url: s.api, auth: s.auth, log: base.log })
  const agent = vrouterAgent({ url: s.agent, log: base.log })
  const controlPlane = compositeControlPlane({
    controller: contrailControlPlane({ api, owner: s.owner, store: base.store }),
    builtin: base.builtin
  })
  return {
    env: { ...base.env, controlPlane, agent },
    ipam: contrailIpam(base.ipam, { api, store: base.store, owner: s.owner }),
    reconcile: async () => {
      const ctl = await reconcileController({ api, store: base.store, owner: s.owner })()
      if (E.isLeft(ctl)) base.log.warn('contrail reconcile failed', { detail: describe(ctl.left) })
      else base.log.info('contrail reconciled', { removed: ctl.right.removed.length, reservationsRemoved: ctl.right.reservationsRemoved.length, missing: ctl.right.missing, failures: ctl.right.failures.map((f) => `${f.target}: ${describe(f.error)}`) })
      const ag = await agent.reconcile(base.store)()
      if (E.isLeft(ag)) base.log.warn('vrouter agent reconcile failed', { detail: describe(ag.left) })
      else base.log.info('vrouter agent reconciled', { reposted: ag.right.reposted.length, failures: ag.right.failures.map((f) => `${f.endpointId}: ${describe(f.error)}`) })
    }
  }
}
