/**
 * The Windows HnsTransport: HNSCall through a helper program, since Node cannot call
 * `vmcompute.dll!HNSCall` itself without a native addon. The helper takes the method and path as
 * arguments and the request JSON on stdin, and prints the HNS envelope on stdout: for example a
 * PowerShell script using `Add-Type` to P/Invoke HNSCall, or a 20-line Go program over hcsshim.
 *
 * NOT EXERCISED HERE: isthmus's tests run on Linux, where HNS does not exist; they drive the Hns
 * client through the simulator transport instead (contrail-hns-agent.md §4.6). This module is
 * kept small so that what it does can be read at a glance.
 */
import { execFile } from 'node:child_process'
import * as E from 'fp-ts/lib/Either.js'
import { io } from '@isthmus/core'
import type { HnsTransport } from './client.js'

/** @category model */
export interface WindowsHnsTransportOptions {
  /** The helper and its leading arguments, e.g. `['powershell.exe', '-File', 'C:\\isthmus\\hnscall.ps1']`. */
  readonly helper: ReadonlyArray<string>
  readonly timeoutMs?: number
}

/** @category constructors */
export const windowsHnsTransport = (o: WindowsHnsTransportOptions): HnsTransport => ({
  call: (method, path, request) => () =>
    new Promise((resolve) => {
      const [file, ...args] = o.helper
      if (file === undefined) {
        resolve(E.left(io('HNSCall', 'no helper program configured')))
        return
      }
      const child = execFile(file, [...args, method, path], { timeout: o.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err !== null) resolve(E.left(io(`HNSCall ${method} ${path}`, stderr.trim() || err.message)))
        else resolve(E.right(stdout))
      })
      child.stdin?.end(request)
    })
})
