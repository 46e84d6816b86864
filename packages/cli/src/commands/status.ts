/**
 * `isthmus status`: is the daemon answering on its plugin socket (`/Plugin.Activate`, as dockerd
 * asks) and on its CNI hand-off socket (a VERSION call, as the CNI executable hands it), is the
 * store readable (its records counted, the quarantined ones too), and its networks. Text by
 * default, `--json` for machines; exit code 0 when all is well, 1 when the daemon does not answer
 * or the store cannot be read, each reason said.
 */
import { request } from 'node:http'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type { Argv } from 'yargs'
import { inspectNetworks, inspectSummary, type Env, type InspectSummary, type NetworksView } from '@isthmus/core'
import { DEFAULT_SOCKET } from '@isthmus/cnm-server'
import { DEFAULT_DAEMON_SOCKET, handOff, HANDOFF_VERSION } from '@isthmus/handoff'
import { storeArgsOf, storeFlags, type StoreArgs } from './clusterOptions.js'
import { json, processOutput, queryStore, table, type Output } from './leases.js'

export interface Check {
  readonly ok: boolean
  /** What was found: `answers`, or why not. */
  readonly detail: string
}

export interface StatusReport {
  readonly ok: boolean
  readonly daemon: { readonly socket: string } & Check
  /** Undefined when `--cni-socket ''` (no hand-off expected). */
  readonly cni?: ({ readonly socket: string } & Check) | undefined
  readonly store: Check & {
    readonly location: string
    readonly networks?: number
    readonly endpoints?: number
    readonly leases?: number
    readonly quarantined?: number
  }
  readonly networks: ReadonlyArray<{
    readonly name: string
    readonly id: string
    readonly subnets: ReadonlyArray<string>
    readonly bridge?: string | undefined
    readonly endpoints: number
  }>
}

/** `/Plugin.Activate` on the plugin socket, as dockerd sends it (POST, no body). */
export const activate = (socket: string, timeoutMs: number): Promise<Check> =>
  new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/Plugin.Activate', method: 'POST', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let implements_: unknown
        try {
          implements_ = (JSON.parse(text) as { Implements?: unknown }).Implements
        } catch {
          implements_ = undefined
        }
        resolve(
          res.statusCode === 200 && Array.isArray(implements_)
            ? { ok: true, detail: `answers (implements ${implements_.join(', ')})` }
            : { ok: false, detail: `answered ${res.statusCode ?? '?'} ${text.slice(0, 200)}` }
        )
      })
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', (e: NodeJS.ErrnoException) =>
      resolve({ ok: false, detail: e.code === 'ENOENT' ? 'no socket (is isthmus serve running?)' : e.message })
    )
    req.end()
  })

/** A VERSION call handed to the daemon, as the CNI executable hands its calls. */
export const cniVersionCall = async (socket: string, timeoutMs: number): Promise<Check> => {
  const r = await handOff(
    socket,
    { v: HANDOFF_VERSION, env: { CNI_COMMAND: 'VERSION' }, stdin: '{"cniVersion":"1.0.0"}', selfNames: ['isthmus'] },
    timeoutMs
  )
  if (r._tag !== 'Answered') return { ok: false, detail: r.why }
  if (r.reply.exitCode !== 0) return { ok: false, detail: `VERSION answered exit code ${r.reply.exitCode}` }
  return { ok: true, detail: 'answers' }
}

interface StoreFindings {
  readonly summary: InspectSummary
  readonly networks: NetworksView
  readonly quarantined: number
}

const storeQuery = (env: Pick<Env, 'store'>) =>
  pipe(
    TE.Do,
    TE.apS('summary', inspectSummary(env)),
    TE.apS('networks', inspectNetworks(env)),
    TE.apS(
      'quarantined',
      pipe(
        env.store.quarantine.list(),
        TE.map((q) => q.length)
      )
    )
  )

export interface StatusArgs extends StoreArgs {
  readonly socket: string
  readonly cniSocket: string
  readonly timeoutMs: number
}

/** The report; never rejects. */
export const status = async (a: StatusArgs): Promise<StatusReport> => {
  const [daemon, cni] = await Promise.all([
    activate(a.socket, a.timeoutMs),
    a.cniSocket === '' ? Promise.resolve(undefined) : cniVersionCall(a.cniSocket, a.timeoutMs)
  ])
  let found: StoreFindings | undefined
  let storeErr = ''
  const code = await queryStore(
    a,
    storeQuery,
    (f) => {
      found = f
    },
    { out: () => undefined, err: (t) => (storeErr += t) }
  )
  const location = a.store === 'etcd' ? `etcd (cluster ${a.cluster ?? '?'})` : a.stateDir
  const store: StatusReport['store'] =
    code === 0 && found !== undefined
      ? {
          ok: true,
          detail: found.quarantined > 0 ? `readable; ${found.quarantined} record(s) quarantined` : 'readable',
          location,
          networks: found.summary.networks,
          endpoints: found.summary.endpoints,
          leases: Object.values(found.summary.leases).reduce((s, n) => s + n, 0),
          quarantined: found.quarantined
        }
      : { ok: false, detail: storeErr.trim().replace(/^isthmus: /, '') || 'cannot be read', location }
  return {
    ok: daemon.ok && (cni?.ok ?? true) && store.ok,
    daemon: { socket: a.socket, ...daemon },
    ...(cni === undefined ? {} : { cni: { socket: a.cniSocket, ...cni } }),
    store,
    networks: (found?.networks.networks ?? []).map((n) => ({
      name: n.name,
      id: n.id,
      subnets: n.subnets.map((s) => s.subnet),
      bridge: n.bridge,
      endpoints: n.endpoints
    }))
  }
}

const mark = (ok: boolean): string => (ok ? 'ok     ' : 'FAILED ')

/** The readable form. */
export const statusText = (r: StatusReport): string => {
  const lines = [
    `daemon      ${mark(r.daemon.ok)} ${r.daemon.socket}: ${r.daemon.detail}`,
    ...(r.cni === undefined ? [] : [`cni socket  ${mark(r.cni.ok)} ${r.cni.socket}: ${r.cni.detail}`]),
    `store       ${mark(r.store.ok)} ${r.store.location}: ${r.store.detail}` +
      (r.store.ok
        ? ` (${r.store.networks} networks, ${r.store.endpoints} endpoints, ${r.store.leases} leases, ${r.store.quarantined} quarantined)`
        : '')
  ]
  const nets =
    r.networks.length === 0
      ? ''
      : `\n${table(
          ['NETWORK', 'ID', 'SUBNETS', 'BRIDGE', 'ENDPOINTS'],
          r.networks.map((n) => [
            n.name,
            n.id.slice(0, 12),
            n.subnets.join(',') || '-',
            n.bridge ?? '-',
            String(n.endpoints)
          ])
        )}`
  return `${lines.join('\n')}\n${nets}${r.ok ? '' : '\nisthmus is not healthy: see FAILED above.\n'}`
}

export const statusMain = async (a: StatusArgs & { readonly json: boolean }, o: Output = processOutput) => {
  const r = await status(a)
  o.out(a.json ? json(r) : statusText(r))
  return r.ok ? 0 : 1
}

export const statusCommand = (y: Argv): Argv =>
  y.command(
    'status',
    'Whether the daemon answers on its sockets and the store is readable; the networks',
    (c) =>
      storeFlags(c)
        .option('socket', { type: 'string', default: DEFAULT_SOCKET, describe: "the daemon's plugin socket" })
        .option('cni-socket', {
          type: 'string',
          default: DEFAULT_DAEMON_SOCKET,
          describe: "the daemon's CNI hand-off socket ('' when it serves none)"
        })
        .option('timeout', { type: 'number', default: 5, describe: 'seconds to wait for each answer' })
        .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' })
        .check((a) => {
          if (typeof a.timeout !== 'number' || !(a.timeout > 0)) {
            throw new Error(`--timeout: a number of seconds above 0 (got ${JSON.stringify(a.timeout)})`)
          }
          return true
        }),
    async (a) => {
      process.exitCode = await statusMain({
        ...storeArgsOf(a),
        socket: a.socket,
        cniSocket: a.cniSocket,
        timeoutMs: a.timeout * 1000,
        json: a.json
      })
    }
  )
