/**
 * `isthmus serve --dataplane hns`: the combinations that make no sense are refused before
 * anything is touched, exit code 2 and one sentence naming the flag (and the variable or file a
 * value came from); wiring's `dataplaneRefusal` decides.
 */
import { strict as assert } from 'node:assert'
import { execFile } from 'node:child_process'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import { dataplaneRefusal, defaultDataplane } from '@isthmus/wiring'

const run = promisify(execFile)
const root = new URL('../../../', import.meta.url).pathname
const isthmus = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}) =>
  run('pnpm', ['--silent', 'isthmus', ...args], { cwd: root, env: { ...process.env, ...env } })

const refused = async (
  args: ReadonlyArray<string>,
  sentence: RegExp,
  env: Readonly<Record<string, string>> = {}
): Promise<void> =>
  assert.rejects(
    isthmus(['serve', '--socket', '/nonexistent/x.sock', ...args], env),
    (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 2, e.stderr)
      assert.match(e.stderr, sentence)
      return true
    }
  )

describe('isthmus serve --dataplane', () => {
  it('refuses HNS without Contrail, without a way to reach HNS off Windows, and --hns-url without HNS', async () => {
    const api = ['--contrail-api', 'http://127.0.0.1:1']
    await refused(
      ['--dataplane', 'hns', '--hns-url', 'http://127.0.0.1:1'],
      /--dataplane hns: only with --contrail-api/
    )
    await refused(
      ['--dataplane', 'hns', ...api],
      /--dataplane hns: HNS itself is only on Windows; elsewhere give --hns-url/
    )
    await refused(['--hns-url', 'http://127.0.0.1:1'], /--hns-url: only with --dataplane hns/)
    await refused(
      ['--dataplane', 'hns', '--hns-url', 'ftp://x', ...api],
      /--hns-url: http:\/\/host:port or an absolute unix socket path/
    )
    await refused(['--dataplane', 'bridge'], /Argument: dataplane, Given: "bridge", Choices: "linux", "hns"/)
  })

  it('takes the dataplane from ISTHMUS_DATAPLANE and names it when refusing', async () => {
    await refused([], /--dataplane hns: only with --contrail-api .*\(from ISTHMUS_DATAPLANE\)/, {
      ISTHMUS_DATAPLANE: 'hns',
      ISTHMUS_HNS_URL: 'http://127.0.0.1:1'
    })
  })

  it('decides: HNS by default on Windows only, never with a cluster, and a unix socket path is an HNS URL', () => {
    assert.equal(defaultDataplane('win32'), 'hns')
    assert.equal(defaultDataplane('linux'), 'linux')
    const hns = { dataplane: 'hns', contrailApi: 'http://c:8082' } as const
    assert.equal(dataplaneRefusal({ ...hns, platform: 'win32' }), undefined, 'HNSCall on Windows')
    assert.equal(dataplaneRefusal({ ...hns, hnsUrl: '/run/hns.sock', platform: 'linux' }), undefined)
    assert.equal(dataplaneRefusal({ ...hns, hnsUrl: 'http://127.0.0.1:5000', platform: 'linux' }), undefined)
    assert.match(dataplaneRefusal({ ...hns, cluster: 'c1', platform: 'win32' }) ?? '', /not with --cluster/)
    assert.equal(dataplaneRefusal({ dataplane: 'linux', platform: 'linux' }), undefined)
  })
})
