/** @isthmus/cli: the `isthmus` program, importable so integrators can embed or extend it. */
export { buildCli, version } from './cli.js'
