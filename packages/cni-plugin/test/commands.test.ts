/**
 * The commands over core's fakes (memory store, fake dataplane) with the real built-in IPAM:
 * result shapes per version, prevResult, capabilities and CNI_ARGS, DEL/GC semantics, isthmus as
 * an IPAM plugin, IPAM delegation, and the result converters (fast-check round trips).
 */
import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import fc from 'fast-check'
import { attachmentEndpointId, type ContainerId, type IfName, type SandboxKey } from '@isthmus/core'
import { fakeDataplane } from '@isthmus/core/testing'
import { Cni } from '@isthmus/cni-exec'
import { cniEnv, fakeRuntime, invoke, withDataplane, type FakeRuntime } from './support.js'

// One namespace per container, as a runtime gives: c1's is NETNS.
const nsOf = (cid: string): string => `/var/run/netns/fake-${cid}`
const NETNS = nsOf('c1')
const conf = (over: Record<string, unknown> = {}) => ({
  cniVersion: '1.0.0',
  name: 'fnet',
  type: 'isthmus',
  bridge: 'fbr0',
  ipam: {
    ranges: [[{ subnet: '10.231.200.0/24' }], [{ subnet: 'fd00:231:200::/64' }]],
    routes: [{ dst: '10.231.0.0/16' }]
  },
  dns: { nameservers: ['10.231.200.1'], search: ['example.test'] },
  ...over
})
const add = (
  f: FakeRuntime,
  cid: string,
  c: unknown = conf(),
  extra: { args?: string; ifName?: string; netns?: string } = {}
) =>
  invoke(
    f.runtime,
    cniEnv('ADD', {
      cid,
      netns: extra.netns ?? nsOf(cid),
      ifName: extra.ifName ?? 'eth0',
      ...(extra.args === undefined ? {} : { args: extra.args })
    }),
    c
  )
const del = (f: FakeRuntime, cid: string, c: unknown = conf(), ifName = 'eth0') =>
  invoke(f.runtime, cniEnv('DEL', { cid, netns: nsOf(cid), ifName }), c)
const leases = async (f: FakeRuntime): Promise<string[]> => {
  const r = await f.store.leases.list('isthmus-local' as never)()
  assert.ok(E.isRight(r))
  return r.right
    .filter((l) => l.owner.kind === 'endpoint')
    .map((l) => l.address)
    .sort()
}

describe('ADD result (fake dataplane)', () => {
  it('1.0.0: bridge, host veth, sandbox interface with MAC; ips with interface 2 and gateway; routes via the gateway; dns', async () => {
    const f = fakeRuntime()
    const out = await add(f, 'c1')
    assert.equal(out.exitCode, 0, out.stdout)
    const r = out.doc as Cni.Result100
    assert.equal(r.cniVersion, '1.0.0')
    const id = attachmentEndpointId('fnet', 'c1' as ContainerId, 'eth0' as IfName)
    const eth0 = f.dataplane.state.linkIn(NETNS as never, 'eth0' as IfName)
    assert.deepEqual(
      r.interfaces?.map((i) => i.name),
      ['fbr0', f.dataplane.state.linksOf(id).find((l) => l.side === 'host')?.name, 'eth0']
    )
    assert.deepEqual(r.interfaces?.[2], { name: 'eth0', mac: eth0?.mac, sandbox: NETNS })
    assert.deepEqual(r.ips, [
      { address: '10.231.200.2/24', gateway: '10.231.200.1', interface: 2 },
      { address: 'fd00:231:200::2/64', gateway: 'fd00:231:200::1', interface: 2 }
    ])
    assert.deepEqual(r.routes, [{ dst: '10.231.0.0/16', gw: '10.231.200.1' }])
    assert.deepEqual(r.dns, { nameservers: ['10.231.200.1'], search: ['example.test'] })
    assert.deepEqual(await leases(f), ['10.231.200.2', 'fd00:231:200::2'])
  })

  for (const v of ['0.3.0', '0.3.1', '0.4.0'] as const) {
    it(`${v}: the same result with ips[].version`, async () => {
      const out = await add(fakeRuntime(), 'c1', conf({ cniVersion: v }))
      const r = out.doc as Cni.Result040
      assert.equal(r.cniVersion, v)
      assert.deepEqual(
        r.ips?.map((i) => i.version),
        ['4', '6']
      )
      assert.ok(E.isRight(Cni.Result040.decode(r)))
    })
  }

  it('1.1.0 answers in 1.1.0; no ipam.routes means a default route per family', async () => {
    const out = await add(
      fakeRuntime(),
      'c1',
      conf({ cniVersion: '1.1.0', ipam: { ranges: [[{ subnet: '10.231.200.0/24' }]] } })
    )
    assert.equal(out.doc?.['cniVersion'], '1.1.0')
    assert.deepEqual(out.doc?.['routes'], [{ dst: '0.0.0.0/0', gw: '10.231.200.1' }])
  })

  it('isDefaultGateway adds the default route to the given routes; rangeStart/rangeEnd/gateway are honoured', async () => {
    const c = conf({
      isDefaultGateway: true,
      ipam: {
        ranges: [
          [
            {
              subnet: '10.231.200.0/24',
              rangeStart: '10.231.200.50',
              rangeEnd: '10.231.200.51',
              gateway: '10.231.200.254'
            }
          ]
        ],
        routes: [{ dst: '10.231.0.0/16' }]
      }
    })
    const f = fakeRuntime()
    const r = (await add(f, 'c1', c)).doc as Cni.Result100
    assert.deepEqual(r.ips, [{ address: '10.231.200.50/24', gateway: '10.231.200.254', interface: 2 }])
    assert.deepEqual(r.routes, [
      { dst: '10.231.0.0/16', gw: '10.231.200.254' },
      { dst: '0.0.0.0/0', gw: '10.231.200.254' }
    ])
    assert.equal(((await add(f, 'c2', c)).doc as Cni.Result100).ips?.[0]?.address, '10.231.200.51/24')
    const full = (await add(f, 'c3', c)).doc
    assert.deepEqual([full?.['code'], full?.['msg']], [100, 'no IP addresses available'])
  })

  it('prevResult: its interfaces, ips and routes first, ours appended with shifted indices', async () => {
    const prevResult = {
      cniVersion: '0.4.0',
      interfaces: [{ name: 'lo', mac: '00:00:00:00:00:00', sandbox: NETNS }],
      ips: [{ version: '4', interface: 0, address: '127.0.0.1/8' }],
      routes: [{ dst: '192.0.2.0/24' }],
      dns: { nameservers: ['192.0.2.53'] }
    }
    const r = (await add(fakeRuntime(), 'c1', conf({ cniVersion: '0.4.0', prevResult, dns: undefined })))
      .doc as Cni.Result040
    assert.deepEqual(
      r.interfaces?.map((i) => i.name).filter((n) => n === 'lo' || n === 'eth0' || n === 'fbr0'),
      ['lo', 'fbr0', 'eth0']
    )
    assert.deepEqual(
      r.ips?.map((i) => [i.address, i.interface, i.version]),
      [
        ['127.0.0.1/8', 0, '4'],
        ['10.231.200.2/24', 3, '4'],
        ['fd00:231:200::2/64', 3, '6']
      ]
    )
    assert.equal(r.routes?.[0]?.dst, '192.0.2.0/24')
    assert.deepEqual(r.dns, { nameservers: ['192.0.2.53'] }, 'no dns of ours: prevResult keeps its own')
  })

  it('a prevResult in an unsupported version is code 1', async () => {
    const o = (await add(fakeRuntime(), 'c1', conf({ prevResult: { cniVersion: '0.2.0', ip4: {} } }))).doc
    assert.equal(o?.['code'], 1)
  })
})

describe('capabilities and CNI_ARGS (fake dataplane)', () => {
  it('runtimeConfig.ips and mac win over args.cni and CNI_ARGS; CNI_ARGS alone works', async () => {
    const f = fakeRuntime()
    const both = conf({
      runtimeConfig: { ips: ['10.231.200.77/24'], mac: 'C2:11:22:33:44:55' },
      args: { cni: { ips: ['10.231.200.78'], mac: '02:00:00:00:00:78' } }
    })
    const r = (
      await add(f, 'c1', both, {
        args: 'IgnoreUnknown=1;IP=10.231.200.79;MAC=02:00:00:00:00:79;K8S_POD_NAME=p;K8S_POD_NAMESPACE=ns'
      })
    ).doc as Cni.Result100
    assert.equal(r.ips?.[0]?.address, '10.231.200.77/24')
    assert.equal(r.interfaces?.[2]?.mac, 'c2:11:22:33:44:55')
    const a = (await add(f, 'c2', conf({ args: { cni: { ips: ['10.231.200.78'] } } }), { args: 'IP=10.231.200.79' }))
      .doc as Cni.Result100
    assert.equal(a.ips?.[0]?.address, '10.231.200.78/24')
    const c = (await add(f, 'c3', conf(), { args: 'IP=10.231.200.79,fd00:231:200::79;MAC=02:00:00:00:00:79' }))
      .doc as Cni.Result100
    assert.deepEqual(
      c.ips?.map((i) => i.address),
      ['10.231.200.79/24', 'fd00:231:200::79/64']
    )
    assert.equal(c.interfaces?.[2]?.mac, '02:00:00:00:00:79')
    const taken = (await add(f, 'c4', conf(), { args: 'IP=10.231.200.79' })).doc
    assert.deepEqual([taken?.['code'], taken?.['msg']], [103, 'requested address is in use'])
    const outside = (await add(f, 'c5', conf(), { args: 'IP=192.0.2.9' })).doc
    assert.equal(outside?.['code'], 7)
  })

  it('runtimeConfig.portMappings are published for the endpoint and withdrawn at DEL', async () => {
    const f = fakeRuntime()
    const pm = [
      { hostPort: 18080, containerPort: 80, protocol: 'tcp' },
      { hostPort: 18053, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' }
    ]
    assert.equal((await add(f, 'c1', conf({ runtimeConfig: { portMappings: pm } }))).exitCode, 0)
    const id = attachmentEndpointId('fnet', 'c1' as ContainerId, 'eth0' as IfName)
    assert.deepEqual(f.dataplane.state.published(id), [
      { protocol: 'tcp', containerPort: 80, hostPort: 18080 },
      { protocol: 'udp', containerPort: 53, hostPort: 18053, hostIp: '127.0.0.1' }
    ])
    assert.equal((await del(f, 'c1')).exitCode, 0)
    assert.deepEqual(f.dataplane.state.published(id), [])
  })
})

describe('ADD/DEL/GC semantics (fake dataplane)', () => {
  it('a second ADD of the same attachment fails (code 7) and leaves the first intact', async () => {
    const f = fakeRuntime()
    const first = (await add(f, 'c1')).doc
    const again = await add(f, 'c1')
    assert.deepEqual([again.exitCode, again.doc?.['code'], again.doc?.['msg']], [1, 7, 'endpoint already exists'])
    assert.deepEqual(await leases(f), ['10.231.200.2', 'fd00:231:200::2'])
    assert.ok(f.dataplane.state.linkIn(NETNS as never, 'eth0' as IfName) !== undefined)
    assert.ok(first !== undefined)
  })

  it('a failing ADD leaves no link, lease or record behind', async () => {
    const f = fakeRuntime()
    // This dataplane knows no namespace but another one: placing the sandbox end fails (code 8).
    const dp = fakeDataplane({ sandboxes: ['/var/run/netns/other' as SandboxKey] })
    const failed = await invoke(
      withDataplane(f, dp.port),
      cniEnv('ADD', { cid: 'c9', netns: nsOf('c9'), ifName: 'eth0' }),
      conf()
    )
    assert.deepEqual([failed.exitCode, failed.doc?.['code']], [1, 8])
    assert.deepEqual(dp.state.links(), [], 'no link left')
    assert.deepEqual(await leases(f), [], 'no lease left')
    const eps = await f.store.endpoints.list()()
    assert.ok(E.isRight(eps) && eps.right.length === 0, 'no endpoint record left')
  })

  it('DEL: releases the addresses; succeeds again, for unknown attachments, with an empty CNI_NETNS', async () => {
    const f = fakeRuntime()
    await add(f, 'c1')
    const d1 = await del(f, 'c1')
    assert.deepEqual([d1.exitCode, d1.stdout], [0, ''])
    assert.deepEqual(await leases(f), [])
    assert.equal((await del(f, 'c1')).exitCode, 0)
    assert.equal((await del(f, 'never-added')).exitCode, 0)
    assert.equal((await invoke(f.runtime, cniEnv('DEL', { cid: 'c1', netns: '', ifName: 'eth0' }), conf())).exitCode, 0)
    assert.deepEqual(f.dataplane.state.links(), [])
  })

  it('GC removes every attachment not listed; an absent list removes none', async () => {
    const f = fakeRuntime()
    for (const c of ['g1', 'g2', 'g3']) assert.equal((await add(f, c)).exitCode, 0)
    const gcConf = (list: unknown) => ({
      ...conf({ cniVersion: '1.1.0' }),
      ...(list === undefined ? {} : { 'cni.dev/valid-attachments': list })
    })
    assert.equal((await invoke(f.runtime, cniEnv('GC'), gcConf(undefined))).exitCode, 0)
    assert.equal((await leases(f)).length, 6)
    const out = await invoke(
      f.runtime,
      cniEnv('GC'),
      gcConf([
        { containerID: 'g2', ifname: 'eth0' },
        { containerID: 'bad/id', ifname: 'eth0' }
      ])
    )
    assert.deepEqual([out.exitCode, out.stdout], [0, ''])
    assert.deepEqual(await leases(f), ['10.231.200.3', 'fd00:231:200::3'])
    assert.equal(f.dataplane.state.links().filter((l) => l.side === 'host').length, 1)
    const old = await invoke(f.runtime, cniEnv('GC'), { ...conf({ cniVersion: '1.1.0' }), 'cni.dev/attachments': [] })
    assert.equal(old.exitCode, 0)
    assert.deepEqual(await leases(f), [], 'the pre-1.2.3 key name works too')
  })
})

describe('isthmus as an IPAM plugin (fake runtime)', () => {
  const ipamConf = (over: Record<string, unknown> = {}) => ({
    cniVersion: '1.0.0',
    name: 'inet',
    type: 'bridge',
    bridge: 'cni9',
    ipam: { type: 'isthmus', ranges: [[{ subnet: '10.231.201.0/24' }]], routes: [{ dst: '0.0.0.0/0' }] },
    ...over
  })
  it('ADD answers an IPAM result (no interfaces), DEL releases, CHECK finds the address', async () => {
    const f = fakeRuntime()
    const r = await invoke(f.runtime, cniEnv('ADD', { cid: 'i1', netns: NETNS, ifName: 'eth0' }), ipamConf())
    assert.deepEqual(r.doc, {
      cniVersion: '1.0.0',
      ips: [{ address: '10.231.201.2/24', gateway: '10.231.201.1' }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.231.201.1' }],
      dns: {}
    })
    assert.deepEqual(f.dataplane.state.links(), [], 'no link made')
    const prevResult = {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'eth0', sandbox: NETNS }],
      ips: [{ address: '10.231.201.2/24', interface: 0 }]
    }
    assert.equal(
      (await invoke(f.runtime, cniEnv('CHECK', { cid: 'i1', netns: NETNS, ifName: 'eth0' }), ipamConf({ prevResult })))
        .exitCode,
      0
    )
    assert.equal(
      (await invoke(f.runtime, cniEnv('DEL', { cid: 'i1', netns: NETNS, ifName: 'eth0' }), ipamConf())).exitCode,
      0
    )
    assert.deepEqual(await leases(f), [])
    const gone = await invoke(
      f.runtime,
      cniEnv('CHECK', { cid: 'i1', netns: NETNS, ifName: 'eth0' }),
      ipamConf({ prevResult })
    )
    assert.equal(gone.doc?.['code'], 3)
  })
})

describe('IPAM delegation (fake plugin)', () => {
  const hostLocal = (f: FakeRuntime, behaviour: { failAdd?: boolean } = {}) =>
    f.plugins.set('host-local', (env) => {
      switch (env['CNI_COMMAND'] ?? '') {
        case 'ADD':
          return behaviour.failAdd === true
            ? { exitCode: 1, stdout: JSON.stringify({ code: 999, msg: 'failed to allocate for range 0' }), stderr: '' }
            : {
                exitCode: 0,
                stdout: JSON.stringify({
                  cniVersion: '1.0.0',
                  ips: [{ address: '10.231.202.9/24', gateway: '10.231.202.1' }],
                  routes: [{ dst: '0.0.0.0/0' }]
                }),
                stderr: ''
              }
        case 'VERSION':
          return {
            exitCode: 0,
            stdout: JSON.stringify({ cniVersion: '1.0.0', supportedVersions: ['1.0.0'] }),
            stderr: ''
          }
        default:
          return { exitCode: 0, stdout: '', stderr: '' }
      }
    })
  const dconf = conf({ ipam: { type: 'host-local', ranges: [[{ subnet: '10.231.202.0/24' }]] } })

  it("ADD takes the delegate's address and routes; DEL and CHECK are forwarded with the same stdin; GC not to a 1.0.0 delegate", async () => {
    const f = fakeRuntime()
    hostLocal(f)
    const r = (await add(f, 'd1', dconf)).doc as Cni.Result100
    assert.deepEqual(r.ips, [{ address: '10.231.202.9/24', gateway: '10.231.202.1', interface: 2 }])
    assert.deepEqual(r.routes, [{ dst: '0.0.0.0/0', gw: '10.231.202.1' }])
    assert.equal(f.calls[0]?.stdin, JSON.stringify(dconf), 'the delegate gets the whole netconf, byte for byte')
    assert.equal(
      (
        await invoke(f.runtime, cniEnv('CHECK', { cid: 'd1', netns: nsOf('d1'), ifName: 'eth0' }), {
          ...dconf,
          prevResult: r
        })
      ).exitCode,
      0
    )
    assert.equal((await del(f, 'd1', dconf)).exitCode, 0)
    assert.equal(
      (await invoke(f.runtime, cniEnv('GC'), { ...dconf, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] }))
        .exitCode,
      0
    )
    assert.deepEqual(
      f.calls.map((c) => c.command),
      ['ADD', 'CHECK', 'DEL', 'VERSION']
    )
  })

  it("a delegate's error passes through with its code; a failure after its ADD runs its DEL", async () => {
    const f = fakeRuntime()
    hostLocal(f, { failAdd: true })
    const o = (await add(f, 'd1', dconf)).doc
    assert.deepEqual([o?.['code'], o?.['msg']], [999, 'failed to allocate for range 0'])
    const g = fakeRuntime()
    hostLocal(g)
    const bad = await add(g, 'd2', { ...dconf, runtimeConfig: { portMappings: [{ hostPort: 0, containerPort: 80 }] } })
    assert.equal(bad.exitCode, 1)
    const h = fakeRuntime()
    hostLocal(h)
    // The sandbox end cannot be placed: the delegate's address must be given back.
    const dp = fakeDataplane({ sandboxes: [] })
    const failed = await invoke(
      withDataplane(h, dp.port),
      cniEnv('ADD', { cid: 'd3', netns: nsOf('d3'), ifName: 'eth0' }),
      dconf
    )
    assert.equal(failed.exitCode, 1)
    assert.deepEqual(
      h.calls.map((c) => c.command),
      ['ADD', 'DEL']
    )
  })
})

describe('result converters', () => {
  const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'))
  const v6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((p) => p.map((x) => x.toString(16)).join(':'))
  const address = fc.oneof(
    v4.map((a) => `${a}/24`),
    v6.map((a) => `${a}/64`)
  )
  const result: fc.Arbitrary<Cni.Result> = fc.record(
    {
      interfaces: fc.array(
        fc.record(
          { name: fc.stringMatching(/^[a-z][a-z0-9]{0,14}$/), mac: fc.constant('02:00:00:00:00:01') },
          { requiredKeys: ['name'], noNullPrototype: true }
        ),
        { maxLength: 3 }
      ),
      ips: fc.array(
        fc.record({ address, interface: fc.nat(2) }, { requiredKeys: ['address'], noNullPrototype: true }),
        { maxLength: 3 }
      ),
      routes: fc.array(fc.record({ dst: address }, { noNullPrototype: true }), { maxLength: 2 }),
      dns: fc.record({ nameservers: fc.array(v4, { maxLength: 2 }) }, { requiredKeys: [], noNullPrototype: true })
    },
    { noNullPrototype: true }
  )

  it('every version converts out and back to the same result (fast-check)', () => {
    fc.assert(
      fc.property(result, fc.constantFrom(...Cni.SUPPORTED_VERSIONS), (r, v) => {
        const out = JSON.parse(JSON.stringify(Cni.toVersion(r, v))) as unknown
        const back = Cni.decodeResult(out, v)
        assert.ok(E.isRight(back))
        assert.deepEqual(back.right, r)
        // 0.3.x/0.4.0 carry a version per ip, 1.x none.
        const ips = (out as { ips: Array<Record<string, unknown>> }).ips
        assert.ok(
          ips.every((ip) =>
            Cni.isPre1(v) ? ip['version'] === (String(ip['address']).includes(':') ? '6' : '4') : !('version' in ip)
          )
        )
      })
    )
  })

  it('SPEC.md example results decode (1.0.0 and 0.4.0)', () => {
    const spec100 = {
      cniVersion: '1.0.0',
      interfaces: [
        { name: 'cni0', mac: '00:11:22:33:44:55' },
        { name: 'veth3243', mac: '55:44:33:22:11:11' },
        { name: 'eth0', mac: '99:88:77:66:55:44', sandbox: '/var/run/netns/blue' }
      ],
      ips: [{ address: '10.1.0.5/16', gateway: '10.1.0.1', interface: 2 }],
      routes: [{ dst: '0.0.0.0/0' }],
      dns: { nameservers: ['10.1.0.1'] }
    }
    assert.ok(E.isRight(Cni.Result100.decode(spec100)))
    const r = Cni.decodeResult(
      {
        ...spec100,
        cniVersion: '0.4.0',
        ips: [{ version: '4', address: '10.1.0.5/16', gateway: '10.1.0.1', interface: 2 }]
      },
      '0.4.0'
    )
    assert.ok(E.isRight(r))
    assert.deepEqual(r.right.ips, spec100.ips)
    assert.ok(E.isLeft(Cni.decodeResult({ ...spec100, cniVersion: '0.4.0' }, '0.4.0')), '0.4.0 ips need version')
  })
})
