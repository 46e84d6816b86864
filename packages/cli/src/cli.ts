/**
 * The `isthmus` command line: one yargs program whose subcommands run the Docker plugin,
 * install the CNI plugin and inspect state. Built as a function of argv and output streams so
 * tests drive it without a process.
 */
import yargs, { type Argv } from 'yargs'
import { cniCommand } from './commands/cni.js'
import { hostsCommand } from './commands/hosts.js'
import { leasesCommand } from './commands/leases.js'
import { networksCommand } from './commands/networks.js'
import { quarantineCommand } from './commands/quarantine.js'
import { serveCommand } from './commands/serve.js'
import { uninstallCommand } from './commands/uninstall.js'
import { version } from './version.js'

export { version }

const epilogue = [
  'isthmus serves Docker (CNM remote network + IPAM plugin) and CNI runtimes from one core.',
  'State lives under --state-dir (default /var/lib/isthmus).'
].join('\n')

/** The yargs program, without parsing. @category constructors */
export const buildCli = (argv: ReadonlyArray<string>): Argv =>
  uninstallCommand(
    hostsCommand(quarantineCommand(networksCommand(leasesCommand(cniCommand(serveCommand(yargs([...argv])))))))
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
    .wrap(Math.min(100, process.stdout.columns ?? 100))
