/**
 * Handing calls to a running daemon: the built executable (the Node SEA) sends ADD/DEL/CHECK to
 * the hand-off socket of a daemon (here `cniHandoffServer` in this process, as `isthmus serve` runs
 * it) and prints its answer; the kernel state is the one an in-process call makes. Without a
 * daemon, or when it refuses, the executable runs the call itself; when a daemon takes the request
 * and answers nothing, it reports code 11 and does not run the call a second time.
 */
import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import type { Socket } from 'node:net'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import {
  builtinControlPlane,
  deleteNetwork,
  makeIpam,
  noopAgent,
  silentLogger,
  systemClock,
  type Env,
  type Logger,
  type NetworkId
} from '@isthmus/core'
import { linuxDataplane } from '@isthmus/dataplane-linux'
import { fileStore } from '@isthmus/store-fs'
import { daemonSocketOf } from '../src/index.js'
import { DEFAULT_DAEMON_SOCKET, type HandoffServer } from '@isthmus/handoff'
import { cniHandoffServer, linuxRuntime } from '@isthmus/wiring'
import { startPlugin, waitUntil, type PluginProcess } from '@isthmus/testkit'
import {
  addresses,
  cniEnv,
  execPlugin,
  fakeDaemon as fakeDaemonIn,
  linkNames,
  pings,
  requireRoot,
  Scope
} from './support.js'

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..')
const sea = join(root, 'packages/cni-plugin/dist/sea/isthmus')
const scope = new Scope()
const dir = scope.tmpDir('handoff')
const stateDir = scope.tmpDir('state')
const socket = join(dir, 'cni.sock')
const bridge = scope.bridge('h')
const conf = (over: Record<string, unknown> = {}) => ({
  cniVersion: '1.0.0',
  name: `hand-${scope.id}`,
  type: 'isthmus',
  bridge,
  isGateway: true,
  stateDir,
  chainPrefix: scope.chainPrefix,
  daemon: socket,
  ipam: { ranges: [[{ subnet: '10.231.40.0/24' }]] },
  ...over
})
const fakeDaemon = (path: string, behave: (c: Socket) => void) => fakeDaemonIn(scope, path, behave)
const env = (command: string, cid: string, netns: string) => cniEnv(command, { cid, netns, ifName: 'eth0' })

// The daemon's own log: one `cni` line per call it ran.
const calls: Array<Record<string, unknown>> = []
const log: Logger = {
  debug: () => undefined,
  info: (msg, fields) => {
    if (msg === 'cni') calls.push(fields ?? {})
  },
  warn: () => undefined,
  error: () => undefined
}

describe('hand-off to a running daemon', () => {
  let daemon: HandoffServer | undefined
  before(async () => {
    requireRoot()
    execFileSync(process.execPath, [join(root, 'packages/cni-plugin/scripts/build.mjs')], { stdio: 'ignore' })
    daemon = await cniHandoffServer({
      socket,
      runtime: (e, selfNames) => linuxRuntime({ env: e, selfNames, deferLinkRemoval: true }),
      log
    })
  })
  after(async () => {
    await daemon?.close()
    await scope.cleanup()
  })

  it('reads the socket from the netconf: a path, false to opt out, the default otherwise', () => {
    assert.equal(daemonSocketOf(JSON.stringify({ daemon: '/x/y.sock' })), '/x/y.sock')
    assert.equal(daemonSocketOf(JSON.stringify({ daemon: false })), undefined)
    assert.equal(daemonSocketOf(JSON.stringify({ name: 'n' })), DEFAULT_DAEMON_SOCKET)
    assert.equal(daemonSocketOf('not json'), undefined)
    assert.equal(daemonSocketOf(JSON.stringify({ daemon: 3 })), undefined)
  })

  it('ADD, CHECK and DEL run in the daemon; the sandbox is addressed and reaches its gateway; DEL leaves nothing', async () => {
    const ns = scope.addNetns('a')
    const before = calls.length
    const add = await execPlugin(sea, env('ADD', 'h1', ns.path), conf())
    assert.equal(add.exitCode, 0, add.stdout + add.stderr)
    const ips = (add.doc?.['ips'] as Array<{ address: string }> | undefined)?.map((i) => i.address)
    assert.deepEqual(ips, ['10.231.40.2/24'])
    assert.deepEqual(addresses('eth0', ns.name), ['10.231.40.2/24'])
    assert.ok(pings(ns.name, '10.231.40.1'))
    const check = await execPlugin(sea, env('CHECK', 'h1', ns.path), { ...conf(), prevResult: add.doc })
    assert.equal(check.exitCode, 0, check.stdout)
    const del = await execPlugin(sea, env('DEL', 'h1', ns.path), conf())
    assert.deepEqual([del.exitCode, del.stdout], [0, ''])
    assert.deepEqual(
      calls.slice(before).map((c) => [c['command'], c['exitCode']]),
      [
        ['ADD', 0],
        ['CHECK', 0],
        ['DEL', 0]
      ]
    )
    // Each line says where the call's time went: the ADD's kernel work, store writes, locks, the rest.
    const steps = calls[before]?.['steps'] as Record<string, number> | undefined
    assert.deepEqual(Object.keys(steps ?? {}).sort(), ['controlPlane', 'dataplane', 'envelope', 'locks', 'store'])
    const sum = Object.values(steps ?? {}).reduce((a, b) => a + b, 0)
    assert.ok(
      Object.values(steps ?? {}).every((ms) => ms >= 0) && sum <= Number(calls[before]?.['durationMs']) + 0.1,
      JSON.stringify(calls[before])
    )
    assert.ok((steps?.['dataplane'] ?? 0) > 0 && (steps?.['store'] ?? 0) > 0, JSON.stringify(steps))
    // The daemon answers DEL before the kernel has removed the pair (deferLinkRemoval): it goes soon after.
    await waitUntil(
      'the sandbox interface to go',
      () => Promise.resolve(addresses('eth0', ns.name).length === 0),
      5_000
    )
  })

  it("an error is the daemon envelope's, in the protocol form", async () => {
    const ns = scope.addNetns('e')
    const bad = await execPlugin(sea, env('ADD', 'h2', ns.path), conf({ ipam: { ranges: [] } }))
    assert.deepEqual([bad.exitCode, bad.doc?.['code'], bad.doc?.['msg']], [1, 7, 'invalid network config'])
    assert.equal(calls.at(-1)?.['exitCode'], 1)
  })

  it('with no daemon at the socket, or `daemon: false`, the executable runs the call itself', async () => {
    const ns = scope.addNetns('l')
    const before = calls.length
    const missing = conf({ daemon: join(dir, 'nobody.sock') })
    const add = await execPlugin(sea, env('ADD', 'h3', ns.path), missing)
    assert.equal(add.exitCode, 0, add.stdout)
    assert.deepEqual(addresses('eth0', ns.name), ['10.231.40.3/24'])
    const del = await execPlugin(sea, env('DEL', 'h3', ns.path), conf({ daemon: false }))
    assert.equal(del.exitCode, 0, del.stdout)
    assert.deepEqual(addresses('eth0', ns.name), [])
    assert.equal(calls.length, before, 'the daemon ran none of them')
  })

  it('a daemon that refuses the request: the call runs here', async () => {
    const path = join(dir, 'refusing.sock')
    const fake = await fakeDaemon(path, (c) => c.end(JSON.stringify({ refused: 'unsupported hand-off version 1' })))
    const ns = scope.addNetns('r')
    const add = await execPlugin(sea, env('ADD', 'h4', ns.path), conf({ daemon: path }))
    assert.equal(add.exitCode, 0, add.stdout)
    assert.equal(fake.accepted(), 1)
    assert.deepEqual(addresses('eth0', ns.name), ['10.231.40.4/24'])
    const del = await execPlugin(sea, env('DEL', 'h4', ns.path), conf({ daemon: false }))
    assert.equal(del.exitCode, 0, del.stdout)
  })

  it('a daemon that takes the request and answers nothing: code 11, and the call is not run a second time', async () => {
    const path = join(dir, 'mute.sock')
    const fake = await fakeDaemon(path, (c) => c.destroy())
    const ns = scope.addNetns('m')
    const add = await execPlugin(sea, env('ADD', 'h5', ns.path), conf({ daemon: path }))
    assert.deepEqual([add.exitCode, add.doc?.['code'], add.doc?.['cniVersion']], [1, 11, '1.0.0'])
    assert.equal(fake.accepted(), 1)
    assert.ok(!linkNames(ns.name).includes('eth0'), 'nothing was made in the sandbox')
  })

  it('20 parallel ADDs through the daemon: distinct addresses; 20 parallel DELs leave no link on the bridge', async () => {
    const nss = Array.from({ length: 20 }, (_, i) => scope.addNetns(`p${i}`))
    const adds = await Promise.all(nss.map((ns, i) => execPlugin(sea, env('ADD', `par${i}`, ns.path), conf())))
    for (const a of adds) assert.equal(a.exitCode, 0, a.stdout)
    const got = nss.map((ns) => addresses('eth0', ns.name)[0])
    assert.equal(new Set(got).size, 20, got.join(' '))
    const dels = await Promise.all(nss.map((ns, i) => execPlugin(sea, env('DEL', `par${i}`, ns.path), conf())))
    for (const d of dels) assert.equal(d.exitCode, 0, d.stdout)
    await daemon?.close()
    daemon = undefined
    const ports = JSON.parse(
      execFileSync('ip', ['-json', 'link', 'show', 'master', bridge], { encoding: 'utf8' })
    ) as unknown[]
    assert.deepEqual(ports, [], 'the daemon removed every pair before it closed')
  })
})

describe('hand-off to `isthmus serve`', () => {
  let plugin: PluginProcess | undefined
  const served = new Scope()
  before(async () => {
    requireRoot()
    plugin = await startPlugin(`isthmus-ho-${served.id}`)
  })
  after(async () => {
    // CNI never deletes a network: this one goes through the core, with its rules in the
    // daemon's chains, before the state directory does.
    if (plugin !== undefined) {
      const store = await fileStore({ stateDir: plugin.stateDir })()
      if (E.isRight(store)) {
        const ipam = makeIpam({ store: store.right, clock: systemClock })
        const env: Env = {
          store: store.right,
          dataplane: linuxDataplane({ chainPrefix: plugin.chainPrefix }),
          controlPlane: builtinControlPlane(ipam, store.right),
          agent: noopAgent,
          log: silentLogger,
          clock: systemClock
        }
        await deleteNetwork(`served-${served.id}` as NetworkId)(env)()
        await store.right.close()
      }
    }
    await plugin?.dispose()
    await served.cleanup()
  })

  it("a netconf on the daemon's state directory is served by the daemon, over its own store", async () => {
    const ns = served.addNetns('s')
    const onDaemon = {
      cniVersion: '1.0.0',
      name: `served-${served.id}`,
      type: 'isthmus',
      bridge: served.bridge('s'),
      // the daemon's state directory and chain prefix: its own store and dataplane
      stateDir: plugin!.stateDir,
      chainPrefix: plugin!.chainPrefix,
      daemon: plugin!.cniSocket,
      ipam: { ranges: [[{ subnet: '10.231.41.0/24' }]] }
    }
    const add = await execPlugin(sea, env('ADD', 's1', ns.path), onDaemon)
    assert.equal(add.exitCode, 0, add.stdout + add.stderr)
    assert.deepEqual(addresses('eth0', ns.name), ['10.231.41.2/24'])
    assert.ok(pings(ns.name, '10.231.41.1'))
    const del = await execPlugin(sea, env('DEL', 's1', ns.path), onDaemon)
    assert.deepEqual([del.exitCode, del.stdout], [0, ''])
    const lines = plugin!
      .logs()
      .split('\n')
      .filter((l) => l.includes('"message":"cni"'))
    assert.deepEqual(
      lines.map((l) => JSON.parse(l) as { command: string; exitCode: number }).map((c) => [c.command, c.exitCode]),
      [
        ['ADD', 0],
        ['DEL', 0]
      ],
      'both calls ran in the daemon'
    )
  })
})
