/**
 * The daemon side of `pnpm bench:cni`, in a process of its own (as `isthmus serve` runs it, so the
 * bench's own process starts do not stall it): the daemon's store and dataplane (openDaemon) and
 * its CNI hand-off socket (daemonCni), without the Docker plugin socket. Prints one JSON line per
 * handed-off call (the daemon's `cni` log line, with its steps) on stdout, and `ready` first.
 *
 *   node --conditions=@isthmus/source --import tsx daemon.ts <socket> <stateDir> <chainPrefix>
 *
 * Ends at SIGTERM, closing the socket and the daemon (deferred removals finish first).
 */
import * as E from 'fp-ts/lib/Either.js'
import type { Logger } from '@isthmus/core'
import { cniHandoffServer, daemonCni, openDaemon } from '@isthmus/wiring'

const [socket, stateDir, chainPrefix] = process.argv.slice(2)
if (socket === undefined || stateDir === undefined || chainPrefix === undefined) {
  console.error('usage: daemon.ts <socket> <stateDir> <chainPrefix>')
  process.exit(2)
}

const quiet = (): undefined => undefined
const log: Logger = {
  debug: quiet,
  info: (msg, fields) => {
    if (msg === 'cni') process.stdout.write(`${JSON.stringify(fields ?? {})}\n`)
  },
  warn: (msg, fields) => process.stderr.write(`${JSON.stringify({ msg, ...fields })}\n`),
  error: (msg, fields) => process.stderr.write(`${JSON.stringify({ msg, ...fields })}\n`)
}

const main = async (): Promise<void> => {
  const opened = await openDaemon({ store: { stateDir }, chainPrefix }, log)()
  if (E.isLeft(opened)) throw new Error(`daemon: ${JSON.stringify(opened.left)}`)
  const daemon = opened.right
  const server = await cniHandoffServer({ socket, log, ...daemonCni(daemon, stateDir, log) })
  process.stdout.write('ready\n')
  process.once('SIGTERM', () => {
    void server
      .close()
      .then(() => daemon.close())
      .finally(() => process.exit(0))
  })
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
