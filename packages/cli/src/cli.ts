/**
 * The `isthmus` command line: one yargs program whose subcommands run the Docker plugin,
 * install the CNI plugin and inspect state. Built as a function of argv and environment so tests
 * drive it without a process. Every flag may also come from an `ISTHMUS_*` variable or a JSON
 * config file (settings.ts). A usage error (unknown flag or command, bad value, missing argument)
 * rejects the parse with a UsageError, which the bin turns into exit code 2.
 */
import yargs, { type Argv } from 'yargs'
import { cniCommand } from './commands/cni.js'
import { hostsCommand } from './commands/hosts.js'
import { leasesCommand } from './commands/leases.js'
import { networksCommand } from './commands/networks.js'
import { quarantineCommand } from './commands/quarantine.js'
import { serveCommand } from './commands/serve.js'
import { statusCommand } from './commands/status.js'
import { uninstallCommand } from './commands/uninstall.js'
import { CONFIG_VAR, settingsLayer, sourceText, UsageError } from './settings.js'
import { version } from './version.js'

export { version }

const epilogue = [
  'isthmus serves Docker (CNM remote network + IPAM plugin) and CNI runtimes from one core.',
  'State lives under --state-dir (default /var/lib/isthmus).',
  'Every flag may also be set as ISTHMUS_<FLAG> (--state-dir: ISTHMUS_STATE_DIR) or in the JSON file',
  `of --config (${CONFIG_VAR}); a flag wins over a variable, which wins over the file.`
].join('\n')

const commands = (y: Argv): Argv =>
  uninstallCommand(
    statusCommand(hostsCommand(quarantineCommand(networksCommand(leasesCommand(cniCommand(serveCommand(y)))))))
  )

interface CommandHandler {
  /** The command as declared, positionals included (`cni <action>`). */
  readonly original: string
  readonly builder: ((y: Argv) => Argv) | Record<string, unknown>
}
interface Internals {
  getInternalMethods(): { getCommandInstance(): { getCommandHandlers(): Record<string, CommandHandler> } }
}

/**
 * Every command's flags (kebab names, yargs's own left out), by running each command's builder,
 * and its subcommands', on a fresh program.
 */
export const commandFlags = (): ReadonlyMap<string, ReadonlySet<string>> => {
  const found = new Map<string, ReadonlySet<string>>()
  const walk = (path: string, y: Argv): void => {
    const handlers = (y as unknown as Internals).getInternalMethods().getCommandInstance().getCommandHandlers()
    for (const [name, h] of Object.entries(handlers)) {
      if (typeof h.builder !== 'function') continue
      const sub = h.builder(yargs([]))
      const full = name === '$0' ? path : `${path} ${name}`.trim()
      const keys = Object.keys(
        (sub as unknown as { getOptions: () => { key: Record<string, unknown> } }).getOptions().key
      )
      const positionals = new Set([...h.original.matchAll(/[<[]([a-z-]+)(?:\.\.)?[>\]]/g)].map((m) => m[1]))
      const flags = keys.filter((k) => !['help', 'version'].includes(k) && !positionals.has(k))
      found.set(full, new Set([...(found.get(full) ?? []), ...flags]))
      walk(full, sub)
    }
  }
  walk('', commands(yargs([])))
  return found
}

let allFlagsCache: ReadonlySet<string> | undefined
const allFlags = (): ReadonlySet<string> =>
  (allFlagsCache ??= new Set([...commandFlags().values()].flatMap((s) => [...s])))

/** The yargs program, without parsing. @category constructors */
export const buildCli = (
  argv: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>> = process.env
): Argv => {
  const layer = settingsLayer(argv, env, allFlags)
  // A check's sentence names its flag (`--chain-prefix: …`); say where a value not typed came from.
  const withSource = (msg: string): string => {
    const flag = /^--([a-z0-9-]+)/.exec(msg)?.[1]
    const from = flag === undefined ? undefined : layer.sources.get(flag)
    return from === undefined ? msg : `${msg} (from ${sourceText(from)})`
  }
  return commands(
    yargs([...argv])
      .middleware(layer.middleware as unknown as Parameters<Argv['middleware']>[0], true)
      .option('config', {
        type: 'string',
        global: true,
        describe: `JSON file of settings, keys the flag names ({"log-level": "debug"}); also ${CONFIG_VAR}`
      })
  )
    .scriptName('isthmus')
    .usage('$0 <command> [options]')
    .version(version)
    .alias('v', 'version')
    .help()
    .alias('h', 'help')
    .epilogue(epilogue)
    .demandCommand(1, 'Name a command; see --help.')
    .strict()
    .exitProcess(false)
    .fail((msg: string | undefined, err: Error | undefined) => {
      // Called for usage errors only (a handler's rejection rejects the parse itself).
      throw err instanceof UsageError ? err : new UsageError(withSource(msg ?? err?.message ?? 'usage error'))
    })
    .wrap(Math.min(100, process.stdout.columns ?? 100))
}
