#!/usr/bin/env node
/**
 * The `isthmus` executable: parse argv and run the chosen command. The only file that exits:
 * 0 when all went well, 1 when the command failed (its handler sets the code), 2 for a usage error
 * (unknown flag or command, bad value, missing argument), whichever source the value came from.
 */
import { hideBin } from 'yargs/helpers'
import { bugText } from '@isthmus/cnm-server'
import { buildCli } from '../cli.js'
import { UsageError } from '../settings.js'

try {
  await buildCli(hideBin(process.argv)).parseAsync()
} catch (e) {
  if (e instanceof UsageError) {
    process.stderr.write(`isthmus: ${e.message}\nSee isthmus --help (or isthmus <command> --help).\n`)
    process.exitCode = 2
  } else {
    // a handler that rejects is a bug: its stack, for the report
    process.stderr.write(`isthmus: ${bugText(e)}\n`)
    process.exitCode = 1
  }
}
