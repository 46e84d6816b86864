/** Running commands in tests: results instead of exceptions, and processes tracked by PID. */
import { execFile, spawn, type ChildProcess } from 'node:child_process'

export interface RunResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Run `argv[0]` with the rest as arguments; never throws for a non-zero exit. */
export const run = (
  argv: ReadonlyArray<string>,
  opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}
) =>
  new Promise<RunResult>((resolve) => {
    const [cmd, ...args] = argv
    const child = execFile(
      cmd!,
      args,
      { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, env: opts.env ?? process.env },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
        resolve({ code, stdout: String(stdout), stderr: String(stderr) })
      }
    )
    if (opts.input !== undefined) child.stdin?.end(opts.input)
  })

/** Like `run`, but a non-zero exit rejects with the command and its stderr. */
export const mustRun = async (
  argv: ReadonlyArray<string>,
  opts: Parameters<typeof run>[1] = {}
): Promise<RunResult> => {
  const r = await run(argv, opts)
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`)
  return r
}

/** Wait until `check` holds, polling; rejects with `what` after `timeoutMs`. */
export const waitUntil = async (what: string, check: () => Promise<boolean>, timeoutMs = 30_000, everyMs = 100) => {
  const until = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Signal a process we started and wait for it to exit (SIGKILL after `graceMs`). */
export const stopChild = async (child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000) => {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}

export { spawn }
