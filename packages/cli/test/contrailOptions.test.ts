import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import { parseCredentialsFile } from '@isthmus/contrail'
import { contrailSettings, type ContrailArgs } from '@isthmus/wiring'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const root = new URL('../../../', import.meta.url).pathname
const serveHelp = async (): Promise<string> =>
  (
    await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--conditions=@isthmus/source', 'packages/cli/src/bin/isthmus.ts', 'serve', '--help'],
      { cwd: root }
    )
  ).stdout

const args = (over: Partial<ContrailArgs> = {}): ContrailArgs => ({
  contrailApi: 'http://127.0.0.1:8082',
  keystoneVersion: 'v3',
  vrouterAgent: 'http://127.0.0.1:9091',
  contrailOwner: 'host-1',
  ...over
})

describe('serve: Contrail settings', () => {
  it('no --contrail-api: no Contrail', () => {
    assert.deepEqual(contrailSettings(args({ contrailApi: undefined }), {}), E.right(undefined))
  })

  it('no --keystone-url: no authentication', () => {
    const s = contrailSettings(args(), {})
    assert.ok(E.isRight(s))
    assert.deepEqual(s.right?.auth, { kind: 'none' })
  })

  it('keystone credentials from the OS_* variables, which win over the file', () => {
    const file = 'export OS_USERNAME=fileuser\nexport OS_PASSWORD="file pass"\n# comment\nOS_TENANT_NAME=admin\n'
    const s = contrailSettings(
      args({ keystoneUrl: 'http://127.0.0.1:5000/v3', contrailCredentialsFile: '/x/openrc' }),
      { OS_USERNAME: 'envuser', OS_USER_DOMAIN_NAME: 'Default' },
      () => file
    )
    assert.ok(E.isRight(s))
    assert.deepEqual(s.right?.auth, {
      kind: 'keystone',
      url: 'http://127.0.0.1:5000/v3',
      version: 'v3',
      username: 'envuser',
      password: 'file pass',
      project: 'admin',
      userDomain: 'Default'
    })
  })

  it('missing credentials are named, and no value read is repeated', () => {
    const s = contrailSettings(args({ keystoneUrl: 'http://127.0.0.1:5000/v2.0', keystoneVersion: 'v2' }), {
      OS_PASSWORD: 'hunter2-secret'
    })
    assert.deepEqual(
      s,
      E.left('--keystone-url needs OS_USERNAME, OS_PROJECT_NAME in the environment or in --contrail-credentials-file')
    )
  })

  it('an unreadable credentials file is one sentence', () => {
    const s = contrailSettings(args({ keystoneUrl: 'http://k/v3', contrailCredentialsFile: '/nope' }), {}, () => {
      throw Object.assign(new Error('x'), { code: 'ENOENT' })
    })
    assert.deepEqual(s, E.left('cannot read --contrail-credentials-file /nope: ENOENT'))
  })

  it('parses openrc lines', () => {
    assert.deepEqual(parseCredentialsFile("export OS_A='x y'\nOS_B=z\nnot a line\n"), { OS_A: 'x y', OS_B: 'z' })
  })

  it('serve has the Contrail flags and no password flag', async () => {
    const help = await serveHelp()
    for (const f of [
      '--contrail-api',
      '--keystone-url',
      '--keystone-version',
      '--contrail-credentials-file',
      '--vrouter-agent',
      '--contrail-owner'
    ]) {
      assert.ok(help.includes(f), f)
    }
    assert.ok(!/password/i.test(help.replace(/(OS|ISTHMUS_ETCD)_PASSWORD/g, '')), 'no password on argv')
  })
})
