/**
 * The Windows HnsTransport: HNSCall (`vmcompute.dll`, HNS v1's one entry point) through the
 * PowerShell helper shipped in this package, `src/windows/hnscall.ps1`, since Node cannot call a
 * DLL without a native addon. The helper takes the method and path as arguments and the request
 * JSON on stdin, P/Invokes HNSCall (`Add-Type`), and prints the HNS envelope on stdout.
 *
 * NOT EXERCISED HERE: isthmus's tests run on Linux, where HNS does not exist; they drive the
 * dataplane through `httpHnsTransport` and the simulator server. The tests check only that the
 * script ships and the command line this module builds. One PowerShell start per call costs
 * hundreds of milliseconds; a long-lived helper would be the next step if that matters.
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { io } from '@isthmus/core'
import type { HnsMethod, HnsTransport } from './client.js'

/** The helper shipped with this package (from `dist/` and from `src/` alike). @category constants */
export const HNSCALL_SCRIPT: string = fileURLToPath(new URL('../src/windows/hnscall.ps1', import.meta.url))

/** @category model */
export interface WindowsHnsTransportOptions {
  /**
   * The helper and its leading arguments, to which the method and path are appended. Default:
   * Windows PowerShell running the shipped `hnscall.ps1` (`hnsCallHelper()`).
   */
  readonly helper?: ReadonlyArray<string>
  readonly timeoutMs?: number
}

/**
 * The default helper: `powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File <script>`.
 * Windows PowerShell 5.1 ships with every Windows Server that has HNS; `pwsh` works as well.
 *
 * @category utils
 */
export const hnsCallHelper = (script: string = HNSCALL_SCRIPT, shell = 'powershell.exe'): ReadonlyArray<string> => [
  shell,
  '-NoProfile',
  '-NonInteractive',
  '-ExecutionPolicy',
  'Bypass',
  '-File',
  script
]

/** The full command line of one call: the helper, then the method and path. @category utils */
export const hnsCallCommand = (
  method: HnsMethod,
  path: string,
  helper: ReadonlyArray<string> = hnsCallHelper()
): ReadonlyArray<string> => [...helper, method, path]

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
export const windowsHnsTransport = (o: WindowsHnsTransportOptions = {}): HnsTransport => ({
  call: (method, path, request) => {
    const helper = o.helper ?? hnsCallHelper()
    if (helper.length === 0) return TE.left(io('HNSCall', 'no helper program configured'))
    const [file, ...args] = hnsCallCommand(method, path, helper) as [string, ...string[]]
    return TE.tryCatch(
      () => runHelper(file, args, request, o.timeoutMs ?? 60_000),
      (e) => io(`HNSCall ${method} ${path}`, e instanceof HelperFailed && e.stderr.trim() !== '' ? e.stderr.trim() : e)
    )
  }
})
