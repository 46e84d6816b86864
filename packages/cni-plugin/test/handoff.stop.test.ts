/**
 * Stopping `isthmus serve` (testkit's daemon, the real one) while clients sit on its CNI hand-off
 * socket: idle connections and half-sent requests do not keep it from stopping on SIGTERM, and a
 * call in flight (here an ADD held at its endpoint lock, which this test takes first) still gets
 * its answer before the daemon exits 0.
 */
import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { attachmentEndpointId, type ContainerId, type IfName, type NetworkId } from '@isthmus/core'
import { fileStore } from '@isthmus/store-fs'
import { startPlugin, waitUntil, type PluginProcess } from '@isthmus/testkit'
import { addresses, cniEnv, execPlugin, linkNames, requireRoot, Scope } from './support.js'

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..')
const sea = join(root, 'packages/cni-plugin/dist/sea/isthmus')
const scope = new Scope()
const stateDir = scope.tmpDir('state')
const NAME = `stop-${scope.id}`
const conf = (daemon: string | false) => ({
  cniVersion: '1.0.0',
  name: NAME,
  type: 'isthmus',
  bridge: scope.bridge('s'),
  stateDir,
  chainPrefix: scope.chainPrefix,
  daemon,
  ipam: { ranges: [[{ subnet: '10.231.45.0/24' }]] }
})

const connected = (socket: string, send?: string): Promise<Socket> =>
  new Promise((res, rej) => {
    const c = connect(socket)
    c.on('connect', () => {
      if (send !== undefined) c.write(send)
      res(c)
    })
    c.on('error', rej)
  })

describe('SIGTERM with clients on the hand-off socket', () => {
  let plugin: PluginProcess | undefined
  const held: Socket[] = []
  before(async () => {
    requireRoot()
    execFileSync(process.execPath, [join(root, 'packages/cni-plugin/scripts/build.mjs')], { stdio: 'ignore' })
  })
  after(async () => {
    for (const c of held) c.destroy()
    await plugin?.dispose()
    await scope.cleanup()
  })

  it('idle clients only: the daemon exits 0 within a few seconds', async () => {
    plugin = await startPlugin(`isthmus-st-${scope.id}`)
    for (let i = 0; i < 5; i++) held.push(await connected(plugin.cniSocket))
    held.push(await connected(plugin.cniSocket, '{"v":2,"env":{"CNI_COMMAND":'))
    const started = Date.now()
    await plugin.kill('SIGTERM')
    const took = Date.now() - started
    assert.deepEqual(plugin.exit(), { code: 0, signal: null }, plugin.logs().slice(-2000))
    // Under the 5 s request timeout: close() ended them, they did not time out.
    assert.ok(took < 3_000, `stopped in ${took} ms`)
  })

  it('a call in flight at SIGTERM still answers (success), then the daemon exits 0', async () => {
    await plugin!.start()
    const ns = scope.addNetns('f')
    for (let i = 0; i < 3; i++) held.push(await connected(plugin!.cniSocket))
    // Hold the attachment's endpoint lock, as a concurrent plugin process would: the handed-off
    // ADD makes the network, then waits for it.
    const store = await fileStore({ stateDir })()
    assert.ok(E.isRight(store))
    const id = attachmentEndpointId(NAME, 'f1' as ContainerId, 'eth0' as IfName)
    let release: () => void = () => undefined
    let locked: () => void = () => undefined
    const isLocked = new Promise<void>((r) => (locked = r))
    const holding = store.right.withLock(
      `endpoint:${id}`,
      TE.fromTask(() => {
        locked()
        return new Promise<void>((r) => (release = r))
      }),
      'host'
    )()
    await isLocked
    const add = execPlugin(sea, cniEnv('ADD', { cid: 'f1', netns: ns.path, ifName: 'eth0' }), conf(plugin!.cniSocket))
    await waitUntil(
      'the handed-off ADD to make its network',
      async () => {
        const n = await store.right.networks.get(NAME as NetworkId)()
        return E.isRight(n) && O.isSome(n.right)
      },
      15_000,
      20
    )
    const sigterm = Date.now()
    const stopping = plugin!.kill('SIGTERM')
    setTimeout(release, 1_000)
    const answer = await add
    await stopping
    await holding
    await store.right.close()
    assert.equal(answer.exitCode, 0, answer.stdout + answer.stderr)
    assert.deepEqual(addresses('eth0', ns.name), ['10.231.45.2/24'])
    assert.deepEqual(plugin!.exit(), { code: 0, signal: null }, plugin!.logs().slice(-2000))
    assert.ok(Date.now() - sigterm < 5_000, `stopped ${Date.now() - sigterm} ms after SIGTERM`)
    // The attachment is the plugin's to remove like any other, without a daemon.
    const del = await execPlugin(sea, cniEnv('DEL', { cid: 'f1', netns: ns.path, ifName: 'eth0' }), conf(false))
    assert.deepEqual([del.exitCode, del.stdout], [0, ''])
    assert.deepEqual(linkNames(ns.name), ['lo'])
  })
})
