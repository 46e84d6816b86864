/**
 * The Contrail flags of `isthmus serve` (their resolution, credentials included, is
 * @isthmus/wiring's contrailSettings).
 *
 * Credentials are never taken from argv (a process list shows argv to every user): they come
 * from the OS_* variables or the file named by `--contrail-credentials-file`. A URL flag may
 * still carry userinfo (`http://user:pass@host:8082`): it is sent as HTTP Basic authorization,
 * blanked in every log line and error sentence, and warned about at start.
 */
import { hostname } from 'node:os'
import type { Argv } from 'yargs'
import { DEFAULT_AGENT_URL } from '@isthmus/contrail'

/** Add the Contrail flags to a command. */
export const contrailFlags = <T>(y: Argv<T>) =>
  y
    .option('contrail-api', {
      type: 'string',
      describe: 'Contrail config API URL (http://host:8082); networks created with -o tenant=… -o network=… then use it'
    })
    .option('keystone-url', {
      type: 'string',
      describe: 'keystone URL with its version path (http://host:5000/v3); no authentication when absent'
    })
    .option('keystone-version', {
      choices: ['v2', 'v3'] as const,
      default: 'v3' as const,
      describe: 'keystone API version'
    })
    .option('contrail-credentials-file', {
      type: 'string',
      describe: 'openrc-style file with OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME (the OS_* environment variables win)'
    })
    .option('vrouter-agent', { type: 'string', default: DEFAULT_AGENT_URL, describe: 'vRouter agent port API URL' })
    .option('contrail-owner', {
      type: 'string',
      default: hostname(),
      describe: 'name marking the Contrail objects this host creates (for reconciliation)'
    })
