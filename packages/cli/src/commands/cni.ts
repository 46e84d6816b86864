/**
 * `isthmus cni install`: put the CNI plugin where runtimes look for it: `<bin-dir>/isthmus`, the
 * native client (packages/cni-native: a small static program that hands each call to `isthmus
 * serve`), with `--fallback` also `<bin-dir>/isthmus-node`, the whole plugin as a Node
 * single-executable application that the client runs when no daemon takes a call; and an
 * example network, `<conf-dir>/10-isthmus.conflist`. The installed set is what the flags say: a
 * fallback left by an earlier `--fallback` install goes without it.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { FALLBACK_FILE } from '@isthmus/handoff'
import type { Argv } from 'yargs'

export interface CniInstallArgs {
  readonly binDir: string
  readonly confDir: string
  readonly subnet: string
  readonly name: string
  readonly bridge: string
  readonly stateDir?: string
  readonly force: boolean
  /** Also install the Node fallback beside the client. */
  readonly fallback: boolean
  /** Where messages go (the yargs handler passes process.stdout/stderr). */
  readonly out: (line: string) => void
  /** The built files to install (default: builtClient(), builtPlugin()). */
  readonly built?: { readonly client: string; readonly fallback: string }
}

// The file name of the Node fallback in the bin dir, where the native client looks for it.
export { FALLBACK_FILE }

/** Where runtimes look for plugins and network configurations by default (CNI_PATH, the conf dir). */
export const DEFAULT_BIN_DIR = '/opt/cni/bin'
export const DEFAULT_CONF_DIR = '/etc/cni/net.d'
/** The example network's file in the conf dir. */
export const CONFLIST_FILE = '10-isthmus.conflist'

const packageDir = (name: string): string => dirname(createRequire(import.meta.url).resolve(`${name}/package.json`))

/** The built native client inside the @isthmus/cni-native package (`pnpm build` makes it). */
export const builtClient = (): string => join(packageDir('@isthmus/cni-native'), 'dist/isthmus')

/** The built Node plugin inside the @isthmus/cni-plugin package (`pnpm build` makes it). */
export const builtPlugin = (): string => join(packageDir('@isthmus/cni-plugin'), 'dist/sea/isthmus')

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
  const built = a.built ?? { client: builtClient(), fallback: builtPlugin() }
  for (const file of a.fallback ? [built.client, built.fallback] : [built.client]) {
    if (!existsSync(file)) {
      a.out(`isthmus: ${file} is not built; run \`pnpm build\` first`)
      return 1
    }
  }
  mkdirSync(a.binDir, { recursive: true })
  const bin = join(a.binDir, 'isthmus')
  installFile(built.client, bin, 0o755)
  a.out(`installed ${bin}`)
  const fallback = join(a.binDir, FALLBACK_FILE)
  if (a.fallback) {
    installFile(built.fallback, fallback, 0o755)
    a.out(`installed ${fallback} (the Node fallback: runs calls when no isthmus daemon takes them)`)
  } else if (existsSync(fallback)) {
    rmSync(fallback, { force: true })
    a.out(`removed ${fallback} (the Node fallback of an earlier install; --fallback keeps it)`)
  }
  mkdirSync(a.confDir, { recursive: true })
  const conf = join(a.confDir, CONFLIST_FILE)
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
          describe: 'install: copy the plugin (the native client) and an example network'
        })
        .option('bin-dir', {
          type: 'string',
          default: DEFAULT_BIN_DIR,
          describe: 'where the runtime finds plugins (CNI_PATH)'
        })
        .option('conf-dir', {
          type: 'string',
          default: DEFAULT_CONF_DIR,
          describe: 'where the runtime finds network configurations'
        })
        .option('name', { type: 'string', default: 'isthmus', describe: 'network name in the example conflist' })
        .option('subnet', { type: 'string', default: '10.22.0.0/16', describe: 'subnet of the example network' })
        .option('bridge', { type: 'string', default: 'isthmus0', describe: 'bridge of the example network' })
        .option('state-dir', { type: 'string', describe: 'stateDir of the example network (default /var/lib/isthmus)' })
        .option('force', { type: 'boolean', default: false, describe: 'replace an existing 10-isthmus.conflist' })
        .option('fallback', {
          type: 'boolean',
          default: false,
          describe: `also install the Node plugin as ${FALLBACK_FILE}, which runs calls when no daemon takes them`
        }),
    (a) => {
      process.exitCode = cniInstall({
        binDir: a.binDir,
        confDir: a.confDir,
        name: a.name,
        subnet: a.subnet,
        bridge: a.bridge,
        force: a.force,
        fallback: a.fallback,
        ...(a.stateDir === undefined ? {} : { stateDir: a.stateDir }),
        out: (l) => process.stderr.write(`${l}\n`)
      })
    }
  )
