/**
 * `isthmus leases`, `networks` and `quarantine` with `--store etcd`, against a real etcd on
 * loopback: a host's records written through wiring's `openStore` (the `etcd` kind) show in the
 * three commands; a value written raw into etcd is quarantined, listed, and dropped; the flags
 * that do not go together are refused naming the flag; with etcd stopped the commands fail in one
 * line within the deadline.
 */
import { strict as assert } from 'node:assert'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import * as E from 'fp-ts/lib/Either.js'
import type { EndpointId, Store } from '@isthmus/core'
import { expectRight, sampleEndpoint, sampleLease, sampleNetwork, samplePool } from '@isthmus/core/testing'
import { openStore } from '@isthmus/wiring'
import { mustRun, run, startEtcd, uniquePrefix, type TestEtcd } from '@isthmus/testkit'
import { leases } from '../src/commands/leases.js'
import { networks } from '../src/commands/networks.js'
import { quarantineDrop, quarantineList } from '../src/commands/quarantine.js'
import type { Output } from '../src/commands/leases.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const BIN = join(root, 'packages/cli/src/bin/isthmus.ts')
const isthmus = (...args: string[]) =>
  run([process.execPath, '--import', 'tsx', '--conditions=@isthmus/source', BIN, ...args])

/** A handler's output, kept. */
const captured = () => {
  let out = ''
  let err = ''
  const o: Output = { out: (t) => (out += t), err: (t) => (err += t) }
  return { o, out: () => out, err: () => err }
}

const CLUSTER = uniquePrefix('inspect')
const HOST = 'h1'
const POOL = 'isthmus-local/10.1.0.0/24'
const EP = 'ep-inspect-1'

describe('inspection commands with --store etcd', () => {
  let etcd: TestEtcd
  let store: Store
  let flags: { cluster: string; etcdEndpoints: string; hostName: string; store: string; stateDir: string }

  before(async () => {
    etcd = await startEtcd()
    flags = { cluster: CLUSTER, etcdEndpoints: etcd.endpoint, hostName: HOST, store: 'etcd', stateDir: '/nonexistent' }
    const opened = await openStore({
      kind: 'etcd',
      etcd: { connection: { endpoints: [etcd.endpoint], deadlineMs: 2000 }, cluster: CLUSTER, host: HOST }
    })()
    if (E.isLeft(opened)) throw new Error(`cannot open the etcd store: ${JSON.stringify(opened.left)}`)
    store = opened.right
    await expectRight(store.pools.put(samplePool(POOL, 2)))
    await expectRight(store.networks.put({ ...sampleNetwork('net-1'), name: 'blue' }))
    await expectRight(store.endpoints.put(sampleEndpoint(EP)))
    await expectRight(
      store.leases.reserve(sampleLease('isthmus-local', '10.1.0.3', { kind: 'endpoint', id: EP as EndpointId }, POOL))
    )
    await expectRight(
      store.leases.reserve(sampleLease('isthmus-local', '10.1.0.9', { kind: 'aux', name: 'dns' }, POOL))
    )
  })

  after(async () => {
    await store?.close()
    await etcd?.stop()
  })

  it('networks shows the network and its pool usage', async () => {
    const c = captured()
    assert.equal(await networks({ ...flags, json: false }, c.o), 0, c.err())
    assert.match(c.out(), /^blue\s+net-1\s+10\.1\.0\.0\/24,fd00:1::\/64\s+10\.1\.0\.1/m)
    assert.match(c.out(), /isthmus-local\/10\.1\.0\.0\/24 2\/\d+/)
  })

  it('leases shows the attachment and the other held address', async () => {
    const c = captured()
    assert.equal(await leases({ ...flags, json: false }, c.o), 0, c.err())
    assert.match(c.out(), /^blue\s+cni ctr1\/eth0\s+10\.1\.0\.3\/24/m)
    assert.match(c.out(), /^blue\s+aux\s+10\.1\.0\.9\s+auxiliary address dns/m)
  })

  it('the built command line reads the same store (flags as the shell passes them)', async () => {
    const r = await isthmus(
      'leases',
      '--store',
      'etcd',
      '--cluster',
      CLUSTER,
      '--etcd-endpoints',
      etcd.endpoint,
      '--host-name',
      HOST,
      '--json'
    )
    assert.equal(r.code, 0, r.stderr)
    const doc = JSON.parse(r.stdout) as { attachments: ReadonlyArray<{ addresses: ReadonlyArray<{ cidr: string }> }> }
    assert.deepEqual(
      doc.attachments.map((x) => x.addresses.map((y) => y.cidr)),
      [['10.1.0.3/24']]
    )
    // Another host's records are its own: nothing of h1's shows under h2.
    const other = await isthmus(
      'networks',
      '--store',
      'etcd',
      '--cluster',
      CLUSTER,
      '--etcd-endpoints',
      etcd.endpoint,
      '--host-name',
      'h2'
    )
    assert.equal(other.code, 0, other.stderr)
    assert.doesNotMatch(other.stdout, /blue/)
  })

  it('a value written raw into etcd is quarantined, listed, and dropped', async () => {
    const key = `/isthmus/${CLUSTER}/hosts/${HOST}/networks/net-bad`
    await mustRun(['etcdctl', `--endpoints=${etcd.endpoint}`, 'put', key, '{"schema":1,"kind":"network","data":{'], {
      env: { ...process.env, ETCDCTL_API: '3' }
    })
    // Reading the networks finds it unreadable and moves it aside; the good one still shows.
    const n = captured()
    assert.equal(await networks({ ...flags, json: false }, n.o), 0, n.err())
    assert.match(n.out(), /^blue\s/m)

    const l = captured()
    assert.equal(await quarantineList({ ...flags, json: true }, l.o), 0, l.err())
    const { records } = JSON.parse(l.out()) as { records: ReadonlyArray<{ id: string; object: string }> }
    assert.equal(records.length, 1)
    assert.equal(records[0]!.object, 'network net-bad')
    const id = records[0]!.id

    const d = captured()
    assert.equal(await quarantineDrop({ ...flags, ids: [id] }, d.o), 0, d.err())
    assert.equal(d.out(), `dropped ${id}\n`)
    const again = captured()
    assert.equal(await quarantineList({ ...flags, json: false }, again.o), 0, again.err())
    assert.equal(again.out(), 'Nothing is quarantined.\n')
    const left = await mustRun(['etcdctl', `--endpoints=${etcd.endpoint}`, 'get', '--prefix', '--keys-only', key], {
      env: { ...process.env, ETCDCTL_API: '3' }
    })
    assert.equal(left.stdout.trim(), '', 'the raw key is gone')
  })

  it('refuses flags that do not go together, naming the flag', async () => {
    const cases: ReadonlyArray<[ReadonlyArray<string>, RegExp]> = [
      [
        ['--cluster', 'c1', '--etcd-endpoints', 'http://127.0.0.1:1'],
        /^isthmus: --cluster, --etcd-endpoints: only with --store etcd$/
      ],
      [['--host-name', 'h1'], /^isthmus: --host-name: only with --store etcd$/],
      [['--store', 'etcd'], /^isthmus: --store etcd needs --cluster <name> --etcd-endpoints URL\[,URL\]$/],
      [['--store', 'etcd', '--cluster', 'c1'], /^isthmus: --cluster needs --etcd-endpoints URL\[,URL\]$/],
      [
        ['--store', 'etcd', '--cluster', 'c1', '--etcd-endpoints', 'http://127.0.0.1:1', '--etcd-user', 'root'],
        /^isthmus: --etcd-user needs the password in the environment variable ISTHMUS_ETCD_PASSWORD$/
      ]
    ]
    for (const [args, message] of cases) {
      const r = await isthmus('networks', ...args)
      // a usage error: exit code 2, the sentence, then where to read the usage
      assert.equal(r.code, 2, args.join(' '))
      const [sentence, ...rest] = r.stderr.trim().split('\n')
      assert.match(sentence ?? '', message)
      assert.deepEqual(rest, ['See isthmus --help (or isthmus <command> --help).'])
    }
  })

  it('with etcd stopped, each command fails in one line naming etcd, within the deadline', async () => {
    await store.close()
    await etcd.kill()
    const down = { ...flags, etcdDeadline: 500 }
    for (const [name, call] of [
      ['networks', (o: Output) => networks({ ...down, json: false }, o)],
      ['leases', (o: Output) => leases({ ...down, json: false }, o)],
      ['quarantine', (o: Output) => quarantineList({ ...down, json: false }, o)],
      ['quarantine drop', (o: Output) => quarantineDrop({ ...down, ids: ['network-20260101T000000Z-0123456789ab'] }, o)]
    ] as const) {
      const c = captured()
      const t0 = Date.now()
      assert.equal(await call(c.o), 1, name)
      const took = Date.now() - t0
      assert.ok(took < 1500, `${name} took ${took} ms with a 500 ms deadline`)
      assert.equal(c.out(), '', name)
      assert.match(c.err(), new RegExp(`^isthmus: .*etcd at ${etcd.endpoint.replace(/[.]/g, '\\.')}.*\\n$`), name)
      assert.equal(c.err().split('\n').length, 2, `${name}: one line`)
    }
  })
})
