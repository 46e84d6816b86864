/**
 * Running the host's tools (`ip`, `iptables`, `/usr/bin/docker`): argv arrays through execFile,
 * never a shell; a non-zero exit rejects with the command and what it printed on stderr.
 */
import { execFile } from 'node:child_process'

/** Run `argv` and resolve its stdout; reject naming the command when it fails. */
export const run = (argv: ReadonlyArray<string>): Promise<string> =>
  new Promise((resolve, reject) => {
    const [file, ...args] = argv
    execFile(file!, args, { timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout)
      else reject(new Error(`${argv.join(' ')} failed: ${stderr.trim() || err.message}`))
    })
  })

/** Run `argv`; a failure whose stderr matches `absent` counts as done (deleting what is gone). */
export const runAbsentOk = (argv: ReadonlyArray<string>, absent: RegExp): Promise<void> =>
  run(argv).then(
    () => undefined,
    (e: Error) => (absent.test(e.message) ? undefined : Promise.reject(e))
  )

/** The Debian client that matches dockerd 20.10 (a newer `docker` on PATH refuses some flags). */
export const DOCKER = '/usr/bin/docker'
export const docker = (...args: string[]): Promise<string> => run([DOCKER, ...args])
