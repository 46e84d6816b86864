/**
 * Bench: one command started by Node (`execFileExec`: a fork of this process) against the same
 * command through the kept spawner (`spawnerExec`: a JSON line to a Go process that starts it).
 * The command is `ip -n <absent netns> link show` (an `ip` start and a quick failure). For each
 * way: per command run one after the other, the wall time, the time inside the call (before it
 * returns a promise) and the event loop's busy time (`performance.eventLoopUtilization`); then
 * 100 at once, wall and busy. Each way twice, alternating. This process is small: a daemon's
 * fork costs more (its page tables are larger), the spawner's line does not.
 *
 * Usage: node --conditions=@isthmus/source --import tsx packages/dataplane-linux/bench/spawner.bench.ts  (N=200)
 */
import { execFileSync } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { execFileExec, spawnerExec, type Exec } from '@isthmus/dataplane-linux'

const N = Number(process.env['N'] ?? 200)
const ARGS = ['-n', 'isthmus-bench-absent', 'link', 'show']

execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/build-spawner.mjs', import.meta.url))], {
  stdio: 'ignore'
})
const spawner = spawnerExec()
await spawner.exec('true', [])()

const median = (xs: ReadonlyArray<number>): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN

const measure = async (how: string, exec: Exec): Promise<void> => {
  const inCall: number[] = []
  const wall: number[] = []
  const elu0 = performance.eventLoopUtilization()
  for (let i = 0; i < N; i++) {
    const t0 = performance.now()
    const running = exec('ip', ARGS)()
    inCall.push(performance.now() - t0)
    await running
    wall.push(performance.now() - t0)
  }
  const busy = performance.eventLoopUtilization(elu0).active / N
  const t1 = performance.now()
  const elu1 = performance.eventLoopUtilization()
  await Promise.all(Array.from({ length: 100 }, () => exec('ip', ARGS)()))
  const wall100 = performance.now() - t1
  const busy100 = performance.eventLoopUtilization(elu1).active
  console.log(
    `| ${how} | ${median(wall).toFixed(2)} | ${median(inCall).toFixed(3)} | ${busy.toFixed(3)} | ${wall100.toFixed(0)} | ${busy100.toFixed(0)} |`
  )
}

try {
  console.log(`N=${N}\n`)
  console.log(
    '| way | one at a time: wall ms | in the call ms | event loop busy ms | 100 at once: wall ms | event loop busy ms |'
  )
  console.log('|---|---|---|---|---|---|')
  for (const [how, exec] of [
    ['execFileExec (Node forks)', execFileExec()],
    ['kept spawner', spawner.exec],
    ['execFileExec (Node forks)', execFileExec()],
    ['kept spawner', spawner.exec]
  ] as const) {
    await measure(how, exec)
  }
} finally {
  await spawner.close()
}
