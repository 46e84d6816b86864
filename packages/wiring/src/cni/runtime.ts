/**
 * The CNI frontend's Runtime on Linux: the store of the netconf's `stateDir` (through the store
 * table), the iproute2/iptables dataplane, the Contrail ports of a `contrail` section, winston
 * logs, delegates run with `execFile`, links read with `ip -json`, the Docker Engine API.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { builtinControlPlane, makeIpam, noopAgent, systemClock, type CoreError, type Logger } from '@isthmus/core'
import type { Cni, CoreSession, CoreSettings, Runtime } from '@isthmus/cni-exec'
import { execFileExec, linuxDataplane, type Tools } from '@isthmus/dataplane-linux'
import { contrailController } from '../contrail.js'
import { openLogger } from '../logs.js'
import { DAEMON_SPARE_FILES, openStore } from '../stores.js'
import { systemCommand } from './commands.js'
import { execDelegate } from './delegate.js'
import { linuxDockerPorts } from './dockerPorts.js'
import { ipProbe } from './probe.js'

/** @category model */
export interface LinuxRuntimeOptions {
  /** The process environment: PATH for the system commands, the base env of delegates. */
  readonly env: Cni.RawEnv
  /** The names this executable answers to as `type`/`ipam.type`. */
  readonly selfNames?: ReadonlyArray<string>
  /**
   * Running inside the daemon (calls handed off): DEL answers before the kernel has removed the
   * veth pair, and a session's `close` waits for that (linuxDataplane's `deferLinkRemoval`).
   */
  readonly deferLinkRemoval?: boolean
  /**
   * A session's dataplane feeds its host `ip -batch` work to kept `ip` processes and starts its
   * other commands through a kept spawner (linuxDataplane's `keepIpProcesses` and `spawner`), so
   * the daemon's event loop is not blocked by a process start per command; the session's `close`
   * ends them. Default: `deferLinkRemoval` (a daemon). A CNI process runs too few commands to pay
   * for starting helpers.
   */
  readonly keepProcesses?: boolean
}

/**
 * The real runtime. The store is opened per call without the opening sweep: a CNI call is short
 * and touches few records, and listing sweeps what it reads anyway.
 *
 * @category constructors
 */
export const linuxRuntime = (options: LinuxRuntimeOptions): Runtime => {
  const pathVar = options.env['PATH']
  const cmd = (n: string) => systemCommand(n, pathVar)
  const tools: Tools = { exec: execFileExec(), ip: cmd('ip'), nsenter: cmd('nsenter') }
  const keep = options.keepProcesses ?? options.deferLinkRemoval === true
  const open = (settings: CoreSettings, log: Logger): TE.TaskEither<CoreError, CoreSession> =>
    pipe(
      openStore({
        stateDir: settings.stateDir,
        sweepOnOpen: false,
        ...(keep ? { spareFiles: DAEMON_SPARE_FILES } : {})
      }),
      TE.map((store) => {
        const dataplane = linuxDataplane({
          commands: {
            ip: tools.ip,
            nsenter: tools.nsenter,
            iptablesSave: cmd('iptables-save'),
            iptablesRestore: cmd('iptables-restore'),
            ip6tablesSave: cmd('ip6tables-save'),
            ip6tablesRestore: cmd('ip6tables-restore')
          },
          ...(settings.chainPrefix === undefined ? {} : { chainPrefix: settings.chainPrefix }),
          ...(options.deferLinkRemoval === true ? { deferLinkRemoval: true } : {}),
          ...(keep ? { keepIpProcesses: true, spawner: true } : {})
        })
        const ipam = makeIpam({ store, clock: systemClock, log })
        return {
          env: {
            store,
            dataplane,
            controlPlane: builtinControlPlane(ipam, store, log),
            agent: noopAgent,
            log,
            clock: systemClock
          },
          close: async () => {
            // drain() and, in a daemon, the kept processes ended first
            await (keep ? dataplane.close() : dataplane.drain())
            await store.close()
          }
        }
      })
    )
  return {
    open,
    controller: contrailController(),
    logger: openLogger,
    delegate: execDelegate(options.env),
    probe: ipProbe(tools),
    clock: systemClock,
    selfNames: options.selfNames ?? ['isthmus'],
    docker: linuxDockerPorts(tools)
  }
}
