/**
 * Running host commands (`ip`, `nsenter`, `iptables-save`, `iptables-restore`): the one place
 * that starts processes. Always `execFile` with an argv array, a timeout and a maxBuffer, never
 * a shell. `run` turns a non-zero exit into `CoreError.Dataplane` with the argv, exit code and
 * stderr; callers that expect some failures (a delete of what is gone) read the exit code instead.
 *
 * The `Exec` function is injectable (`linuxDataplane({ exec })`) so tests can wrap it, count the
 * commands, or make the Nth one fail.
 */
import { execFile } from 'node:child_process'
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { dataplane, io, type CoreError } from '@isthmus/core'

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** What a finished command printed, and how it exited. @category model */
export interface ExecOutput {
  readonly stdout: string
  readonly stderr: string
  readonly exitCode: number
}

/**
 * Run `file` with `args`, feeding `input` on stdin (an empty stdin when absent). Any exit code is
 * a `Right`; a `Left` means the command did not run to an exit: `Io` when it cannot start,
 * `Dataplane` with exit code 124 when it was killed at its timeout. A wrapper may also fail a
 * command outright with a `Dataplane` error (tests inject failures that way).
 *
 * @category model
 */
export type Exec = (file: string, args: ReadonlyArray<string>, input?: string) => TE.TaskEither<CoreError, ExecOutput>

/** @category model */
export interface ExecOptions {
  /** Kill a command that runs longer than this (ms). An `ip` call takes a few ms. */
  readonly timeoutMs?: number
  /** Largest stdout/stderr accepted (bytes); `ip -json link show` on a busy host is the biggest reader. */
  readonly maxBuffer?: number
}

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

/** Exit code reported when a command was killed for running past its timeout (as timeout(1) does). */
export const TIMEOUT_EXIT = 124

/**
 * The real `Exec`, over `child_process.execFile`.
 *
 * @category constructors
 */
export const execFileExec =
  (options: ExecOptions = {}): Exec =>
  (file, args, input) =>
  () =>
    new Promise((resolve) => {
      const argv = [file, ...args]
      const timeout = options.timeoutMs ?? 10_000
      const child = execFile(
        file,
        [...args],
        { timeout, maxBuffer: options.maxBuffer ?? 16 << 20, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } },
        (err, stdout, stderr) => {
          if (err === null) return resolve(E.right({ stdout, stderr, exitCode: 0 }))
          const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null; code?: unknown }
          if (typeof e.code === 'number') return resolve(E.right({ stdout, stderr, exitCode: e.code }))
          if (e.killed === true || e.signal != null) {
            return resolve(
              E.left(dataplane(argv, TIMEOUT_EXIT, `${stderr}killed (${e.signal ?? 'timeout'}) after ${timeout} ms`))
            )
          }
          // ENOENT, EACCES, maxBuffer exceeded: the command did not run to an exit code.
          resolve(E.left(io(`run ${file}`, err)))
        }
      )
      // A command that does not read its stdin closes the pipe early: EPIPE is not our failure.
      child.stdin?.on('error', () => undefined)
      child.stdin?.end(input ?? '')
    })

// -------------------------------------------------------------------------------------
// utils
// -------------------------------------------------------------------------------------

/** A non-zero exit as `Dataplane(argv, exitCode, stderr)`. @category utils */
export const checked =
  (argv: ReadonlyArray<string>) =>
  (o: ExecOutput): E.Either<CoreError, ExecOutput> =>
    o.exitCode === 0 ? E.right(o) : E.left(dataplane(argv, o.exitCode, o.stderr))

/** Run a command that must succeed. @category utils */
export const run = (
  exec: Exec,
  file: string,
  args: ReadonlyArray<string>,
  input?: string
): TE.TaskEither<CoreError, ExecOutput> => pipe(exec(file, args, input), TE.chainEitherK(checked([file, ...args])))
