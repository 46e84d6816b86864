/**
 * Test support: temp state directories and child processes (tsx, source condition) whose stdout
 * lines are collected as they come, so a parent can wait for a line, write to stdin, kill by PID
 * and wait for the exit.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as E from 'fp-ts/lib/Either.js'
import { describe as describeError, type Store } from '@isthmus/core'
import { fileStore, type FileStoreOptions } from '../../src/index.js'

/** A fresh directory under the system temp dir. */
export const tempDir = (prefix = 'isthmus-store-'): Promise<string> => mkdtemp(join(tmpdir(), prefix))

export const removeDir = (dir: string): Promise<void> => rm(dir, { recursive: true, force: true })

/** Open a file store or fail the test. */
export const openStore = async (stateDir: string, options: FileStoreOptions = {}): Promise<Store> => {
  const r = await fileStore({ ...options, stateDir })()
  if (E.isLeft(r)) throw new Error(`fileStore failed: ${describeError(r.left)}`)
  return r.right
}

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url))

export interface Child {
  readonly pid: number
  readonly proc: ChildProcess
  /** Complete lines printed so far (a line cut by a kill is not one). */
  readonly lines: string[]
  readonly stderr: () => string
  readonly waitFor: (line: string, timeoutMs?: number) => Promise<void>
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

/** Start `child.ts <args>` under tsx with the workspace's source condition. */
export const startChild = (args: ReadonlyArray<string>): Child => {
  const proc = spawn(process.execPath, ['--import', 'tsx', '--conditions=@isthmus/source', CHILD, ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe']
  })
  if (proc.pid === undefined) throw new Error('child did not start')
  const lines: string[] = []
  let partial = ''
  let err = ''
  const waiters: Array<{ line: string; resolve: () => void }> = []
  proc.stdout.setEncoding('utf8')
  proc.stdout.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n')
    partial = parts.pop() ?? ''
    for (const line of parts) {
      lines.push(line)
      for (const w of waiters.filter((x) => x.line === line)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve()
      }
    }
  })
  proc.stderr.setEncoding('utf8')
  proc.stderr.on('data', (chunk: string) => {
    err += chunk
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('exit', (code, signal) => resolve({ code, signal }))
  })
  return {
    pid: proc.pid,
    proc,
    lines,
    stderr: () => err,
    waitFor: (line, timeoutMs = 20_000) =>
      lines.includes(line)
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(
              () =>
                reject(new Error(`child ${proc.pid} did not print "${line}" within ${timeoutMs} ms; stderr: ${err}`)),
              timeoutMs
            )
            waiters.push({
              line,
              resolve: () => {
                clearTimeout(timer)
                resolve()
              }
            })
            void exited.then(({ code, signal }) => {
              clearTimeout(timer)
              reject(new Error(`child ${proc.pid} exited (${code ?? signal}) before "${line}"; stderr: ${err}`))
            })
          }),
    exited
  }
}

/** End a child we started, by its PID, and wait until it is gone. */
export const killChild = async (child: Child, signal: NodeJS.Signals = 'SIGKILL') => {
  try {
    process.kill(child.pid, signal)
  } catch {
    // Already gone.
  }
  return child.exited
}
