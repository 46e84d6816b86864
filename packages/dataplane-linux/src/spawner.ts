/**
 * An `Exec` over one kept spawner process (`spawner/`, a small static Go program): each command
 * is a JSON line to it and comes back as a JSON line, instead of a `child_process` start of its
 * own. Node starts a process by forking itself, which for a daemon of 100+ MB blocks the event
 * loop ~3.5 ms per command; Go starts one with vfork, on its own threads, and a line on a pipe
 * costs the event loop microseconds. For a long-running daemon: a CNI process runs too few
 * commands to pay for starting a helper.
 *
 * The contract is `execFileExec`'s: any exit code is a `Right`; `Io` when the command cannot
 * start (or its output passes `maxBuffer`); `Dataplane` with exit code 124 when it was killed
 * (at its timeout, or by a signal). Commands run with `LC_ALL=C` over the spawner's environment,
 * which is this process's when the spawner started.
 *
 * The spawner starts at the first command, and again at the next command after it died; the
 * commands it was running then fail with `Io` (they may have run: they are never run again). An
 * idle spawner keeps no process alive, it ends when its stdin closes (`close`, or this process
 * exiting) and at once when this process dies (PR_SET_PDEATHSIG). In a session of its own
 * (`detached`), so a Ctrl-C meant for the daemon does not end it before the daemon's own `close`.
 *
 * Without the binary (the npm package used without building it, the CNI executable's bundle),
 * every command runs through the fallback (`execFileExec`), logged once at debug level.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { fileURLToPath } from 'node:url'
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { causeText, dataplane, io, silentLogger, type CoreError, type Logger } from '@isthmus/core'
import { execFileExec, TIMEOUT_EXIT, type Exec, type ExecOptions, type ExecOutput } from './exec.js'

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** @category model */
export interface SpawnerOptions extends ExecOptions {
  /** Path of the spawner binary. Default: `dist/spawner/isthmus-spawner` of this package. */
  readonly binary?: string
  /** How commands run when there is no binary, and after `close`. Default: `execFileExec` with these options. */
  readonly fallback?: Exec
  /** Where the missing binary (debug) and a spawner that cannot run (warn) are said. Default: dropped. */
  readonly log?: Logger
  /**
   * The `ip` and `nsenter` commands (as given to `Exec`) whose `ip -batch` calls the spawner
   * serves over netlink itself when every line is of the few a CNI ADD and DEL write
   * (spawner/ipbuiltin.go), with `ip`'s own output and exit code; other calls run the command.
   * Default: none (every command runs).
   */
  readonly netlink?: { readonly ip: string; readonly nsenter: string }
}

/** @category model */
export interface KeptSpawner {
  readonly exec: Exec
  /**
   * End the spawner: its stdin is closed, it answers what it is running and exits. Commands after
   * that run through the fallback, as processes of their own.
   */
  readonly close: () => Promise<void>
  /** The running spawner's process id; undefined before the first command and after it ended. */
  readonly pid: () => number | undefined
  /**
   * An `Exec` that gives the spawner the calls it serves over netlink (`netlink`) and every other
   * call to `next` (kept `ip` processes, say), which also runs everything when there is no
   * spawner. A call it does not serve costs one line to it and back.
   */
  readonly netlinkFirst: (next: Exec) => Exec
}

/** One line the spawner writes: what became of the command with that id. */
const Answer = t.intersection([
  t.type({ id: t.number }),
  t.partial({
    stdout: t.string,
    stderr: t.string,
    exitCode: t.number,
    signal: t.string,
    timedOut: t.boolean,
    error: t.string,
    declined: t.boolean
  })
])
type Answer = t.TypeOf<typeof Answer>

interface Waiting {
  readonly file: string
  readonly args: ReadonlyArray<string>
  readonly input: string | undefined
  readonly timeoutMs: number
  /** Asked with netlinkOnly: `declined` is its answer when the spawner does not serve it. */
  readonly done: (r: E.Either<CoreError, ExecOutput | typeof DECLINED>) => void
}

/** The spawner's answer to a netlink-only request it does not serve. */
const DECLINED = 'declined'

/** One spawner process and the commands it was given. */
interface Running {
  readonly child: ChildProcessWithoutNullStreams
  readonly waiting: Map<number, Waiting>
  answered: number
  stderrTail: string
  /** The 'close' event came. */
  ended: boolean
  readonly closed: Promise<void>
}

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

// An answer later than the spawner's own timeout by this much means the spawner is stuck.
const ANSWER_GRACE_MS = 5_000

/**
 * The spawner binary beside this module's package (from src/ and dist/ alike). Undefined where the
 * module has no file URL (bundled into CommonJS, as the CNI executable is).
 *
 * @category constructors
 */
export const defaultSpawnerBinary = (): string | undefined => {
  try {
    return fileURLToPath(new URL('../dist/spawner/isthmus-spawner', import.meta.url))
  } catch {
    return undefined
  }
}

/**
 * An `Exec` whose commands a kept spawner process starts (see the top of this module).
 *
 * @category constructors
 */
export const spawnerExec = (options: SpawnerOptions = {}): KeptSpawner => {
  const log = options.log ?? silentLogger
  const execOptions: ExecOptions = {
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.maxBuffer === undefined ? {} : { maxBuffer: options.maxBuffer })
  }
  const fallback = options.fallback ?? execFileExec(execOptions)
  const timeoutMs = options.timeoutMs ?? 10_000
  const maxBuffer = options.maxBuffer ?? 16 << 20

  // Whether the binary is there, looked at once (at the first command).
  let binary: string | null | undefined
  const usable = (): string | null => {
    if (binary !== undefined) return binary
    const path = options.binary ?? defaultSpawnerBinary()
    try {
      if (path === undefined) throw new Error('this module has no file URL')
      accessSync(path, constants.X_OK)
      binary = path
    } catch (e) {
      log.debug('no spawner binary: commands run as processes of their own', {
        binary: path ?? null,
        reason: causeText(e)
      })
      binary = null
    }
    return binary
  }
  // A spawner that cannot run at all (it exited answering nothing): later commands take the fallback.
  const broken = (why: string): void => {
    if (binary === null) return
    log.warn('the spawner cannot run: commands run as processes of their own', { binary, reason: why })
    binary = null
  }

  let current: Running | undefined
  let closed = false
  let nextId = 1

  // Running commands keep this process alive, and so does a spawner being closed (until its
  // 'close'); an idle spawner does not.
  const hold = (r: Running): void => {
    const on = closed || r.waiting.size > 0
    if (on) r.child.ref()
    else r.child.unref()
    for (const s of [r.child.stdin, r.child.stdout, r.child.stderr]) {
      const h = s as unknown as { ref?: () => void; unref?: () => void }
      if (on) h.ref?.()
      else h.unref?.()
    }
  }

  const settle = (r: Running, id: number, out: E.Either<CoreError, ExecOutput | typeof DECLINED>): void => {
    const w = r.waiting.get(id)
    if (w === undefined) return // answered already (the grace timer ran out first)
    r.waiting.delete(id)
    hold(r)
    w.done(out)
  }

  const outcome = (w: Waiting, a: Answer): E.Either<CoreError, ExecOutput | typeof DECLINED> => {
    if (a.declined === true) return E.right(DECLINED)
    const argv = [w.file, ...w.args]
    if (a.error !== undefined) return E.left(io(`run ${w.file}`, a.error))
    const stdout = a.stdout ?? ''
    const stderr = a.stderr ?? ''
    if (a.signal !== undefined) {
      const when = a.timedOut === true ? ` after ${w.timeoutMs} ms` : ''
      return E.left(dataplane(argv, TIMEOUT_EXIT, `${stderr}killed (${a.signal})${when}`))
    }
    return E.right({ stdout, stderr, exitCode: a.exitCode ?? 0 })
  }

  const start = (path: string): Running => {
    const served = options.netlink === undefined ? [] : ['-ip', options.netlink.ip, '-nsenter', options.netlink.nsenter]
    const child = spawn(path, ['-parent', String(process.pid), ...served], { stdio: 'pipe', detached: true })
    let resolveClosed: () => void = () => undefined
    const r: Running = {
      child,
      waiting: new Map(),
      answered: 0,
      stderrTail: '',
      ended: false,
      closed: new Promise((resolve) => (resolveClosed = resolve))
    }

    const unreadable = (line: string): void => {
      log.warn('the spawner answered something unreadable; ending it', { line: line.slice(0, 200) })
      child.kill('SIGKILL')
    }
    const onLine = (line: string): void => {
      if (line.trim() === '') return
      let parsed: unknown
      try {
        parsed = JSON.parse(line)
      } catch {
        return unreadable(line)
      }
      const a = Answer.decode(parsed)
      if (E.isLeft(a)) return unreadable(line)
      r.answered += 1
      const w = r.waiting.get(a.right.id)
      if (w !== undefined) settle(r, a.right.id, outcome(w, a.right))
    }

    // JSON escapes newlines inside strings: a raw one ends an answer. Only the new chunk is searched.
    let parts: string[] = []
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      let from = 0
      let nl: number
      while ((nl = chunk.indexOf('\n', from)) >= 0) {
        parts.push(chunk.slice(from, nl))
        const line = parts.join('')
        parts = []
        from = nl + 1
        onLine(line)
      }
      if (from < chunk.length) parts.push(chunk.slice(from))
    })
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (chunk: string) => {
      r.stderrTail = (r.stderrTail + chunk).slice(-2000)
    })
    child.stdin.on('error', () => undefined) // a dead spawner: its 'close' says what matters

    const gone = (how: string, rerun: boolean): void => {
      if (r.ended) return
      r.ended = true
      if (current === r) current = undefined
      const waiting = [...r.waiting]
      r.waiting.clear()
      const why = `the spawner ended (${how}) while it ran the command; it may have run, and is not run again${
        r.stderrTail === '' ? '' : `: ${r.stderrTail.trim()}`
      }`
      for (const [, w] of waiting) {
        // A spawner that never started ran nothing: its commands may run elsewhere. Otherwise
        // they may have run, and are not run again.
        if (rerun) void fallback(w.file, w.args, w.input)().then(w.done)
        else w.done(E.left(io(`run ${w.file}`, why)))
      }
      resolveClosed()
    }
    child.on('error', (e) => {
      // Not started (ENOENT, EACCES, ENOEXEC): nothing it was given ran.
      if (child.pid === undefined) {
        broken(e.message)
        gone(e.message, true)
      }
    })
    child.on('close', (code, signal) => {
      if (!closed && r.answered === 0 && code !== 0 && signal === null) broken(`exited ${code}: ${r.stderrTail.trim()}`)
      gone(signal ?? `exit code ${code}`, false)
    })
    hold(r)
    return r
  }

  const send = (
    r: Running,
    file: string,
    args: ReadonlyArray<string>,
    input: string | undefined,
    netlinkOnly = false
  ) =>
    new Promise<E.Either<CoreError, ExecOutput | typeof DECLINED>>((resolve) => {
      const id = nextId++
      // The spawner kills at the timeout; this only catches a spawner that stopped answering.
      const timer = setTimeout(() => {
        settle(
          r,
          id,
          E.left(dataplane([file, ...args], TIMEOUT_EXIT, `no answer from the spawner after ${timeoutMs} ms`))
        )
      }, timeoutMs + ANSWER_GRACE_MS)
      timer.unref()
      r.waiting.set(id, {
        file,
        args,
        input,
        timeoutMs,
        done: (out) => {
          clearTimeout(timer)
          resolve(out)
        }
      })
      hold(r)
      r.child.stdin.write(
        `${JSON.stringify({
          id,
          file,
          args,
          ...(input === undefined || input === '' ? {} : { input }),
          timeoutMs,
          maxBuffer,
          ...(netlinkOnly ? { netlinkOnly } : {})
        })}\n`
      )
    })

  // The running spawner, started when needed; undefined when commands must run elsewhere.
  const running = (): Running | undefined => {
    if (closed) return undefined
    const path = usable()
    if (path === null) return undefined
    if (current === undefined) {
      try {
        current = start(path)
      } catch (e) {
        // spawn throws for the errors it does not report as an event: nothing started.
        broken(causeText(e))
        return undefined
      }
    }
    return current
  }

  // Declined only comes back to netlink-only requests.
  const served = (out: E.Either<CoreError, ExecOutput | typeof DECLINED>): E.Either<CoreError, ExecOutput> =>
    E.isRight(out) && out.right === DECLINED
      ? E.left(io('spawner', 'declined a command it was to run'))
      : (out as E.Either<CoreError, ExecOutput>)

  const exec: Exec = (file, args, input) => () => {
    const r = running()
    return r === undefined ? fallback(file, args, input)() : send(r, file, args, input).then(served)
  }

  const netlinkFirst =
    (next: Exec): Exec =>
    (file, args, input) =>
    async () => {
      const r = options.netlink === undefined ? undefined : running()
      if (r === undefined) return next(file, args, input)()
      const out = await send(r, file, args, input, true)
      return E.isRight(out) && out.right === DECLINED ? next(file, args, input)() : served(out)
    }

  return {
    exec,
    netlinkFirst,
    pid: () => (current !== undefined && !current.ended ? current.child.pid : undefined),
    close: async () => {
      closed = true
      const r = current
      if (r === undefined) return
      // Its commands are answered first; this process stays alive until it has read them all.
      hold(r)
      r.child.stdin.end()
      await r.closed
    }
  }
}
