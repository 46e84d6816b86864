/** Child processes of the tests (support/child.ts under tsx), killed by PID. */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url))

export interface Child {
  readonly proc: ChildProcess
  /** Resolves once the child printed `ready`; rejects if it exits first or takes over 20 s. */
  readonly ready: Promise<void>
  /** SIGKILL and wait for the exit. */
  readonly kill: () => Promise<void>
}

export const startChild = (args: ReadonlyArray<string>): Child => {
  const proc = spawn(process.execPath, ['--import', 'tsx', '--conditions=@isthmus/source', CHILD, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child ${args.join(' ')} not ready after 20 s: ${err}`)), 20_000)
    proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d
      if (out.split('\n').includes('ready')) {
        clearTimeout(timer)
        resolve()
      }
    })
    void exited.then(() => {
      clearTimeout(timer)
      reject(new Error(`child ${args.join(' ')} exited: ${err}`))
    })
  })
  ready.catch(() => undefined)
  return {
    proc,
    ready,
    kill: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL')
        await exited
      }
    }
  }
}
