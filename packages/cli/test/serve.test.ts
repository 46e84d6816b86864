/**
 * `isthmus serve`'s own robustness: the process-level handler that keeps a bug (an exception or a
 * rejection nothing handled) from killing the daemon, checked in a real child process; and the
 * socket-limit flags refused before anything is touched.
 */
import { strict as assert } from 'node:assert'
import { execFile } from 'node:child_process'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'

const run = promisify(execFile)
const root = new URL('../../../', import.meta.url).pathname

describe('isthmus serve: bugs and limits', () => {
  it('logs an unhandled rejection and an uncaught exception as bugs, with their stacks, and keeps running', async () => {
    const script = `
      import { keepServingOnBugs } from './packages/cli/src/commands/serve.ts'
      const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n')
      keepServingOnBugs({ debug() {}, info() {}, warn() {}, error: (message, fields) => out({ message, ...fields }) })
      Promise.reject(new Error('nobody handles this rejection'))
      setTimeout(() => { throw new RangeError('thrown from a timer') }, 20)
      setTimeout(() => out({ message: 'still running' }), 300)
    `
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', '--conditions=@isthmus/source', '--input-type=module', '-e', script],
      { cwd: root }
    )
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { message: string; origin?: string; stack?: string })
    assert.deepEqual(
      lines.map((l) => [l.message, l.origin]),
      [
        ['bug: a promise rejected and nothing handled it; serving on', 'unhandledRejection'],
        ['bug: an exception reached the top; serving on', 'uncaughtException'],
        ['still running', undefined]
      ]
    )
    assert.match(lines[0]!.stack ?? '', /^Error: nobody handles this rejection\n\s+at /)
    assert.match(lines[1]!.stack ?? '', /^RangeError: thrown from a timer\n\s+at /)
  })

  it('refuses socket limits that are not positive numbers, before touching anything', async () => {
    for (const [flag, value] of [
      ['--max-connections', '0'],
      ['--idle-timeout', '-1'],
      ['--request-timeout', 'soon']
    ] as const) {
      await assert.rejects(
        run('pnpm', ['--silent', 'isthmus', 'serve', '--socket', '/nonexistent/x.sock', flag, value], { cwd: root }),
        (e: { code: number; stderr: string }) => {
          assert.equal(e.code, 2)
          assert.match(e.stderr, new RegExp(`${flag}: a number of at least`))
          return true
        }
      )
    }
  })
})
