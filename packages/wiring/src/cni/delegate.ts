/** The CNI frontend's Delegate port: other plugins run with `execFile`. */
import { execFile } from 'node:child_process'
import type { Cni, Delegate } from '@isthmus/cni-exec'
import { findExecutable } from './commands.js'

/** The Delegate port: `execFile` of `<dir>/<type>` from CNI_PATH, same env and stdin. @category constructors */
export const execDelegate = (baseEnv: Cni.RawEnv): Delegate => ({
  exec: (plugin, path, env, stdin) => {
    const file = findExecutable(plugin, path)
    if (file === undefined) return Promise.resolve(undefined)
    const merged: Record<string, string> = {}
    for (const [k, v] of Object.entries({ ...baseEnv, ...env })) if (v !== undefined) merged[k] = v
    return new Promise((resolve) => {
      const options = { env: merged, maxBuffer: 16 * 1024 * 1024, timeout: 60_000 }
      const child = execFile(file, [], options, (err, stdout, stderr) => {
        const exitCode = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
        resolve({ exitCode, stdout: String(stdout), stderr: String(stderr) })
      })
      child.stdin?.end(stdin)
    })
  }
})
