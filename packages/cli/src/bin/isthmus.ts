#!/usr/bin/env node
/** The `isthmus` executable: parse argv and run the chosen command. The only file that exits. */
import { hideBin } from 'yargs/helpers'
import { buildCli } from '../cli.js'

await buildCli(hideBin(process.argv)).parseAsync()
