/**
 * The real ports on Linux: the file store under the netconf's `stateDir`, the iproute2/iptables
 * dataplane, the Contrail config API and vRouter agent of a `contrail` section, winston logs,
 * delegates run with `execFile`, links read with `ip -json`. Commands
 * are found by absolute path, because a runtime may run the plugin with a minimal PATH
 * (containerd's and podman's do not always include /usr/sbin, where iptables lives).
 */
import { execFile } from 'node:child_process'
import { accessSync, constants, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { builtinControlPlane, IfName, makeIpam, noopAgent, systemClock, type CoreError, type Logger } from '@isthmus/core'
import {
  decodeLinks,
  execFileExec,
  findLink,
  host,
  inNetns,
  linuxDataplane,
  runIp,
  type IpLink,
  type Tools
} from '@isthmus/dataplane-linux'
import { winstonLogger } from '@isthmus/log'
import { fileStore } from '@isthmus/store-fs'
import { contrailController } from './controller.js'
import { linuxDockerPorts } from './docker/linuxPorts.js'
import type { RawEnv } from './protocol/Env.js'
import type { CoreSession, CoreSettings, Delegate, LinkState, Probe, Runtime } from './runtime.js'

// -------------------------------------------------------------------------------------
// commands
// -------------------------------------------------------------------------------------

const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']

const isExecutableFile = (p: string): boolean => {
  try {
    if (!statSync(p).isFile()) return false
    accessSync(p, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The first executable `name` in `dirs`. @category utils */
export const findExecutable = (name: string, dirs: ReadonlyArray<string>): string | undefined => {
  // A plugin type is a file name, never a path (libcni refuses separators too).
  if (name === '' || name.includes('/') || name === '.' || name === '..') return undefined
  for (const d of dirs) {
    const p = join(d, name)
    if (isExecutableFile(p)) return p
  }
  return undefined
}

/** A system command by absolute path: PATH first, then the usual system directories. @category utils */
export const systemCommand = (name: string, pathVar: string | undefined): string =>
  findExecutable(name, [...(pathVar ?? '').split(':').filter((d) => d.startsWith('/')), ...SYSTEM_DIRS]) ?? name

// -------------------------------------------------------------------------------------
// ports
// -------------------------------------------------------------------------------------

const linkState = (l: IpLink): LinkState => ({
  name: l.ifname,
  up: l.flags.includes('UP'),
  addresses: (l.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`),
  ...(l.address === undefined ? {} : { mac: l.address }),
  ...(l.master === undefined ? {} : { master: l.master })
})

/** The Probe port over `ip -json`. @category constructors */
export const ipProbe = (tools: Tools): Probe => ({
  hostLink: (name) => pipe(findLink(tools, host, name), TE.map((l) => (l === undefined ? undefined : linkState(l)))),
  // sysfs answers without starting `ip` (two of them on every ADD); a name that cannot be a link
  // name, or no such link, is undefined.
  hostMac: (name) =>
    TE.right(
      IfName.is(name) && !name.includes('/') && !name.startsWith('.')
        ? (() => {
            try {
              return readFileSync(`/sys/class/net/${name}/address`, 'utf8').trim()
            } catch {
              return undefined
            }
          })()
        : undefined
    ),
  sandboxLink: (netns, name) =>
    pipe(
      TE.tryCatch(
        async () => statSync(netns),
        (): CoreError => ({ _tag: 'InvalidNetns', path: netns, detail: 'no such file or directory' })
      ),
      TE.chain(() => findLink(tools, inNetns(netns), name)),
      TE.map((l) => (l === undefined ? undefined : linkState(l)))
    ),
  bridgePorts: (bridge) =>
    pipe(
      runIp(tools, host, ['-json', 'link', 'show', 'master', bridge]),
      TE.chainEitherK((out) => decodeLinks(out === '' ? '[]' : out)),
      TE.map((links) => links.map((l) => l.ifname)),
      // No such bridge: no ports.
      TE.orElse((e) => (e._tag === 'Dataplane' && /does not exist|Cannot find device/.test(e.stderr) ? TE.right([]) : TE.left(e)))
    )
})

/** The Delegate port: `execFile` of `<dir>/<type>` from CNI_PATH, same env and stdin. @category constructors */
export const execDelegate = (baseEnv: RawEnv): Delegate => ({
  exec: (plugin, path, env, stdin) => {
    const file = findExecutable(plugin, path)
    if (file === undefined) return Promise.resolve(undefined)
    const merged: Record<string, string> = {}
    for (const [k, v] of Object.entries({ ...baseEnv, ...env })) if (v !== undefined) merged[k] = v
    return new Promise((resolve) => {
      const child = execFile(file, [], { env: merged, maxBuffer: 16 * 1024 * 1024, timeout: 60_000 }, (err, stdout, stderr) => {
        const exitCode = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
        resolve({ exitCode, stdout: String(stdout), stderr: String(stderr) })
      })
      child.stdin?.end(stdin)
    })
  }
})

/** @category model */
export interface LinuxRuntimeOptions {
  /** The process environment: PATH for the system commands, the base env of delegates. */
  readonly env: RawEnv
  /** The names this executable answers to as `type`/`ipam.type`. */
  readonly selfNames?: ReadonlyArray<string>
  /**
   * Running inside the daemon (calls handed off): DEL answers before the kernel has removed the
   * veth pair, and a session's `close` waits for that (linuxDataplane's `deferLinkRemoval`).
   */
  readonly deferLinkRemoval?: boolean
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
  const open = (settings: CoreSettings, log: Logger): TE.TaskEither<CoreError, CoreSession> =>
    pipe(
      fileStore({ stateDir: settings.stateDir, sweepOnOpen: false }),
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
          ...(options.deferLinkRemoval === true ? { deferLinkRemoval: true } : {})
        })
        const ipam = makeIpam({ store, clock: systemClock })
        return {
          env: { store, dataplane, controlPlane: builtinControlPlane(ipam, store), agent: noopAgent, log, clock: systemClock },
          close: async () => {
            await dataplane.drain()
            await store.close()
          }
        }
      })
    )
  return {
    open,
    controller: contrailController(),
    logger: (s) => winstonLogger({ level: s.level, stderr: s.stderr, ...(s.file === undefined ? {} : { file: s.file }) }),
    delegate: execDelegate(options.env),
    probe: ipProbe(tools),
    clock: systemClock,
    selfNames: options.selfNames ?? ['isthmus'],
    docker: linuxDockerPorts(tools)
  }
}

