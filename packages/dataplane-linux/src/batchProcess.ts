/**
 * Long-running `ip -force -batch -` processes that a daemon feeds its host-namespace batches to,
 * instead of starting an `ip` per batch. Starting a process costs the daemon's event loop ~4 ms
 * (fork of a large process) and the machine the exec; a line on a pipe costs microseconds. The
 * daemon starts one per `docker run` at least (the spare refill, the deferred veth removal), and
 * each stalls the Docker calls that arrive meanwhile.
 *
 * This is an `Exec` wrapper: `ip -batch -` and `ip -force -batch -` in the host namespace go to a
 * kept process and come back as if a process of their own had run them (the same exit code, and
 * stderr with `Command failed -:N` numbered within the batch), so ip.ts reads them unchanged.
 * Everything else (`-json` reads, `ip -n`, nsenter, iptables) goes to the wrapped `Exec`.
 *
 * How a batch's end is seen: after its lines comes a line that is not a command (`isthmus-done`):
 * `ip -force` reports it on stderr as `Command failed -:M`, M being that line's number, and goes
 * on. stderr is unbuffered and written in order, so everything before that report is the
 * batch's. A plain batch (no `-force`) stops at its first failing line: its lines are sent one at
 * a time, each followed by the marker, and the rest are not sent after a failure.
 *
 * A kept `ip` remembers the interface index of every device name it has resolved, and never
 * looks again: once a device is deleted and another made under its name (a bridge name passed
 * from a removed network to a new one, a CNI attachment added again), that process would address
 * the old index (`RTNETLINK answers: Invalid argument` for `master`, `No such device` for `dev`).
 * So the pool remembers, per process, the index each name it was given had (sysfs, in process),
 * and a process that would meet a name whose index changed since is replaced by a fresh one. An
 * `ip neigh` command (replace, flush) makes `ip` read every link of the host into that memory at
 * once, so a process that ran one is ended after its batch.
 *
 * Batches to one process run one after the other, and a veth removal waits ~20 ms in the kernel:
 * up to `maxProcesses` run side by side, each batch going to an idle one (or, with
 * `overflowToInner`, to the wrapped `Exec` when none is idle). A process that exits
 * (an argument error makes `ip` exit even with `-force`) fails the batch it was running with its
 * exit code, as a process of its own would have; the next batch starts a new one.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import * as E from 'fp-ts/lib/Either.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import { dataplane, describe, io, type CoreError } from '@isthmus/core'
import { TIMEOUT_EXIT, type Exec, type ExecOutput } from './exec.js'

/** @category model */
export interface BatchProcesses {
  readonly exec: Exec
  /**
   * End the kept processes (their batches finish first: stdin is closed, not killed). Batches
   * after that run in processes of their own, through the wrapped `Exec`: work at shutdown must not
   * depend on helpers a stop signal may have ended with the daemon (systemd signals every process
   * of the unit).
   */
  readonly close: () => Promise<void>
}

/** @category model */
export interface BatchProcessOptions {
  /** The `ip` command. Default `ip`. */
  readonly ip?: string
  /** Most processes kept. Default 3. */
  readonly maxProcesses?: number
  /** A batch not done after this long fails (and its process is ended). Default 10 s. */
  readonly timeoutMs?: number
  /**
   * When every kept process is busy, run the batch through the wrapped `Exec` at once instead of
   * waiting for one: for a wrapped `Exec` that starts processes without blocking the event loop
   * (the kept spawner), so that parallel work (100 CNI ADDs, removals that each wait ~20 ms in the
   * kernel) is not queued behind `maxProcesses` processes. Default false.
   */
  readonly overflowToInner?: boolean
}

// Not a command `ip` knows, so it fails at once and touches nothing: the end-of-batch marker.
const MARKER = 'isthmus-done'
const FAILED = /^Command failed -:(\d+)$/

/** What a batch caused: its stderr and, when `ip` exited during it, the exit code. */
interface Sent {
  readonly stderr: string
  readonly exitCode?: number
}

// A batch's failure, carried through its promise's rejection (which wants an Error).
class BatchFailure extends Error {
  constructor(readonly failure: CoreError) {
    super(describe(failure))
  }
}

interface Waiter {
  readonly markerLine: number
  readonly resolve: (sent: Sent) => void
  readonly reject: (e: CoreError) => void
}

/** One kept `ip -force -batch -` process. */
interface BatchProcess {
  readonly alive: () => boolean
  /** Taken by a batch (set by the pool). */
  busy: boolean
  /** The interface index of each device name it was given, as it was then (absent: there was none). */
  readonly indexes: Map<string, number>
  /**
   * Send `lines` then the marker; resolves the stderr they caused, with their `Command failed`
   * lines renumbered from 1 (as in a process of their own).
   */
  readonly send: (lines: ReadonlyArray<string>) => Promise<Sent>
  /** Close its stdin and wait for it to exit. */
  readonly end: () => Promise<void>
}

const startProcess = (ip: string, timeoutMs: number, onExit: (p: BatchProcess) => void): BatchProcess => {
  const argv = [ip, '-force', '-batch', '-']
  const child = spawn(ip, argv.slice(1), { stdio: 'pipe', env: { ...process.env, LC_ALL: 'C' } })
  let lineNo = 0
  let stderr = ''
  let pending = ''
  let waiter: Waiter | undefined
  let exited: CoreError | undefined
  let ending = false

  // An idle process does not keep the daemon alive (at its exit `ip` reads EOF); one running a
  // batch does, so that a removal in flight at shutdown is not cut off.
  const hold = (on: boolean): void => {
    if (on) child.ref()
    else child.unref()
    for (const s of [child.stdin, child.stdout, child.stderr]) {
      const h = s as unknown as { ref?: () => void; unref?: () => void }
      if (on) h.ref?.()
      else h.unref?.()
    }
  }

  const onStderr = (chunk: string): void => {
    pending += chunk
    let nl: number
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl + 1)
      pending = pending.slice(nl + 1)
      const m = FAILED.exec(line.trimEnd())
      if (m !== null && Number(m[1]) === waiter?.markerLine) {
        // The marker's own complaint is the line before its report: not part of the batch's output.
        const text = stderr.replace(/Object "isthmus-done" is unknown[^\n]*\n$/, '')
        const w = waiter
        waiter = undefined
        stderr = ''
        w.resolve({ stderr: text })
      } else {
        stderr += line
      }
    }
  }

  const self: BatchProcess = {
    alive: () => exited === undefined && !ending,
    busy: false,
    indexes: new Map(),
    send: (lines) => {
      if (exited !== undefined) return Promise.reject(new BatchFailure(exited))
      const first = lineNo + 1
      lineNo += lines.length + 1
      const markerLine = lineNo
      hold(true)
      return new Promise<Sent>((resolve, reject) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
        timer.unref()
        waiter = {
          markerLine,
          resolve: (sent) => {
            clearTimeout(timer)
            // A process being ended stays held until it has exited: end() waits for that.
            if (!ending) hold(false)
            resolve({
              ...sent,
              stderr: sent.stderr.replace(
                /^Command failed -:(\d+)$/gm,
                (_, n: string) => `Command failed -:${Number(n) - first + 1}`
              )
            })
          },
          reject: (e) => {
            clearTimeout(timer)
            if (!ending) hold(false)
            reject(new BatchFailure(e))
          }
        }
        child.stdin.write(`${[...lines, MARKER].join('\n')}\n`)
      })
    },
    end: () => {
      if (exited !== undefined) return Promise.resolve()
      ending = true
      hold(true)
      return new Promise((resolve) => {
        child.once('close', () => resolve())
        child.stdin.end()
      })
    }
  }

  // Some commands make ip exit even with -force (`neigh del` of an entry that is not there):
  // the batch running then ends as in a process of its own, with what it printed and the code.
  const gone = (code: number | null, signal: NodeJS.Signals | null, error?: Error): void => {
    if (exited !== undefined) return
    exited = error !== undefined ? io(`run ${ip}`, error) : dataplane(argv, code ?? 1, `exited (${signal ?? code})`)
    const w = waiter
    waiter = undefined
    if (w !== undefined) {
      if (error !== undefined) w.reject(exited)
      else if (signal !== null) w.reject(dataplane(argv, TIMEOUT_EXIT, `${stderr}${pending}killed (${signal})`))
      else w.resolve({ stderr: `${stderr}${pending}`, exitCode: code ?? 1 })
    }
    onExit(self)
  }

  hold(false)
  child.stdin.on('error', () => undefined)
  child.stdout.resume()
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', onStderr)
  child.on('error', (e) => gone(null, null, e))
  // 'close', not 'exit': stderr has then been read to its end.
  child.on('close', (code, signal) => gone(code, signal))
  return self
}

const failedIn = (stderr: string): boolean => /^Command failed -:\d+$/m.test(stderr)

/** Whether a batch makes `ip` read every link of the host into its name memory (see the top). */
const readsEveryLink = (lines: ReadonlyArray<string>): boolean => lines.some((l) => l.trimStart().startsWith('neigh '))

/** The device names a batch makes `ip` resolve: the word after `dev` or `master`. */
const devicesOf = (lines: ReadonlyArray<string>): ReadonlySet<string> => {
  const out = new Set<string>()
  for (const line of lines) {
    const words = line.trim().split(/\s+/)
    words.forEach((w, i) => {
      const next = words[i + 1]
      if ((w === 'dev' || w === 'master') && next !== undefined) out.add(next)
    })
  }
  return out
}

/** The device's interface index now (sysfs, in process), if it exists. */
const indexOf = (name: string): number | undefined => {
  if (name.includes('/') || name.startsWith('.')) return undefined
  try {
    return Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8'))
  } catch {
    return undefined
  }
}

/** Whether `p` may have resolved one of `names` to a device that is no longer there under it. */
const staleFor = (p: BatchProcess, names: ReadonlySet<string>): boolean =>
  [...names].some((n) => p.indexes.has(n) && p.indexes.get(n) !== indexOf(n))

/** What `p` resolved `names` to, as far as sysfs tells now (just after the batch). */
const remember = (p: BatchProcess, names: ReadonlySet<string>): void => {
  for (const n of names) {
    const i = indexOf(n)
    if (i === undefined) p.indexes.delete(n)
    else p.indexes.set(n, i)
  }
}

/**
 * `inner` with the host namespace's `ip -batch -` / `ip -force -batch -` run by kept processes.
 *
 * @category constructors
 */
export const batchProcesses = (inner: Exec, options: BatchProcessOptions = {}): BatchProcesses => {
  const ip = options.ip ?? 'ip'
  const max = Math.max(1, options.maxProcesses ?? 3)
  const timeoutMs = options.timeoutMs ?? 10_000
  const procs: BatchProcess[] = []
  const queue: Array<(p: BatchProcess | undefined) => void> = []

  const start = (): BatchProcess => {
    const made = startProcess(ip, timeoutMs, (gone) => {
      const i = procs.indexOf(gone)
      if (i >= 0) procs.splice(i, 1)
    })
    procs.push(made)
    return made
  }
  let closed = false
  // The next waiting batch gets this process, or a new one in place of it when it exited; once
  // closed, none (it then runs as a process of its own).
  const release = (p: BatchProcess): void => {
    p.busy = false
    const next = queue.shift()
    if (next === undefined) return
    const q = p.alive() ? p : closed ? undefined : start()
    if (q !== undefined) q.busy = true
    next(q)
  }
  // undefined: the batch runs through `inner`, as a process of its own.
  const acquire = (): Promise<BatchProcess | undefined> => {
    if (closed) return Promise.resolve(undefined)
    const p = procs.find((x) => x.alive() && !x.busy) ?? (procs.length < max ? start() : undefined)
    if (p !== undefined) {
      p.busy = true
      return Promise.resolve(p)
    }
    if (options.overflowToInner === true) return Promise.resolve(undefined)
    return new Promise((resolve) => queue.push(resolve))
  }

  // Out of the pool, ended once its stdin is read to its end.
  const retire = (p: BatchProcess): void => {
    const i = procs.indexOf(p)
    if (i >= 0) procs.splice(i, 1)
    void p.end()
  }

  // A process that knows a name under an old index is ended; a fresh one takes its batch.
  const renew = (p: BatchProcess): BatchProcess => {
    retire(p)
    const q = start()
    q.busy = true
    return q
  }

  const runBatch = async (
    lines: ReadonlyArray<string>,
    force: boolean,
    alone: TE.TaskEither<CoreError, ExecOutput>
  ): Promise<E.Either<CoreError, ExecOutput>> => {
    const got = await acquire()
    if (got === undefined) return alone()
    const devices = devicesOf(lines)
    const p = staleFor(got, devices) ? renew(got) : got
    try {
      if (force) {
        const out = await p.send(lines)
        return E.right({ stdout: '', stderr: out.stderr, exitCode: out.exitCode ?? (failedIn(out.stderr) ? 1 : 0) })
      }
      // A plain batch stops at its first failure: one line at a time.
      let stderr = ''
      for (const [i, line] of lines.entries()) {
        const out = await p.send([line])
        stderr += out.stderr.replace(/^Command failed -:1$/m, `Command failed -:${i + 1}`)
        if (out.exitCode !== undefined) return E.right({ stdout: '', stderr, exitCode: out.exitCode })
        if (failedIn(out.stderr)) return E.right({ stdout: '', stderr, exitCode: 1 })
      }
      return E.right({ stdout: '', stderr, exitCode: 0 })
    } catch (e) {
      return E.left(e instanceof BatchFailure ? e.failure : io('ip batch', e))
    } finally {
      remember(p, devices)
      // its next batch would find any name under the index it had now
      if (readsEveryLink(lines)) retire(p)
      release(p)
    }
  }

  const exec: Exec = (file, args, input) => {
    if (closed) return inner(file, args, input)
    const force = args.length === 3 && args[0] === '-force' && args[1] === '-batch' && args[2] === '-'
    const plain = args.length === 2 && args[0] === '-batch' && args[1] === '-'
    if (file !== ip || !(force || plain) || input === undefined) return inner(file, args, input)
    const lines = input.split('\n').filter((l) => l.trim() !== '')
    // A marker among the lines would end the batch early: never the case for isthmus's own.
    if (lines.some((l) => l.trim() === MARKER)) {
      return async () => E.left(io('ip batch', new Error(`a batch line may not be ${MARKER}`)))
    }
    return () => runBatch(lines, force, () => inner(file, args, input)())
  }

  return {
    exec,
    close: async () => {
      closed = true
      await Promise.all(procs.map((p) => p.end()))
    }
  }
}
