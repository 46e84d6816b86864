import { strict as assert } from 'node:assert'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'

const run = promisify(execFile)
const root = new URL('../../../', import.meta.url).pathname
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }

// The README promises `pnpm --silent isthmus <command>` from the repository root after set-up.
const isthmus = (...args: string[]) => run('pnpm', ['--silent', 'isthmus', ...args], { cwd: root })

describe('isthmus CLI', () => {
  it('prints its version with --version', async () => {
    const { stdout } = await isthmus('--version')
    assert.equal(stdout.trim(), pkg.version)
  })

  it('prints usage naming the program with --help', async () => {
    const { stdout } = await isthmus('--help')
    assert.match(stdout, /^isthmus <command> \[options\]/m)
    assert.match(stdout, /--version/)
  })

  it('serve refuses an iptables chain prefix iptables would not take, before touching anything', async () => {
    for (const bad of ['has-dash', 'A'.repeat(17), '']) {
      await assert.rejects(
        isthmus('serve', '--socket', '/nonexistent/x.sock', '--chain-prefix', bad),
        (e: { code: number; stderr: string }) => {
          assert.equal(e.code, 2)
          assert.match(e.stderr, /--chain-prefix: letters, digits and _, at most 16/)
          return true
        }
      )
    }
  })

  it('fails with a usage message and a non-zero exit when no command is given', async () => {
    await assert.rejects(isthmus(), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 2)
      assert.match(e.stderr, /Name a command/)
      return true
    })
  })
})
