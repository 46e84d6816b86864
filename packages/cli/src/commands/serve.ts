/**
 * `isthmus serve`: the Docker plugin daemon on its embedded defaults: the file store, the Linux
 * bridge dataplane and the built-in IPAM. Logs JSON lines to stderr; stops cleanly on SIGTERM.
 */
import * as E from 'fp-ts/lib/Either.js'
import type { Argv } from 'yargs'
import { builtinControlPlane, describe, makeIpam, noopAgent, systemClock, type Env } from '@isthmus/core'
import { createPluginApp, DEFAULT_SOCKET, listen, type ListenOn } from '@isthmus/cnm-server'
import { linuxDataplane } from '@isthmus/dataplane-linux'
import { LEVELS, winstonLogger, type Level } from '@isthmus/log'
import { DEFAULT_STATE_DIR, fileStore } from '@isthmus/store-fs'
import { contrailFlags, contrailSettings, withContrail, type ContrailArgs } from './contrailOptions.js'

export interface ServeArgs {
  readonly socket: string
  readonly stateDir: string
  readonly logLevel: Level
  /** Contrail: used when `contrailApi` is set. */
  readonly contrail?: ContrailArgs
}

/** systemd socket activation: LISTEN_FDS sockets start at fd 3 and are meant for LISTEN_PID. */
const inheritedSocket = (): ListenOn | undefined =>
  process.env['LISTEN_FDS'] === '1' && process.env['LISTEN_PID'] === String(process.pid) ? { fd: 3 } : undefined

export const serve = async (args: ServeArgs): Promise<void> => {
  const { logger: log, close: closeLog } = winstonLogger({ level: args.logLevel, stderr: true })
  const opened = await fileStore({ stateDir: args.stateDir })()
  if (E.isLeft(opened)) {
    log.error('cannot open the state directory', { stateDir: args.stateDir, detail: describe(opened.left) })
    process.exitCode = 1
    return
  }
  const store = opened.right
  const builtinIpam = makeIpam({ store, clock: systemClock })
  const builtin = builtinControlPlane(builtinIpam, store)
  // A daemon answers DeleteEndpoint before the kernel's ~20 ms veth removal is over.
  const dataplane = linuxDataplane({ deferLinkRemoval: true })
  let env: Env = {
    store,
    dataplane,
    controlPlane: builtin,
    agent: noopAgent,
    log,
    clock: systemClock
  }
  let ipam = builtinIpam
  const contrail = args.contrail === undefined ? E.right(undefined) : contrailSettings(args.contrail, process.env)
  if (E.isLeft(contrail)) {
    log.error('invalid Contrail configuration', { detail: contrail.left })
    await store.close()
    process.exitCode = 1
    return
  }
  if (contrail.right !== undefined) {
    const c = withContrail(contrail.right, { env, ipam, store, builtin, log })
    env = c.env
    ipam = c.ipam
    log.info('contrail', { api: contrail.right.api, agent: contrail.right.agent, auth: contrail.right.auth.kind, owner: contrail.right.owner })
    await c.reconcile()
  }
  const on = inheritedSocket() ?? { socket: args.socket }
  const server = await listen(createPluginApp({ env, ipam }), on).catch((e: unknown) => {
    log.error('cannot listen', { ...on, detail: e instanceof Error ? e.message : String(e) })
    return undefined
  })
  if (server === undefined) {
    await store.close()
    process.exitCode = 1
    return
  }
  log.info('serving', { ...on, stateDir: args.stateDir, pid: process.pid })

  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      log.info('stopping', { signal })
      resolve()
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })
  await server.close()
  await dataplane.drain()
  await store.close()
  log.info('stopped', {})
  await closeLog()
}

export const serveCommand = (y: Argv): Argv =>
  y.command(
    'serve',
    'Run the Docker network and IPAM plugin (remote driver "isthmus") on its socket',
    (c) =>
      contrailFlags(c)
        .option('socket', { type: 'string', default: DEFAULT_SOCKET, describe: 'unix socket dockerd finds the plugin on' })
        .option('state-dir', { type: 'string', default: DEFAULT_STATE_DIR, describe: 'where networks, endpoints and leases are kept' })
        .option('log-level', { choices: LEVELS, default: 'info' as Level, describe: 'JSON log lines on stderr from this level up' }),
    (a) =>
      serve({
        socket: a.socket,
        stateDir: a.stateDir,
        logLevel: a.logLevel as Level,
        contrail: {
          contrailApi: a.contrailApi,
          keystoneUrl: a.keystoneUrl,
          keystoneVersion: a.keystoneVersion,
          contrailCredentialsFile: a.contrailCredentialsFile,
          vrouterAgent: a.vrouterAgent,
          contrailOwner: a.contrailOwner
        }
      })
  )
