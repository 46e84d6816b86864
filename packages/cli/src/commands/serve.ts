/**
 * `isthmus serve`: the Docker plugin daemon on the ports @isthmus/wiring picks (the file store,
 * the Linux bridge dataplane or HNS, the built-in IPAM, Contrail when configured), and the CNI
 * hand-off socket (Linux dataplane only). Listens on a unix socket, on the socket systemd
 * passes, or on Windows on a named pipe (with the spec file dockerd finds it by). Logs JSON
 * lines to stderr; stops cleanly on SIGTERM, SIGINT or a call to `/IpamDriver.Shutdown`, the one
 * way to stop, keeping every record.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import type { Argv } from 'yargs'
import {
  causeText,
  decodeWith,
  DEFAULT_STATE_DIR,
  describe,
  gc,
  isChainPrefix,
  LOG_LEVELS,
  type Env,
  type Logger,
  type LogLevel
} from '@isthmus/core'
import {
  bugText,
  clearStaleSocket,
  createPluginApp,
  DEFAULT_SOCKET,
  listen,
  listenMetrics,
  isRemoteMetricsAddress,
  PluginName,
  parseMetricsAddr,
  pluginMetrics,
  registerBuildInfo,
  registerProcessMetrics,
  registerStoreMetrics,
  SOCKET_LIMITS,
  type ListenOn,
  type SocketLimits,
  type MetricsServer
} from '@isthmus/cnm-server'
import type { Inspect } from '@isthmus/cnm-server/protocol'
import { Cni } from '@isthmus/cni-exec'
import { DEFAULT_CHAIN_PREFIX } from '@isthmus/dataplane-linux'
import { DEFAULT_DAEMON_SOCKET, type HandoffServer } from '@isthmus/handoff'
import {
  cniHandoffServer,
  contrailSettings,
  daemonCni,
  daemonControlPlane,
  daemonLogger,
  openDaemon,
  clusterSettings,
  DATAPLANE_KINDS,
  dataplaneRefusal,
  defaultDataplane,
  STORE_KINDS,
  type ClusterSettings,
  type ContrailArgs,
  type ContrailSettings,
  type Daemon,
  type DataplaneKind,
  type DataplaneSettings,
  type StoreKind
} from '@isthmus/wiring'
import { version } from '../version.js'
import { contrailFlags } from './contrailOptions.js'
import { checkClusterFlags, clusterArgsOf, clusterFlags } from './clusterOptions.js'
import {
  DEFAULT_PIPE,
  isNamedPipe,
  pluginNameOf,
  pluginSpecDirFor,
  writePluginSpec,
  type PluginSpecFile
} from '../windows/pluginSpec.js'

export interface ServeArgs {
  /** A unix socket path, or on Windows a named pipe (`\\.\pipe\isthmus`). */
  readonly socket: string
  /**
   * Where to write `<name>.spec` naming the listener ('' for nowhere); default: on a named pipe
   * `%ProgramData%\docker\plugins`, else nowhere (windows/pluginSpec.ts).
   */
  readonly pluginSpecDir?: string | undefined
  readonly stateDir: string
  readonly logLevel: LogLevel
  /** Contrail: used when `contrailApi` is set. */
  readonly contrail?: ContrailArgs
  /** `HOST:PORT` on loopback for /metrics, /healthz, /readyz; none without it. */
  readonly metricsAddr?: string | undefined
  /** Let `metricsAddr` be an address other hosts reach (the listener has no authentication). */
  readonly metricsAllowRemote?: boolean
  /** Where the CNI executable hands its calls to this daemon; '' for no hand-off. */
  readonly cniSocket?: string
  /** Prefix of the iptables chains (two daemons on one host need two). Default ISTHMUS. */
  readonly chainPrefix?: string
  /** Connection cap and timeouts of the plugin socket; SOCKET_LIMITS where not given. */
  readonly limits?: Partial<SocketLimits>
  /** Multi-host: the cluster this daemon joins (etcd, the overlay); one host without it. */
  readonly cluster?: ClusterSettings | undefined
  /** Where this host's own records are kept: `file` (default) or, in a cluster, `etcd`. */
  readonly store?: StoreKind
  /** The Linux bridge when absent; HNS needs Contrail (wiring's dataplaneRefusal). */
  readonly dataplane?: DataplaneSettings
}

/**
 * The last line of defence: an exception or a rejection nothing handled is a bug, logged with its
 * stack, and the daemon goes on serving; every other network keeps working. Returns the removal.
 */
export const keepServingOnBugs = (log: Logger): (() => void) => {
  const report = (message: string, e: unknown, origin: string): void => {
    try {
      log.error(message, { origin, stack: bugText(e) })
    } catch {
      // the logger itself failed: stderr, without it
      process.stderr.write(`${message} (${origin}): ${bugText(e)}\n`)
    }
  }
  const onRejection = (reason: unknown): void =>
    report('bug: a promise rejected and nothing handled it; serving on', reason, 'unhandledRejection')
  const onException = (e: unknown, origin: string): void =>
    report('bug: an exception reached the top; serving on', e, origin)
  process.on('unhandledRejection', onRejection)
  process.on('uncaughtException', onException)
  return () => {
    process.off('unhandledRejection', onRejection)
    process.off('uncaughtException', onException)
  }
}

/** systemd socket activation: LISTEN_FDS sockets start at fd 3 and are meant for LISTEN_PID. */
const inheritedSocket = (): ListenOn | undefined =>
  process.env['LISTEN_FDS'] === '1' && process.env['LISTEN_PID'] === String(process.pid) ? { fd: 3 } : undefined

/** Where `--socket` says to listen: a Windows named pipe, or a unix socket file. */
export const listenOnOf = (socket: string): ListenOn => (isNamedPipe(socket) ? { pipe: socket } : { socket })

/**
 * How a stop is asked for: a signal, or `/IpamDriver.Shutdown` on the plugin socket. The first
 * ask settles it; later ones change nothing (a second Shutdown while stopping is answered `{}`).
 */
export interface StopRequests {
  readonly asked: Promise<void>
  readonly ask: (by: Readonly<Record<string, string>>) => void
}

export const stopRequests = (log: Logger): StopRequests => {
  let settle: (() => void) | undefined
  const asked = new Promise<void>((resolve) => (settle = resolve))
  return {
    asked,
    ask: (by) => {
      if (settle === undefined) return
      log.info('stopping', by)
      settle()
      settle = undefined
    }
  }
}

// Spares a killed predecessor kept ready are links nobody records: remove them before serving.
const removeStraySpares = async ({ store, linux: dataplane }: Daemon, log: Logger): Promise<void> => {
  if (dataplane === undefined) return
  const removed = await pipe(
    TE.Do,
    TE.apS('endpoints', store.endpoints.list()),
    TE.apS('networks', store.networks.list()),
    TE.chain(({ endpoints, networks }) =>
      dataplane.removeStraySpares(new Set(endpoints.map((e) => e.hostIfName)), networks)
    )
  )()
  if (E.isLeft(removed)) {
    log.warn('cannot remove spare links left by an earlier run', { detail: describe(removed.left) })
  } else if (removed.right.length > 0) log.info('removed spare links left by an earlier run', { links: removed.right })
}

const DOCKER_ID = /^[0-9a-f]{64}$/

/**
 * What a killed predecessor left beyond spares (a veth whose removal was deferred after a
 * DeleteEndpoint answer, a creation cut short): core gc, before serving. CNI ADDs running at that
 * moment in other processes are safe: gc judges a link or lease only under the lock of the
 * endpoint it names, which an ADD holds until its record is written.
 */
const sweepAtStart = async (env: Env, log: Logger): Promise<void> => {
  log.debug('sweeping what an earlier run left', {})
  // Docker's networks (64 hex digits) are made by this daemon alone: a bridge of one with no
  // record is a CreateNetwork cut short, which dockerd then forgets.
  const swept = await gc({ valid: 'keep-all-endpoints', orphanDevices: (id) => DOCKER_ID.test(id) })(env)()
  if (E.isLeft(swept)) return log.warn('cannot sweep what an earlier run left', { detail: describe(swept.left) })
  const { linksRemoved, leasesReleased, devicesRemoved, failures } = swept.right
  if (linksRemoved.length + leasesReleased.length + devicesRemoved.length > 0) {
    log.info('removed what an earlier run left', {
      links: linksRemoved,
      leases: leasesReleased.map((l) => `${l.addressSpace}/${l.address}`),
      devices: devicesRemoved
    })
  }
  for (const f of failures) {
    log.warn('cannot remove what an earlier run left', { step: f.step, target: f.target, detail: describe(f.error) })
  }
}

// What /IpamDriver.Configuration reports: the Contrail API without any userinfo, the auth kind only.
const configurationOf = (
  args: ServeArgs,
  on: ListenOn,
  contrail: ContrailSettings | undefined,
  specDir: string | undefined
): Inspect.ConfigurationResponse => {
  const withoutUserinfo = (url: string): string => {
    try {
      const u = new URL(url)
      u.username = ''
      u.password = ''
      return u.toString()
    } catch {
      return '(not a URL)'
    }
  }
  return {
    stateDir: args.stateDir,
    socket: args.socket,
    socketActivated: 'fd' in on,
    logLevel: args.logLevel,
    chainPrefix: args.chainPrefix ?? DEFAULT_CHAIN_PREFIX,
    dataplane:
      args.dataplane?.kind === 'hns'
        ? {
            kind: 'hns',
            ...(args.dataplane.hnsUrl === undefined
              ? {}
              : {
                  hnsUrl: args.dataplane.hnsUrl.startsWith('/')
                    ? args.dataplane.hnsUrl
                    : withoutUserinfo(args.dataplane.hnsUrl)
                })
          }
        : { kind: 'linux' },
    controlPlane:
      contrail === undefined
        ? { kind: 'builtin' }
        : {
            kind: 'contrail',
            api: withoutUserinfo(contrail.api),
            auth: contrail.auth.kind === 'none' ? 'none' : 'keystone',
            vrouterAgent: withoutUserinfo(contrail.agent),
            owner: contrail.owner
          },
    ...(args.metricsAddr === undefined ? {} : { metricsAddr: args.metricsAddr }),
    ...(specDir === undefined ? {} : { pluginSpec: specDir })
  }
}

/**
 * The CNI hand-off socket (@isthmus/handoff): netconfs on this daemon's state directory and chain
 * prefix share its store and dataplane; others get sessions of their own. Not having it is not
 * fatal: the CNI executable then runs its calls itself.
 */
const startCniHandoff = async (
  args: ServeArgs,
  daemon: Daemon,
  log: Logger,
  metrics: ReturnType<typeof pluginMetrics>
): Promise<HandoffServer | undefined> => {
  const socket = args.cniSocket ?? DEFAULT_DAEMON_SOCKET
  if (socket === '') return undefined
  if (daemon.linux === undefined) {
    log.info('no CNI hand-off: CNI runtimes are served on the Linux dataplane only', {})
    return undefined
  }
  try {
    await clearStaleSocket(socket)
    const server = await cniHandoffServer({
      socket,
      log,
      onCall: metrics.observeCni,
      ...daemonCni(daemon, args.stateDir, log)
    })
    log.info('cni hand-off', { socket })
    return server
  } catch (e) {
    log.warn('no CNI hand-off: CNI calls run in their own processes', { socket, detail: causeText(e) })
    return undefined
  }
}

/** What serve runs until a stop signal; `stop` closes it all in order. */
interface Running {
  readonly stop: () => Promise<void>
  /** A metrics listener asked for and not had: stop at once, exit code 1. */
  readonly failed: boolean
}

const listenMetricsOf = async (
  args: ServeArgs,
  at: ReturnType<typeof parseMetricsAddr> | undefined,
  metrics: ReturnType<typeof pluginMetrics>,
  daemon: Daemon,
  env: Env,
  log: Logger
): Promise<MetricsServer | undefined> => {
  if (at === undefined || E.isLeft(at)) return undefined
  registerStoreMetrics(metrics.registry, env)
  registerProcessMetrics(metrics.registry)
  registerBuildInfo(metrics.registry, version)
  const server = await listenMetrics(at.right, metrics.registry, daemon.store).catch((e: unknown) => {
    log.error('cannot listen for metrics', { metricsAddr: args.metricsAddr, detail: causeText(e) })
    return undefined
  })
  if (server !== undefined) log.info('metrics', { address: server.address, paths: ['/metrics', '/healthz', '/readyz'] })
  if (server !== undefined && isRemoteMetricsAddress(at.right)) {
    log.warn('the metrics listener is reachable from other hosts and has no authentication', {
      address: server.address
    })
  }
  return server
}

/**
 * Open the ports, clean up after a predecessor, put Contrail in, and serve. Undefined (and exit
 * code 1) when the daemon cannot start; a metrics listener asked for and not had stops it at once.
 */
const start = async (args: ServeArgs, log: Logger, stops: StopRequests): Promise<Running | undefined> => {
  const on = inheritedSocket() ?? listenOnOf(args.socket)
  // a socket systemd passed is found by its own path: no spec file for it
  const specDir = 'fd' in on ? undefined : pluginSpecDirFor(args.socket, args.pluginSpecDir, process.env)
  if (specDir !== undefined && E.isLeft(decodeWith(PluginName, 'plugin name')(pluginNameOf(args.socket)))) {
    log.error('the socket names no plugin dockerd can look up (letters, digits, _ . -)', {
      socket: args.socket,
      name: pluginNameOf(args.socket)
    })
    return undefined
  }
  const metricsAt =
    args.metricsAddr === undefined
      ? undefined
      : parseMetricsAddr(args.metricsAddr, { allowRemote: args.metricsAllowRemote === true })
  if (metricsAt !== undefined && E.isLeft(metricsAt)) {
    log.error('invalid --metrics-addr', { detail: metricsAt.left })
    return undefined
  }
  const opened = await openDaemon(
    {
      store: { kind: args.store ?? 'file', stateDir: args.stateDir },
      chainPrefix: args.chainPrefix,
      cluster: args.cluster,
      version,
      dataplane: args.dataplane
    },
    log
  )()
  if (E.isLeft(opened)) {
    if (args.cluster === undefined) {
      log.error('cannot open the state directory', { stateDir: args.stateDir, detail: describe(opened.left) })
    } else {
      const { name, host, etcd } = args.cluster
      log.error('cannot join the cluster', { cluster: name, host, etcd: etcd.endpoints, detail: describe(opened.left) })
    }
    return undefined
  }
  if (args.dataplane?.kind === 'hns') {
    log.info('dataplane', { kind: 'hns', hns: args.dataplane.hnsUrl ?? 'HNSCall (this Windows host)' })
  }
  if (args.cluster !== undefined && opened.right.cluster !== undefined) {
    const { settings, vtep } = opened.right.cluster
    log.info('cluster', {
      cluster: settings.name,
      host: settings.host,
      underlay: vtep.underlay,
      vtepMac: vtep.mac,
      etcd: settings.etcd.endpoints,
      store: args.store ?? 'file'
    })
  }
  const daemon = opened.right
  await removeStraySpares(daemon, log)
  await sweepAtStart(daemon.env, log)
  const contrail = args.contrail === undefined ? E.right(undefined) : contrailSettings(args.contrail, process.env)
  if (E.isLeft(contrail)) {
    log.error('invalid Contrail configuration', { detail: contrail.left })
    await daemon.store.close()
    return undefined
  }
  const { env, ipam, reconcile } = daemonControlPlane(daemon, contrail.right, log)
  if (contrail.right !== undefined) {
    const c = contrail.right
    log.info('contrail', { api: c.api, agent: c.agent, auth: c.auth.kind, owner: c.owner })
    await reconcile()
  }
  const metrics = pluginMetrics()
  const about = {
    version,
    cniVersions: Cni.SUPPORTED_VERSIONS,
    configuration: configurationOf(args, on, contrail.right, specDir)
  }
  const limits: SocketLimits = { ...SOCKET_LIMITS, ...args.limits }
  const shutdown = () => stops.ask({ by: 'IpamDriver.Shutdown' })
  const server = await listen(createPluginApp({ env, ipam, about, metrics, shutdown }), on, limits).catch(
    (e: unknown) => {
      log.error('cannot listen', { ...on, detail: causeText(e) })
      return undefined
    }
  )
  if (server === undefined) {
    await daemon.store.close()
    return undefined
  }
  let spec: PluginSpecFile | undefined
  if (specDir !== undefined) {
    spec = await writePluginSpec(specDir, args.socket).catch((e: unknown) => {
      log.error('cannot write the plugin spec file', { dir: specDir, detail: causeText(e) })
      return undefined
    })
    if (spec === undefined) {
      await server.close()
      await daemon.store.close()
      return undefined
    }
    log.info('plugin spec', { file: spec.path, address: spec.address })
  }
  log.info('serving', { ...on, stateDir: args.stateDir, pid: process.pid })
  const cni = await startCniHandoff(args, daemon, log, metrics)
  const metricsServer = await listenMetricsOf(args, metricsAt, metrics, daemon, env, log)
  const stop = async (): Promise<void> => {
    // dockerd stops finding the plugin first; then no new connection, the calls in flight answered
    await spec
      ?.remove()
      .catch((e: unknown) => log.warn('cannot remove the plugin spec file', { file: spec?.path, detail: causeText(e) }))
    await metricsServer?.close()
    await server.close()
    await cni?.close()
    // Its kept ip processes first (a stop signal to the group may have ended them), then its spares
    // and background removals, each in a process of its own; then the store.
    await daemon.close()
  }
  return { stop, failed: metricsAt !== undefined && metricsServer === undefined }
}

const stopSignal = (stops: StopRequests): Promise<void> => {
  const stop = (signal: NodeJS.Signals) => stops.ask({ signal })
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  return stops.asked
}

export const serve = async (args: ServeArgs): Promise<void> => {
  const { logger: log, close: closeLog } = daemonLogger(args.logLevel)
  const stopCatchingBugs = keepServingOnBugs(log)
  const stops = stopRequests(log)
  // Caught from the start: the sockets answer before start() returns, and a SIGTERM then (systemd,
  // a test, an operator) must stop the daemon cleanly once it has started, not kill it half-way.
  const signalled = stopSignal(stops)
  const running = await start(args, log, stops)
  if (running === undefined) {
    process.exitCode = 1
    return
  }
  if (running.failed) process.exitCode = 1
  else await signalled
  await running.stop()
  log.info('stopped', {})
  stopCatchingBugs()
  await closeLog()
}

/** The settings of `isthmus serve` from its parsed flags. */
export const settingsFromFlags = (
  a: {
    readonly socket: string
    readonly pluginSpecDir?: string | undefined
    readonly stateDir: string
    readonly logLevel: string
    readonly metricsAddr?: string | undefined
    readonly metricsAllowRemote?: boolean | undefined
    readonly cniSocket: string
    readonly chainPrefix: string
    readonly maxConnections: number
    readonly idleTimeout: number
    readonly requestTimeout: number
    readonly store?: string | undefined
    readonly dataplane?: string | undefined
    readonly hnsUrl?: string | undefined
  } & ContrailArgs,
  cluster?: ClusterSettings
): ServeArgs => ({
  socket: a.socket,
  pluginSpecDir: a.pluginSpecDir,
  stateDir: a.stateDir,
  logLevel: a.logLevel as LogLevel,
  metricsAddr: a.metricsAddr,
  metricsAllowRemote: a.metricsAllowRemote === true,
  cniSocket: a.cniSocket,
  chainPrefix: a.chainPrefix,
  limits: {
    maxConnections: Math.floor(a.maxConnections),
    idleTimeoutMs: a.idleTimeout * 1000,
    requestTimeoutMs: a.requestTimeout * 1000
  },
  contrail: {
    contrailApi: a.contrailApi,
    keystoneUrl: a.keystoneUrl,
    keystoneVersion: a.keystoneVersion,
    contrailCredentialsFile: a.contrailCredentialsFile,
    vrouterAgent: a.vrouterAgent,
    contrailOwner: a.contrailOwner
  },
  cluster,
  store: (a.store ?? 'file') as StoreKind,
  dataplane:
    ((a.dataplane ?? defaultDataplane()) as DataplaneKind) === 'hns'
      ? { kind: 'hns', ...(a.hnsUrl === undefined || a.hnsUrl === '' ? {} : { hnsUrl: a.hnsUrl }) }
      : { kind: 'linux' }
})

export const serveCommand = (y: Argv): Argv =>
  y.command(
    'serve',
    'Run the Docker network and IPAM plugin (remote driver "isthmus") on its socket',
    (c) =>
      clusterFlags(contrailFlags(c))
        .option('store', {
          choices: STORE_KINDS,
          default: 'file',
          describe: "where this host's own records are kept: files under --state-dir, or etcd (with --cluster)"
        })
        .option('dataplane', {
          choices: DATAPLANE_KINDS,
          default: defaultDataplane(),
          describe:
            'linux: bridges and veth pairs; hns: HNS transparent networks and endpoints (Windows, with --contrail-api)'
        })
        .option('hns-url', {
          type: 'string',
          describe:
            'with --dataplane hns: reach HNS over HTTP at this http://host:port or unix socket path (a simulator or relay) instead of HNSCall on this Windows host'
        })
        .option('socket', {
          type: 'string',
          default: process.platform === 'win32' ? DEFAULT_PIPE : DEFAULT_SOCKET,
          describe: 'unix socket dockerd finds the plugin on; on Windows a named pipe (\\\\.\\pipe\\<name>)'
        })
        .option('plugin-spec-dir', {
          type: 'string',
          describe:
            "write <name>.spec there naming the socket, removed on stop ('' for none); default on a named pipe %ProgramData%\\docker\\plugins, else none"
        })
        .option('state-dir', {
          type: 'string',
          default: DEFAULT_STATE_DIR,
          describe: 'where networks, endpoints and leases are kept'
        })
        .option('log-level', {
          choices: LOG_LEVELS,
          default: 'info',
          describe: 'JSON log lines on stderr from this level up'
        })
        .option('cni-socket', {
          type: 'string',
          default: DEFAULT_DAEMON_SOCKET,
          describe: "unix socket the CNI executable hands its calls to ('' for none)"
        })
        .option('metrics-addr', {
          type: 'string',
          describe:
            'serve /metrics (Prometheus), /healthz and /readyz on this HOST:PORT, a loopback address unless --metrics-allow-remote'
        })
        .option('metrics-allow-remote', {
          type: 'boolean',
          default: false,
          describe: 'let --metrics-addr be an address other hosts reach (0.0.0.0:9323): it has no authentication'
        })
        .option('chain-prefix', {
          type: 'string',
          default: DEFAULT_CHAIN_PREFIX,
          describe: 'prefix of the iptables chains (letters, digits, _; at most 16)'
        })
        .option('max-connections', {
          type: 'number',
          default: SOCKET_LIMITS.maxConnections,
          describe: 'connections to the plugin socket open at once; more are closed at once'
        })
        .option('idle-timeout', {
          type: 'number',
          default: SOCKET_LIMITS.idleTimeoutMs / 1000,
          describe: 'seconds a kept-alive connection may wait for its next request'
        })
        .option('request-timeout', {
          type: 'number',
          default: SOCKET_LIMITS.requestTimeoutMs / 1000,
          describe: 'seconds to receive one request (a new connection that sends nothing is closed after it)'
        })
        .check(checkClusterFlags({ underlay: true }))
        .check((a) => {
          const refusal = dataplaneRefusal({
            dataplane: a.dataplane,
            hnsUrl: typeof a.hnsUrl === 'string' ? a.hnsUrl : undefined,
            contrailApi: typeof a.contrailApi === 'string' ? a.contrailApi : undefined,
            cluster: typeof a.cluster === 'string' ? a.cluster : undefined,
            platform: process.platform
          })
          if (refusal !== undefined) throw new Error(refusal)
          if (a.store === 'etcd' && (typeof a.cluster !== 'string' || a.cluster === '')) {
            throw new Error('--store etcd: only with --cluster <name> (the records sit under the cluster and host)')
          }
          if (typeof a.chainPrefix !== 'string' || !isChainPrefix(a.chainPrefix)) {
            throw new Error(`--chain-prefix: letters, digits and _, at most 16 (got ${JSON.stringify(a.chainPrefix)})`)
          }
          const at =
            typeof a.metricsAddr === 'string'
              ? parseMetricsAddr(a.metricsAddr, { allowRemote: a.metricsAllowRemote === true })
              : E.right(undefined)
          if (E.isLeft(at)) throw new Error(at.left)
          for (const [flag, v, min] of [
            ['max-connections', a.maxConnections, 1],
            ['idle-timeout', a.idleTimeout, 0.1],
            ['request-timeout', a.requestTimeout, 0.1]
          ] as const) {
            if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
              throw new Error(`--${flag}: a number of at least ${min} (got ${JSON.stringify(v)})`)
            }
          }
          return true
        }),
    async (a) => {
      // Checked above; a failure here is the environment changing in between.
      const cluster = clusterSettings(clusterArgsOf(a), process.env)
      if (E.isLeft(cluster)) {
        process.stderr.write(`isthmus serve: ${cluster.left}\n`)
        process.exitCode = 1
        return
      }
      await serve(settingsFromFlags(a, cluster.right))
    }
  )
