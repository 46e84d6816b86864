import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import {
  describe as describeError,
  ensureNetwork,
  io,
  transient,
  type CoreError,
  type IfName,
  type NetworkId,
  type PoolId,
  type Subnet
} from '@isthmus/core'
import { testEnv, type TestEnv } from '@isthmus/core/testing'
import { left, NET, NET2, right, spec, storedNetwork, subnet } from './fixtures.js'

const assertNothingLeft = async (t: TestEnv): Promise<void> => {
  assert.equal(await storedNetwork(t, NET), undefined, 'network record left')
  assert.deepEqual(t.dataplane.state.networks(), [], 'dataplane network left')
  assert.deepEqual(
    t.dataplane.state.devices().filter((d) => d.createdByUs),
    [],
    'device left'
  )
  assert.deepEqual(t.controlPlane.state.networks(), [], 'control plane still holds the network')
}

describe('ensureNetwork', () => {
  it('one that waited out the lock while another process made the network takes that network; with none, the lock error', async () => {
    const t = testEnv()
    const made = await right(t.run(ensureNetwork(spec())))
    await right(t.env.store.networks.delete(NET)())
    // The lock times out (Transient), and meanwhile the other process stored the network...
    const busy = (storedMeanwhile: boolean) => ({
      ...t.env,
      store: {
        ...t.env.store,
        withLock: () => async () => {
          if (storedMeanwhile) await t.env.store.networks.put(made)()
          return E.left(transient('lock "network:net1" is held by another process'))
        }
      }
    })
    assert.deepEqual(await ensureNetwork(spec())(busy(true))(), E.right(made))
    await right(t.env.store.networks.delete(NET)())
    const failed = await ensureNetwork(spec())(busy(false))()
    assert.ok(E.isLeft(failed) && failed.left._tag === 'Transient', JSON.stringify(failed))
  })

  it('creates the network in the control plane, on the host and in the store', async () => {
    const t = testEnv({ now: new Date('2024-05-06T07:08:09.000Z') })
    const n = await right(t.run(ensureNetwork(spec({ mtu: 1400 }))))
    assert.deepEqual(n, {
      id: NET,
      name: 'net1',
      addressSpace: 'isthmus-local',
      ipv4: [{ subnet: '10.1.0.0/24', gateway: '10.1.0.1', poolId: 'fake/isthmus-local/10.1.0.0/24' }],
      ipv6: [],
      internal: false,
      ipMasquerade: true,
      options: {},
      createdAt: '2024-05-06T07:08:09.000Z',
      mtu: 1400,
      bridge: 'br-net1'
    })
    assert.deepEqual(await storedNetwork(t, NET), n)
    assert.deepEqual(t.dataplane.state.networks(), [{ networkId: NET, device: 'br-net1' }])
    assert.deepEqual(t.controlPlane.state.networks(), [NET])
  })

  it('uses the bridge the spec names', async () => {
    const t = testEnv()
    const n = await right(t.run(ensureNetwork(spec({ bridge: 'cni0' as IfName }))))
    assert.equal(n.bridge, 'cni0')
    assert.deepEqual(t.dataplane.state.networks(), [{ networkId: NET, device: 'cni0' }])
  })

  it('returns the stored network on a second call without touching any port or lock', async () => {
    const t = testEnv()
    const first = await right(t.run(ensureNetwork(spec())))
    const before = t.journal.calls.length
    t.clock.state.advance(60_000)
    const second = await right(t.run(ensureNetwork(spec())))
    assert.deepEqual(second, first)
    assert.deepEqual(
      t.journal.calls.slice(before).map((c) => `${c.port}.${c.method}`),
      ['store.networks.get']
    )
  })

  it('accepts a spec whose subnet the control plane picked, by counting subnets per family', async () => {
    const t = testEnv()
    const first = await right(t.run(ensureNetwork(spec({ subnets: [{ family: 4 }] }))))
    assert.deepEqual(await right(t.run(ensureNetwork(spec({ subnets: [{ family: 4 }] })))), first)
    const e = await left(t.run(ensureNetwork(spec({ subnets: [{ family: 4 }, { family: 6 }] }))))
    assert.equal(e._tag, 'AlreadyExists')
  })

  it('refuses a stored network with other subnets, saying which', async () => {
    const t = testEnv()
    await right(t.run(ensureNetwork(spec())))
    const e = await left(t.run(ensureNetwork(spec({ subnets: [{ family: 4, subnet: '10.2.0.0/24' as Subnet }] }))))
    assert.deepEqual(e, {
      _tag: 'AlreadyExists',
      kind: 'network',
      id: NET,
      detail: 'exists with subnets 10.1.0.0/24; asked for 10.2.0.0/24'
    })
  })

  it('creates the network once when many callers race (parallel CNI ADDs)', async () => {
    const t = testEnv()
    const all = await Promise.all([1, 2, 3, 4, 5].map(() => right(t.run(ensureNetwork(spec())))))
    assert.equal(t.controlPlane.probe.callsOf('ensureNetwork').length, 1)
    assert.equal(t.dataplane.probe.callsOf('ensureNetwork').length, 1)
    for (const n of all) assert.deepEqual(n, all[0])
  })

  describe('rolls back every finished step when a step fails, and returns that step’s error', () => {
    const steps: ReadonlyArray<{ readonly port: 'store' | 'controlPlane' | 'dataplane'; readonly method: string }> = [
      { port: 'store', method: 'networks.get' },
      { port: 'controlPlane', method: 'ensureNetwork' },
      { port: 'dataplane', method: 'ensureNetwork' },
      { port: 'store', method: 'networks.put' }
    ]
    for (const step of steps) {
      it(`${step.port}.${step.method}`, async () => {
        const t = testEnv()
        const injected: CoreError = io(`${step.port}.${step.method}`, 'boom')
        t[step.port].probe.failAt({ method: step.method, nth: 1, error: injected })
        const e = await left(t.run(ensureNetwork(spec())))
        assert.deepEqual(e, injected)
        assert.equal(t[step.port].probe.callsOf(step.method).length, 1, 'the step was reached')
        await assertNothingLeft(t)
        assert.deepEqual(t.log.state.at('warn'), [])
      })
    }
  })

  it('keeps a device that was there before when rolling back', async () => {
    const t = testEnv()
    t.dataplane.state.addDevice('opbr0')
    t.store.probe.failAt({ method: 'networks.put' })
    await left(t.run(ensureNetwork(spec({ bridge: 'opbr0' as IfName }))))
    assert.equal(t.dataplane.probe.callsOf('deleteNetwork').length, 0)
    assert.deepEqual(t.dataplane.state.devices(), [{ name: 'opbr0', createdByUs: false }])
    assert.deepEqual(t.controlPlane.state.networks(), [])
  })

  it('logs an undo that fails, still runs the others, and returns the original error', async () => {
    const t = testEnv()
    const original = io('store.networks.put', 'disk full')
    t.store.probe.failAt({ method: 'networks.put', error: original })
    t.dataplane.probe.failAt({ method: 'deleteNetwork', error: io('ip link del', 'busy') })
    const e = await left(t.run(ensureNetwork(spec())))
    assert.deepEqual(e, original)
    assert.deepEqual(t.controlPlane.state.networks(), [], 'the control plane was still undone')
    const warns = t.log.state.at('warn')
    assert.equal(warns.length, 1)
    assert.equal(warns[0]?.fields['step'], 'host')
    assert.equal(warns[0]?.fields['failedStep'], 'stored')
    assert.match(String(warns[0]?.fields['error']), /busy/)
  })

  describe('one bridge, one network', () => {
    const other = (over = {}) =>
      spec({ id: NET2, name: 'net2', subnets: [subnet('10.2.0.0/24')], bridge: 'br0' as IfName, ...over })

    it('refuses a bridge another stored network holds, in one sentence naming both, before any port is asked', async () => {
      const t = testEnv()
      await right(t.run(ensureNetwork(spec({ bridge: 'br0' as IfName }))))
      const before = t.journal.calls.filter((c) => c.port !== 'store').length
      const e = await left(t.run(ensureNetwork(other())))
      assert.equal(e._tag, 'InvalidConfig')
      assert.equal(
        describeError(e),
        'invalid configuration: bridge br0 is already the bridge of network net1 (net1); name another bridge or remove that network first'
      )
      assert.equal(
        t.journal.calls.filter((c) => c.port !== 'store').length,
        before,
        'no control plane or dataplane call'
      )
      assert.equal(await storedNetwork(t, NET2), undefined)
      // The same network asked again is still answered, and another bridge name is fine.
      await right(t.run(ensureNetwork(spec({ bridge: 'br0' as IfName }))))
      await right(t.run(ensureNetwork(other({ bridge: 'br1' as IfName }))))
    })

    it('of creations naming one bridge at the same time, exactly one wins', async () => {
      const t = testEnv()
      const ids = ['n1', 'n2', 'n3', 'n4'] as NetworkId[]
      const outcomes = await Promise.all(
        ids.map((id, i) =>
          t.run(ensureNetwork(spec({ id, name: id, subnets: [subnet(`10.${i + 1}.0.0/24`)], bridge: 'br0' as IfName })))
        )
      )
      assert.equal(outcomes.filter((o) => o._tag === 'Right').length, 1)
      assert.equal(t.dataplane.probe.callsOf('ensureNetwork').length, 1)
      assert.equal(t.dataplane.state.networks().length, 1)
    })

    it('once the holder is removed, the name is free again', async () => {
      const t = testEnv()
      await right(t.run(ensureNetwork(spec({ bridge: 'br0' as IfName }))))
      await right(t.env.store.networks.delete(NET)())
      await right(t.run(ensureNetwork(other())))
    })

    it('a network with exactly the holder’s pools shares its bridge (Docker on a CNI network: one segment, two records), and the dataplane is told whose mark stays', async () => {
      const t = testEnv()
      const pooled = (id: NetworkId) =>
        spec({
          id,
          name: id,
          bridge: 'br0' as IfName,
          subnets: [{ ...subnet('10.1.0.0/24'), poolId: 'fake/isthmus-local/10.1.0.0/24' as PoolId }]
        })
      await right(t.run(ensureNetwork(spec({ bridge: 'br0' as IfName }))))
      await right(t.run(ensureNetwork(pooled('docker1' as NetworkId))))
      assert.deepEqual(
        t.dataplane.probe.callsOf('ensureNetwork').map((c) => c.args[1]),
        [[], [NET]]
      )
      // Another subnet on that bridge is still refused.
      assert.equal((await left(t.run(ensureNetwork(other()))))._tag, 'InvalidConfig')
    })

    it('a dataplane whose devices are not the networks’ routers (VNIC bridges) lets networks share one', async () => {
      const t = testEnv()
      const env = { ...t.env, dataplane: { ...t.env.dataplane, routesSubnetsOnHost: false } }
      await right(ensureNetwork(spec({ bridge: 'br0' as IfName }))(env)())
      await right(ensureNetwork(other())(env)())
    })
  })
})
