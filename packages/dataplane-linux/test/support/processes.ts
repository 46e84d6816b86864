/**
 * Test support: the processes this test process started, seen from /proc, and every way Node
 * starts one, counted (shared by the dataplane's and the daemon's "no Node process start" tests).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire, syncBuiltinESMExports } from 'node:module'

/** Processes whose parent is this one, by command name. */
export const children = (): string[] =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .flatMap((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
        const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        if (Number(ppid) !== process.pid || state === 'Z') return []
        return [stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))]
      } catch {
        return []
      }
    })

/** Every way Node starts a process, counted (ESM imports of node:child_process see the wrappers). */
export const countSpawns = (): { readonly calls: string[]; readonly restore: () => void } => {
  const cp = createRequire(import.meta.url)('node:child_process') as Record<string, unknown>
  const names = ['spawn', 'execFile', 'exec', 'fork', 'spawnSync', 'execFileSync', 'execSync'] as const
  const saved = names.map((n) => [n, cp[n]] as const)
  const calls: string[] = []
  for (const [n, f] of saved) {
    cp[n] = (...args: unknown[]) => {
      calls.push(`${n} ${String(args[0])}`)
      return (f as (...a: unknown[]) => unknown)(...args)
    }
  }
  syncBuiltinESMExports()
  return {
    calls,
    restore: () => {
      for (const [n, f] of saved) cp[n] = f
      syncBuiltinESMExports()
    }
  }
}
