/**
 * The netconf's `cluster` key (docs/multi-host.md): it becomes the network option
 * `isthmus.cluster`, may leave the subnet to the cluster, is refused beside anything that would
 * hand out addresses the cluster does not know of, and a call on it is served only by a daemon:
 * with none at the netconf's socket, the executable answers code 11 naming the socket instead of
 * running the call itself.
 */
import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import { CLUSTER_OPTION } from '@isthmus/core'
import { decodeNetConf, toNetworkSpec } from '@isthmus/cni-exec'
import { cniEnv, errorDoc, execPlugin, fakeRuntime, invoke, Scope } from './support.js'

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..')
const sea = join(root, 'packages/cni-plugin/dist/sea/isthmus')
const scope = new Scope()

const conf = (over: Record<string, unknown> = {}) => ({
  cniVersion: '1.0.0',
  name: 'cnet',
  type: 'isthmus',
  cluster: 'blue',
  ...over
})

const specOf = (c: Record<string, unknown>) => {
  const nc = decodeNetConf('ADD', JSON.stringify(c))
  assert.ok(E.isRight(nc), JSON.stringify(nc))
  return toNetworkSpec(nc.right)
}

describe('netconf: cluster', () => {
  after(() => scope.cleanup())

  it('becomes the network option isthmus.cluster; without ipam.ranges the cluster gives one IPv4 subnet', () => {
    const bare = specOf(conf())
    assert.ok(E.isRight(bare))
    assert.equal(bare.right.options[CLUSTER_OPTION], 'blue')
    assert.deepEqual(bare.right.subnets, [{ family: 4 }])
    const named = specOf(conf({ ipam: { ranges: [[{ subnet: '10.231.96.0/22' }]] } }))
    assert.ok(E.isRight(named))
    assert.equal(named.right.options[CLUSTER_OPTION], 'blue')
    assert.deepEqual(
      named.right.subnets.map((s) => s.subnet),
      ['10.231.96.0/22']
    )
    const plain = specOf(conf({ cluster: undefined, ipam: { ranges: [[{ subnet: '10.231.96.0/22' }]] } }))
    assert.ok(E.isRight(plain))
    assert.equal(plain.right.options[CLUSTER_OPTION], undefined)
  })

  it('a cluster name that is not one is refused with code 7, naming the key', async () => {
    const out = await invoke(
      fakeRuntime().runtime,
      cniEnv('ADD', { cid: 'c1', netns: '/var/run/netns/x', ifName: 'eth0' }),
      conf({ cluster: 'no spaces here' })
    )
    const doc = errorDoc(out)
    assert.equal(doc.code, 7)
    assert.match(doc.details ?? doc.msg, /cluster/)
  })

  it('is refused beside a controller, another IPAM plugin or a Docker section (code 7, before anything is made)', async () => {
    const f = fakeRuntime()
    for (const [extra, named] of [
      [{ contrail: { api: 'http://127.0.0.1:1', tenant: 't', network: 'n' } }, /contrail/],
      [{ ipam: { type: 'host-local', ranges: [[{ subnet: '10.231.97.0/24' }]] } }, /another IPAM plugin/],
      [{ dockerConnect: { network: 'x' } }, /dockerConnect/],
      [{ dockerNetwork: { network: 'x' } }, /dockerNetwork/]
    ] as const) {
      const out = await invoke(
        f.runtime,
        cniEnv('ADD', { cid: 'c1', netns: '/var/run/netns/x', ifName: 'eth0' }),
        conf(extra)
      )
      const doc = errorDoc(out)
      assert.equal(doc.code, 7, JSON.stringify(doc))
      assert.match(doc.details ?? '', named)
      assert.match(doc.details ?? '', /cluster/)
    }
    assert.deepEqual(f.dataplane.probe.calls, [], 'nothing reached the dataplane')
  })

  it('served by isthmus without a cluster store (not `serve --cluster`): code 7, saying so', async () => {
    const f = fakeRuntime()
    const out = await invoke(
      f.runtime,
      cniEnv('ADD', { cid: 'c1', netns: '/var/run/netns/x', ifName: 'eth0' }),
      conf({ ipam: { ranges: [[{ subnet: '10.231.98.0/24' }]] } })
    )
    const doc = errorDoc(out)
    assert.equal(doc.code, 7, JSON.stringify(doc))
    assert.match(doc.details ?? '', /cluster network blue.*without a cluster store/)
  })

  describe('the executable', () => {
    before(() => {
      execFileSync(process.execPath, [join(root, 'packages/cni-plugin/scripts/build.mjs')], { stdio: 'ignore' })
    })

    it('with no daemon at the socket: code 11 naming the socket and the cluster network; nothing run here', async () => {
      const socket = join(scope.tmpDir('nodaemon'), 'cni.sock')
      const stateDir = scope.tmpDir('state')
      for (const command of ['ADD', 'DEL', 'CHECK']) {
        const out = await execPlugin(
          sea,
          cniEnv(command, { cid: `cl-${scope.id}`, netns: '/var/run/netns/none', ifName: 'eth0' }),
          conf({ daemon: socket, stateDir })
        )
        const doc = errorDoc(out)
        assert.equal(doc.code, 11, JSON.stringify(doc))
        assert.ok((doc.details ?? '').includes(socket), doc.details)
        assert.match(doc.details ?? '', /cluster network blue/)
        assert.match(doc.details ?? '', /isthmus serve --cluster/)
      }
      assert.deepEqual(execFileSync('ls', ['-A', stateDir], { encoding: 'utf8' }), '', 'no state was made here')
    })
  })
})
