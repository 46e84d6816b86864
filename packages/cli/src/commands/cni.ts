/**
 * `isthmus cni install`: put the CNI plugin where runtimes look for it. One executable file,
 * `<bin-dir>/isthmus` (a Node single-executable application: it needs neither `node` on PATH nor
 * node_modules beside it), and an example network, `<conf-dir>/10-isthmus.conflist`.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { Argv } from 'yargs'

export interface CniInstallArgs {
  readonly binDir: string
  readonly confDir: string
  readonly subnet: string
  readonly name: string
  readonly bridge: string
  readonly stateDir?: string
  readonly force: boolean
  /** Where messages go (the yargs handler passes process.stdout/stderr). */
  readonly out: (line: string) => void
}

/** The built plugin inside the @isthmus/cni-plugin package (`pnpm build` makes it). */
export const builtPlugin = (): string => {
  const require = createRequire(import.meta.url)
  return join(dirname(require.resolve('@isthmus/cni-plugin/package.json')), 'dist/sea/isthmus')
}

/** The example network: isthmus alone, consuming the capabilities it implements itself. */
export const exampleConflist = (a: Pick<CniInstallArgs, 'name' | 'subnet' | 'bridge' | 'stateDir'>): string =>
  `${JSON.stringify(
    {
      // 1.0.0: the newest version podman 4.3 (libcni 1.1.2) can read; isthmus answers 0.3.0 to 1.1.0.
      cniVersion: '1.0.0',
      name: a.name,
      plugins: [
        {
          type: 'isthmus',
          bridge: a.bridge,
          isGateway: true,
          ipMasq: true,
          ipam: { ranges: [[{ subnet: a.subnet }]] },
          ...(a.stateDir === undefined ? {} : { stateDir: a.stateDir }),
          capabilities: { portMappings: true, ips: true, mac: true }
        }
      ]
    },
    null,
    2
  )}\n`

// A running plugin's file cannot be overwritten in place (ETXTBSY): copy beside it, then rename.
const installFile = (from: string, to: string, mode: number): void => {
  const tmp = `${to}.tmp-${process.pid}`
  rmSync(tmp, { force: true })
  copyFileSync(from, tmp)
  chmodSync(tmp, mode)
  renameSync(tmp, to)
}

/** Install; returns the exit code. */
export const cniInstall = (a: CniInstallArgs): number => {
  const plugin = builtPlugin()
  if (!existsSync(plugin)) {
    a.out(`isthmus: ${plugin} is not built; run \`pnpm build\` first`)
    return 1
  }
  mkdirSync(a.binDir, { recursive: true })
  const bin = join(a.binDir, 'isthmus')
  installFile(plugin, bin, 0o755)
  a.out(`installed ${bin}`)
  mkdirSync(a.confDir, { recursive: true })
  const conf = join(a.confDir, '10-isthmus.conflist')
  if (existsSync(conf) && !a.force) {
    a.out(`kept ${conf} (exists; --force replaces it)`)
  } else {
    const tmp = `${conf}.tmp-${process.pid}`
    writeFileSync(tmp, exampleConflist(a))
    renameSync(tmp, conf)
    a.out(`wrote ${conf}`)
  }
  return 0
}

export const cniCommand = (y: Argv): Argv =>
  y.command(
    'cni <action>',
    'The CNI plugin',
    (c) =>
      c
        .positional('action', {
          choices: ['install'] as const,
          describe: 'install: copy the plugin and an example network'
        })
        .option('bin-dir', {
          type: 'string',
          default: '/opt/cni/bin',
          describe: 'where the runtime finds plugins (CNI_PATH)'
        })
        .option('conf-dir', {
          type: 'string',
          default: '/etc/cni/net.d',
          describe: 'where the runtime finds network configurations'
        })
        .option('name', { type: 'string', default: 'isthmus', describe: 'network name in the example conflist' })
        .option('subnet', { type: 'string', default: '10.22.0.0/16', describe: 'subnet of the example network' })
        .option('bridge', { type: 'string', default: 'isthmus0', describe: 'bridge of the example network' })
        .option('state-dir', { type: 'string', describe: 'stateDir of the example network (default /var/lib/isthmus)' })
        .option('force', { type: 'boolean', default: false, describe: 'replace an existing 10-isthmus.conflist' }),
    (a) => {
      process.exitCode = cniInstall({
        binDir: a.binDir,
        confDir: a.confDir,
        name: a.name,
        subnet: a.subnet,
        bridge: a.bridge,
        force: a.force,
        ...(a.stateDir === undefined ? {} : { stateDir: a.stateDir }),
        out: (l) => process.stderr.write(`${l}\n`)
      })
    }
  )
