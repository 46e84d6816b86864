import { strict as assert } from 'node:assert'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'

const run = promisify(execFile)
const src = new URL('../src/index.ts', import.meta.url).pathname

// A child process, so stdout and stderr are the real file descriptors winston writes to.
const child = (code: string) =>
  run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { winstonLogger } from '${src}'\n${code}`])

describe('winstonLogger', () => {
  it('writes JSON lines to stderr and nothing to stdout, at every level', async () => {
    const { stdout, stderr } = await child(
      `const l = winstonLogger({ level: 'debug', stderr: true }); for (const k of ['error','warn','info','debug']) l.logger[k]('m-' + k, { op: 'x' }); await l.close()`
    )
    assert.equal(stdout, '')
    const lines = stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    assert.deepEqual(lines.map((l) => [l['level'], l['message'], l['op']]), [
      ['error', 'm-error', 'x'],
      ['warn', 'm-warn', 'x'],
      ['info', 'm-info', 'x'],
      ['debug', 'm-debug', 'x']
    ])
    assert.ok(lines.every((l) => typeof l['ts'] === 'string' && !('timestamp' in l)))
  })

  it('appends to a file, honours the level, and has flushed when close resolves', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'isthmus-log-'))
    try {
      const file = join(dir, 'cni.log')
      const { stdout, stderr } = await child(
        `const l = winstonLogger({ level: 'info', stderr: false, file: ${JSON.stringify(file)} }); l.logger.debug('hidden'); l.logger.info('shown', { containerId: 'c1' }); await l.close()`
      )
      assert.equal(stdout + stderr, '')
      const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
      assert.deepEqual(lines.map((l) => [l['message'], l['containerId']]), [['shown', 'c1']])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
