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
  run(process.execPath, [
    '--import',
    'tsx',
    '--input-type=module',
    '-e',
    `import { winstonLogger } from '${src}'\n${code}`
  ])

describe('winstonLogger', () => {
  it('writes JSON lines to stderr and nothing to stdout, at every level', async () => {
    const { stdout, stderr } = await child(
      `const l = winstonLogger({ level: 'debug', stderr: true }); for (const k of ['error','warn','info','debug']) l.logger[k]('m-' + k, { op: 'x' }); await l.close()`
    )
    assert.equal(stdout, '')
    const lines = stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    assert.deepEqual(
      lines.map((l) => [l['level'], l['message'], l['op']]),
      [
        ['error', 'm-error', 'x'],
        ['warn', 'm-warn', 'x'],
        ['info', 'm-info', 'x'],
        ['debug', 'm-debug', 'x']
      ]
    )
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
      const lines = (await readFile(file, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
      assert.deepEqual(
        lines.map((l) => [l['message'], l['containerId']]),
        [['shown', 'c1']]
      )
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('blanks credentials in URLs in the message and in every field, nested too, whoever logs them', async () => {
    const { stdout, stderr } = await child(
      [
        `const l = winstonLogger({ level: 'debug', stderr: true })`,
        `const e = new Error('cannot reach https://ops:Err0rPw@10.0.0.9/v3')`,
        `const circular = { url: 'http://u:CircPw1@h' }; circular.self = circular`,
        `l.logger.info('contrail at http://isthmus:MsgPw-123@127.0.0.1:8082 answered', {`,
        `  api: 'http://isthmus:FieldPw-9@127.0.0.1:8082',`,
        `  nested: { deeper: [{ agent: 'http://agent:NestPw_7@[::1]:9091/port' }] },`,
        `  token: 'https://ghp_TokenOnly42@example.test/repo.git',`,
        `  at: new URL('http://me:UrlObjPw@example.test/'),`,
        `  error: e,`,
        `  circular,`,
        `  ['see http://k:KeyPw77@h']: 'a key',`,
        `  plain: 'no credentials: http://127.0.0.1:8082/fqname-to-id?x=1 and mail@example.test'`,
        `})`,
        `await l.close()`
      ].join('\n')
    )
    assert.equal(stdout, '')
    for (const secret of [
      'MsgPw-123',
      'FieldPw-9',
      'NestPw_7',
      'TokenOnly42',
      'UrlObjPw',
      'Err0rPw',
      'CircPw1',
      'KeyPw77'
    ]) {
      assert.ok(!stderr.includes(secret), `${secret} in ${stderr}`)
    }
    const line = JSON.parse(stderr) as Record<string, unknown>
    assert.equal(line['message'], 'contrail at http://isthmus:[redacted]@127.0.0.1:8082 answered')
    assert.equal(line['api'], 'http://isthmus:[redacted]@127.0.0.1:8082')
    assert.deepEqual(line['nested'], { deeper: [{ agent: 'http://agent:[redacted]@[::1]:9091/port' }] })
    assert.equal(
      line['token'],
      'https://[redacted]@example.test/repo.git',
      'userinfo without a password is blanked whole'
    )
    assert.equal(line['at'], 'http://me:[redacted]@example.test/')
    assert.deepEqual(line['error'], { name: 'Error', message: 'cannot reach https://ops:[redacted]@10.0.0.9/v3' })
    assert.deepEqual(line['circular'], { url: 'http://u:[redacted]@h', self: '[circular]' })
    assert.equal(line['see http://k:[redacted]@h'], 'a key')
    assert.equal(
      line['plain'],
      'no credentials: http://127.0.0.1:8082/fqname-to-id?x=1 and mail@example.test',
      'other text is untouched'
    )
  })

  it('writes a field nested 5,000 deep as a bounded line instead of overflowing the stack', async () => {
    const { stdout, stderr } = await child(
      `const l = winstonLogger({ level: 'debug', stderr: true }); let v = 'http://u:DeepPw99@h'; for (let i = 0; i < 5000; i++) v = [v]; l.logger.warn('deep', { v }); l.logger.info('after'); await l.close()`
    )
    assert.equal(stdout, '')
    const lines = stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    assert.deepEqual(
      lines.map((l) => l['message']),
      ['deep', 'after']
    )
    assert.ok(stderr.length < 1_000, `${stderr.length} characters`)
    assert.match(stderr, /\[nested too deep\]/)
    assert.ok(!stderr.includes('DeepPw99'))
  })
})
