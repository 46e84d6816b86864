/**
 * The cluster flags of `isthmus serve` and `isthmus hosts`: settings built from them (defaults,
 * the etcd password from ISTHMUS_ETCD_PASSWORD only), and every bad flag refused with a sentence
 * naming it, before anything is touched; `isthmus hosts` against an etcd that does not answer
 * fails within its deadline, saying which cluster and why.
 */
import { strict as assert } from 'node:assert'
import { execFile } from 'node:child_process'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import * as E from 'fp-ts/lib/Either.js'
import { freePort } from '@isthmus/testkit'
import { clusterSettings, type ClusterArgs } from '@isthmus/wiring'

const root = new URL('../../../', import.meta.url).pathname
const isthmus = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env) =>
  promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', '--conditions=@isthmus/source', 'packages/cli/src/bin/isthmus.ts', ...args],
    { cwd: root, env }
  ).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr })
  )

const base: ClusterArgs = {
  cluster: 'prod',
  etcdEndpoints: 'http://10.0.0.5:2379, http://10.0.0.6:2379',
  underlayIp: '10.0.0.11',
  hostName: 'node-1'
}

describe('cluster flags', () => {
  it('make the settings, with their defaults; no --cluster is one host', () => {
    assert.deepEqual(
      clusterSettings(base, {}),
      E.right({
        name: 'prod',
        host: 'node-1',
        underlay: '10.0.0.11',
        blockPrefix: 26,
        ttlSeconds: 15,
        underlayMtu: 1500,
        etcd: { endpoints: ['http://10.0.0.5:2379', 'http://10.0.0.6:2379'], deadlineMs: 2000 }
      })
    )
    assert.deepEqual(clusterSettings({}, {}), E.right(undefined))
  })

  it('take the etcd password from ISTHMUS_ETCD_PASSWORD, and TLS files', () => {
    const s = clusterSettings(
      {
        ...base,
        etcdUser: 'isthmus',
        etcdCa: '/etc/ca.pem',
        etcdCert: '/etc/c.pem',
        etcdKey: '/etc/k.pem',
        etcdDeadline: 800
      },
      { ISTHMUS_ETCD_PASSWORD: 's3cret' }
    )
    assert.ok(E.isRight(s) && s.right !== undefined)
    assert.deepEqual(s.right.etcd, {
      endpoints: ['http://10.0.0.5:2379', 'http://10.0.0.6:2379'],
      deadlineMs: 800,
      caFile: '/etc/ca.pem',
      certFile: '/etc/c.pem',
      keyFile: '/etc/k.pem',
      username: 'isthmus',
      password: 's3cret'
    })
  })

  it('refuse what is missing, malformed or given without --cluster, naming the flag', () => {
    const refused = (a: ClusterArgs, env: Record<string, string> = {}): string => {
      const s = clusterSettings(a, env)
      assert.ok(E.isLeft(s), JSON.stringify(s))
      return s.left
    }
    assert.match(refused({ etcdEndpoints: 'http://x:1' }), /^--etcd-endpoints: only with --cluster/)
    assert.match(refused({ underlayIp: '1.2.3.4', blockSize: 24 }), /--underlay-ip, --block-size: only with --cluster/)
    assert.match(refused({ cluster: 'c' }), /--cluster needs --etcd-endpoints/)
    assert.match(refused({ ...base, underlayIp: undefined }), /--cluster needs --underlay-ip/)
    assert.match(refused({ ...base, underlayIp: '10.0.0' }), /^--underlay-ip: expected an IP address, got "10.0.0"/)
    assert.match(refused({ ...base, cluster: 'a b' }), /^--cluster: expected a cluster name/)
    assert.match(refused({ ...base, hostName: 'no/slash' }), /^--host-name: expected a host name/)
    assert.match(refused({ ...base, etcdEndpoints: 'http://ok:1,ftp://x' }), /^--etcd-endpoints: URL 2: expected/)
    assert.match(refused({ ...base, blockSize: 31 }), /^--block-size: expected a whole number from 8 to 30, got 31/)
    assert.match(refused({ ...base, leaseTtl: 1 }), /^--lease-ttl: expected a whole number from 2 to 3600/)
    assert.match(refused({ ...base, etcdDeadline: 5 }), /^--etcd-deadline: expected a whole number from 100/)
    assert.match(refused({ ...base, etcdCert: '/c.pem' }), /--etcd-cert and --etcd-key go together/)
    assert.match(refused({ ...base, etcdCa: 'ca.pem' }), /^--etcd-ca: expected an absolute path/)
    assert.match(refused({ ...base, etcdUser: 'u' }), /--etcd-user needs the password in .*ISTHMUS_ETCD_PASSWORD/)
  })

  it('never show a password given in an endpoint URL', () => {
    const s = clusterSettings({ ...base, etcdEndpoints: 'http://root:hunter2@10.0.0.5:2379' }, {})
    assert.ok(E.isLeft(s))
    assert.ok(!s.left.includes('hunter2'), s.left)
    assert.match(s.left, /no user or password/)
  })

  it('serve refuses a bad cluster flag and --store etcd without a cluster, before touching anything', async () => {
    for (const [args, said] of [
      [['--etcd-endpoints', 'http://127.0.0.1:1'], /--etcd-endpoints: only with --cluster/],
      [['--store', 'etcd'], /--store etcd: only with --cluster/],
      [
        ['--cluster', 'c', '--etcd-endpoints', 'http://127.0.0.1:1', '--underlay-ip', 'x'],
        /--underlay-ip: expected an IP address/
      ]
    ] as const) {
      const r = await isthmus(['serve', '--socket', '/nonexistent/x.sock', ...args])
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, said)
    }
    const help = await isthmus(['serve', '--help'])
    for (const flag of [
      '--cluster',
      '--etcd-endpoints',
      '--etcd-ca',
      '--etcd-user',
      '--underlay-ip',
      '--block-size',
      '--store'
    ]) {
      assert.ok(help.stdout.includes(flag), `serve --help shows ${flag}`)
    }
  })

  it('hosts: without --cluster it says what to give; an etcd that does not answer fails within the deadline', async () => {
    const none = await isthmus(['hosts'])
    assert.equal(none.code, 2)
    assert.match(none.stderr, /--cluster <name> --etcd-endpoints/)
    const port = await freePort()
    const t0 = Date.now()
    const r = await isthmus([
      'hosts',
      '--cluster',
      'c1',
      '--etcd-endpoints',
      `http://127.0.0.1:${port}`,
      '--etcd-deadline',
      '500'
    ])
    const ms = Date.now() - t0
    assert.equal(r.code, 1, r.stdout)
    assert.match(
      r.stderr,
      /try again: the cluster store \(etcd at http:\/\/127\.0\.0\.1:\d+\) did not answer within 0\.5 s/
    )
    assert.ok(ms < 10_000, `answered in ${ms} ms`)
  })
})
