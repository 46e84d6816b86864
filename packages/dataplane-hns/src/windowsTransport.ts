/**
 * The Windows HnsTransport: HNSCall through a helper program, since Node cannot call
 * `vmcompute.dll!HNSCall` itself without a native addon. The helper takes the method and path as
 * arguments and the request JSON on stdin, and prints the HNS envelope on stdout: for example a
 * PowerShell script using `Add-Type` to P/Invoke HNSCall, or a 20-line Go program over hcsshim.
 *
 * NOT EXERCISED HERE: isthmus's tests run on Linux, where HNS does not exist; they drive the Hns
 * client through the simulator transport instead (`hnsSimulator`). This module is
 * kept small so that what it does can be read at a glance.
 */
import { execFile } from 'node:child_process'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { io } from '@isthmus/core'
import type { HnsTransport } from './client.js'

/** @category model */
export interface WindowsHnsTransportOptions {
  /** The helper and its leading arguments, e.g. `['powershell.exe', '-File', 'C:\\isthmus\\hnscall.ps1']`. */
  readonly helper: ReadonlyArray<string>
  readonly timeoutMs?: number
}

/** The helper failed; what it wrote to stderr says why better than its exit status. */
class HelperFailed extends Error {
  constructor(
    readonly cause: Error,
    readonly stderr: string
  ) {
    super(cause.message)
  }
}

// The promise edge: run the helper with `input` on stdin, resolve with its stdout.
const runHelper = (file: string, args: ReadonlyArray<string>, input: string, timeoutMs: number): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = execFile(
      file,
      [...args],
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err !== null) reject(new HelperFailed(err, stderr))
        else resolve(stdout)
      }
    )
    child.stdin?.end(input)
  })

/** @category constructors */
export const windowsHnsTransport = (o: WindowsHnsTransportOptions): HnsTransport => ({
  call: (method, path, request) => {
    const [file, ...args] = o.helper
    if (file === undefined) return TE.left(io('HNSCall', 'no helper program configured'))
    return TE.tryCatch(
      () => runHelper(file, [...args, method, path], request, o.timeoutMs ?? 60_000),
      (e) => io(`HNSCall ${method} ${path}`, e instanceof HelperFailed && e.stderr.trim() !== '' ? e.stderr.trim() : e)
    )
  }
})
