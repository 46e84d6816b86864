/**
 * CNI and isthmus's sweeping, on the real kernel: a bridge name is one network's (a second
 * netconf naming it is refused), and the daemon's sweep at start (`isthmus serve`, core gc) runs
 * safely while ADDs of the built executable run in their own processes on its state directory:
 * it removes a stray link, and none of theirs.
 */
import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import {
  attachmentEndpointId,
  builtinControlPlane,
  createEndpoint,
  deleteEndpoint,
  deleteNetwork,
  hostIfName,
  makeIpam,
  noopAgent,
  silentLogger,
  systemClock,
  type ContainerId,
  type Env,
  type IfName,
  type NetworkId
} from '@isthmus/core'
import { linuxDataplane } from '@isthmus/dataplane-linux'
import { fileStore } from '@isthmus/store-fs'
import { startPlugin, type PluginProcess } from '@isthmus/testkit'
import { addresses, cniEnv, execPlugin, invoke, realRuntime, requireRoot, Scope, sh } from './support.js'

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..')
const sea = join(root, 'packages/cni-plugin/dist/sea/isthmus')
const scope = new Scope()

const ports = (bridge: string): Array<{ ifname: string; ifalias?: string }> => {
  try {
    return JSON.parse(sh('ip', ['-json', 'link', 'show', 'master', bridge])) as Array<{
      ifname: string
      ifalias?: string
    }>
  } catch {
    return []
  }
}

describe('CNI: one bridge, one network (real kernel)', () => {
  const stateDir = scope.tmpDir('bridge')
  const bridge = scope.bridge('o')
  const conf = (name: string, subnet: string) => ({
    cniVersion: '1.0.0',
    name,
    type: 'isthmus',
    bridge,
    stateDir,
    chainPrefix: scope.chainPrefix,
    daemon: false,
    ipam: { ranges: [[{ subnet }]] }
  })
  before(requireRoot)
  after(() => scope.cleanup())

  it('a second netconf naming a bridge another network holds is refused in one sentence (code 7); the first keeps working', async () => {
    const runtime = realRuntime()
    const [a, b] = [scope.addNetns('a'), scope.addNetns('b')]
    const first = conf(`one-${scope.id}`, '10.231.50.0/24')
    const add = await invoke(runtime, cniEnv('ADD', { cid: 'one', netns: a.path, ifName: 'eth0' }), first)
    assert.equal(add.exitCode, 0, add.stdout)
    const clash = await invoke(
      runtime,
      cniEnv('ADD', { cid: 'two', netns: b.path, ifName: 'eth0' }),
      conf(`two-${scope.id}`, '10.231.51.0/24')
    )
    assert.equal(clash.exitCode, 1)
    assert.equal(clash.doc?.['code'], 7)
    assert.equal(clash.doc?.['msg'], 'invalid network config')
    assert.equal(
      clash.doc?.['details'],
      `invalid configuration: bridge ${bridge} is already the bridge of network one-${scope.id} (one-${scope.id}); name another bridge or remove that network first`
    )
    assert.deepEqual(addresses('eth0', b.name), [], 'nothing made in the second sandbox')
    assert.equal(ports(bridge).length, 1)
    assert.deepEqual(
      (
        JSON.parse(sh('ip', ['-json', '-details', 'addr', 'show', 'dev', bridge])) as Array<{
          addr_info: Array<{ local: string }>
        }>
      )[0]?.addr_info
        .map((x) => x.local)
        .filter((x) => x.startsWith('10.')),
      ['10.231.50.1'],
      'no second gateway on the bridge'
    )
    assert.equal(
      (await invoke(runtime, cniEnv('DEL', { cid: 'one', netns: a.path, ifName: 'eth0' }), first)).exitCode,
      0
    )
  })
})

describe('the daemon sweeps at start while CNI ADDs run in other processes (real daemon, built executable)', () => {
  let plugin: PluginProcess | undefined
  const run = new Scope()
  const bridge = run.bridge('w')
  const name = `sweep-${run.id}`
  const conf = () => ({
    cniVersion: '1.0.0',
    name,
    type: 'isthmus',
    bridge,
    stateDir: plugin!.stateDir,
    chainPrefix: plugin!.chainPrefix,
    // Each ADD in its own process, as without a daemon: the daemon only sweeps.
    daemon: false,
    ipam: { ranges: [[{ subnet: '10.231.52.0/24' }]] }
  })
  before(async () => {
    requireRoot()
    execFileSync(process.execPath, [join(root, 'packages/cni-plugin/scripts/build.mjs')], { stdio: 'ignore' })
    plugin = await startPlugin(`isthmus-sw-${run.id}`)
  })
  after(async () => {
    if (plugin !== undefined) {
      await plugin.kill()
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
        for (const e of await store.right.endpoints
          .list()()
          .then((r) => (E.isRight(r) ? r.right : []))) {
          await deleteEndpoint(e.id)(env)()
        }
        await deleteNetwork(name as NetworkId)(env)()
        await store.right.close()
      }
      await plugin.dispose()
    }
    await run.cleanup()
  })

  it('an ADD between its link and its record holds the sweep back; its link and lease stay, a stray link naming a gone endpoint goes', async () => {
    const first = run.addNetns('first')
    assert.equal(
      (await execPlugin(sea, cniEnv('ADD', { cid: 'first', netns: first.path, ifName: 'eth0' }), conf())).exitCode,
      0
    )
    // A link a crashed ADD left, naming its endpoint.
    const stray = `istv${run.id}00000`
    run.finally(() => void sh('ip', ['link', 'del', stray]))
    sh('ip', ['link', 'add', stray, 'master', bridge, 'type', 'veth', 'peer', 'name', `istc${run.id}00000`])
    sh('ip', ['link', 'set', 'dev', stray, 'alias', 'isthmus:endpoint:gone'])
    await plugin!.kill('SIGKILL')

    // An ADD in this process (its own store and dataplane on the daemon's state directory), held
    // between its link and its record: exactly where a sweep would take its link for a stray.
    const opened = await fileStore({ stateDir: plugin!.stateDir })()
    assert.ok(E.isRight(opened))
    const store = opened.right
    let open!: () => void
    const gate = new Promise<void>((r) => (open = r))
    const dp = linuxDataplane({ chainPrefix: plugin!.chainPrefix })
    const ipam = makeIpam({ store, clock: systemClock })
    const env: Env = {
      store,
      dataplane: {
        ...dp,
        ensureEndpoint: (spec, placement) =>
          pipe(
            dp.ensureEndpoint(spec, placement),
            TE.chainFirst(() => TE.fromTask(() => gate))
          )
      },
      controlPlane: builtinControlPlane(ipam, store),
      agent: noopAgent,
      log: silentLogger,
      clock: systemClock
    }
    const held = attachmentEndpointId(name, 'held' as ContainerId, 'eth0' as IfName)
    const adding = createEndpoint(name as NetworkId, {
      id: held,
      owner: { kind: 'container', containerId: 'held' as ContainerId, ifName: 'eth0' as IfName },
      addresses: [{ _tag: 'Any', family: 4 }]
    })(env)()
    const link = hostIfName(held)
    while (!readdirSync('/sys/class/net').includes(link)) await new Promise((r) => setTimeout(r, 10))

    // The daemon starts meanwhile, with other ADDs running in their own processes.
    const said = (message: string) =>
      plugin!
        .logs()
        .split('\n')
        .filter((l) => l.includes(`"message":"${message}"`)).length
    const [sweeps, servings] = [said('sweeping what an earlier run left'), said('serving')]
    const restarting = plugin!.start()
    const others = Array.from({ length: 4 }, (_, i) => ({ cid: `o${i}`, ns: run.addNetns(`o${i}`) }))
    const adds = others.map((o) =>
      execPlugin(sea, cniEnv('ADD', { cid: o.cid, netns: o.ns.path, ifName: 'eth0' }), conf())
    )
    while (said('sweeping what an earlier run left') === sweeps) await new Promise((r) => setTimeout(r, 50))
    await new Promise((r) => setTimeout(r, 1_500))
    assert.equal(said('serving'), servings, 'its sweep waits for the ADD in flight')
    assert.ok(readdirSync('/sys/class/net').includes(link), 'the link of the ADD in flight is still there')
    open()
    assert.ok(E.isRight(await adding))
    await restarting
    for (const o of await Promise.all(adds)) assert.equal(o.exitCode, 0, o.stdout)

    assert.ok(readdirSync('/sys/class/net').includes(link), 'kept: its record exists now')
    assert.ok(!readdirSync('/sys/class/net').includes(stray), 'the stray link was swept')
    const stored = await store.networks.get(name as NetworkId)()
    assert.ok(E.isRight(stored) && stored.right._tag === 'Some')
    const leases = await store.leases.list(stored.right.value.addressSpace)()
    assert.ok(
      E.isRight(leases) && leases.right.some((l) => l.owner.kind === 'endpoint' && l.owner.id === held),
      'its lease kept'
    )
    assert.equal(
      ports(bridge).length,
      2 + others.length,
      ports(bridge)
        .map((p) => p.ifname)
        .join(' ')
    )
    await store.close()
    for (const o of [...others, { cid: 'first', ns: first }]) {
      assert.equal(
        (await execPlugin(sea, cniEnv('DEL', { cid: o.cid, netns: o.ns.path, ifName: 'eth0' }), conf())).exitCode,
        0
      )
    }
  })
})
