/**
 * The envelope (skel.ts): every error code, compared case by case with what the reference bridge
 * plugin (v1.1.1, /usr/lib/cni/bridge, libcni 1.1.2 skel) really prints for the same input
 * (run side by side in this test), then the cases only isthmus has. Each call's stdout must be exactly one
 * JSON document (or empty where the protocol says so).
 */
import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import { ABOUT } from '@isthmus/cni-exec'
import { cniEnv, execPlugin, fakeRuntime, invoke, type Outcome } from './support.js'

const REFERENCE = '/usr/lib/cni/bridge'
// Valid everywhere except where a case changes it; the reference never gets past its skel here.
const CONF = {
  cniVersion: '1.0.0',
  name: 'envnet',
  type: 'isthmus',
  bridge: 'icnoenv0',
  ipam: { ranges: [[{ subnet: '10.231.250.0/24' }]] }
}
const ENV = { cid: 'ctr1', netns: '/var/run/netns/isthmus-cni-none', ifName: 'eth0' }

const oneDocument = (o: Outcome): Record<string, unknown> => {
  assert.ok(o.doc !== undefined, `stdout is one JSON document: ${JSON.stringify(o.stdout)}`)
  return o.doc
}

interface Case {
  readonly what: string
  readonly env: Record<string, string | undefined>
  readonly conf: unknown
  readonly code: number
  readonly msg: string
  /** Compare `details` with the reference's too. */
  readonly sameDetails?: boolean
  /** Compare msg by prefix only (Go and JavaScript word JSON errors differently). */
  readonly msgPrefix?: boolean
}

const cases: ReadonlyArray<Case> = [
  {
    what: 'truncated JSON',
    env: cniEnv('ADD', ENV),
    conf: '{"cniVersion":"1.0.0","name":"x"',
    code: 6,
    msg: 'error unmarshall network config: ',
    msgPrefix: true
  },
  {
    what: 'no name',
    env: cniEnv('ADD', ENV),
    conf: { ...CONF, name: undefined },
    code: 7,
    msg: 'missing network name'
  },
  {
    what: 'bad name',
    env: cniEnv('ADD', ENV),
    conf: { ...CONF, name: 'bad/name' },
    code: 7,
    msg: 'invalid characters found in network name',
    sameDetails: true
  },
  {
    what: 'unsupported cniVersion',
    env: cniEnv('ADD', ENV),
    conf: { ...CONF, cniVersion: '9.9.9' },
    code: 1,
    msg: 'incompatible CNI versions'
  },
  {
    what: 'empty CNI_NETNS on ADD',
    env: cniEnv('ADD', { ...ENV, netns: '' }),
    conf: CONF,
    code: 4,
    msg: 'required env variables [CNI_NETNS] missing'
  },
  {
    what: '16-character ifname',
    env: cniEnv('ADD', { ...ENV, ifName: 'eth0123456789012' }),
    conf: CONF,
    code: 4,
    msg: 'interface name is too long',
    sameDetails: true
  },
  {
    what: 'ifname with /',
    env: cniEnv('ADD', { ...ENV, ifName: 'et/h0' }),
    conf: CONF,
    code: 4,
    msg: 'interface name contains / or : or whitespace characters'
  },
  {
    what: 'ifname with :',
    env: cniEnv('ADD', { ...ENV, ifName: 'eth0:1' }),
    conf: CONF,
    code: 4,
    msg: 'interface name contains / or : or whitespace characters'
  },
  {
    what: 'ifname with a space',
    env: cniEnv('ADD', { ...ENV, ifName: 'e th0' }),
    conf: CONF,
    code: 4,
    msg: 'interface name contains / or : or whitespace characters'
  },
  {
    what: 'ifname .',
    env: cniEnv('ADD', { ...ENV, ifName: '.' }),
    conf: CONF,
    code: 4,
    msg: 'interface name is . or ..'
  },
  {
    what: 'container id with /',
    env: cniEnv('ADD', { ...ENV, cid: 'ctr/b' }),
    conf: CONF,
    code: 4,
    msg: 'invalid characters in containerID',
    sameDetails: true
  },
  {
    what: 'container id starting with -',
    env: cniEnv('ADD', { ...ENV, cid: '-ctrb' }),
    conf: CONF,
    code: 4,
    msg: 'invalid characters in containerID',
    sameDetails: true
  },
  {
    what: 'empty container id',
    env: cniEnv('ADD', { ...ENV, cid: '' }),
    conf: CONF,
    code: 4,
    msg: 'required env variables [CNI_CONTAINERID] missing'
  },
  {
    what: 'empty CNI_PATH',
    env: cniEnv('ADD', { ...ENV, path: '' }),
    conf: CONF,
    code: 4,
    msg: 'required env variables [CNI_PATH] missing'
  },
  {
    what: 'every variable missing',
    env: cniEnv('ADD', { path: '' }),
    conf: CONF,
    code: 4,
    msg: 'required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing'
  },
  {
    what: 'DEL without CNI_IFNAME',
    env: cniEnv('DEL', { ...ENV, ifName: '' }),
    conf: CONF,
    code: 4,
    msg: 'required env variables [CNI_IFNAME] missing'
  },
  { what: 'unknown command', env: cniEnv('FOO', ENV), conf: CONF, code: 4, msg: 'unknown CNI_COMMAND: FOO' },
  { what: 'lower-case command', env: cniEnv('add', ENV), conf: CONF, code: 4, msg: 'unknown CNI_COMMAND: add' },
  {
    what: 'CHECK at 0.3.1',
    env: cniEnv('CHECK', ENV),
    conf: { ...CONF, cniVersion: '0.3.1' },
    code: 1,
    msg: 'config version does not allow CHECK'
  }
]

describe('envelope: the same error as the reference bridge plugin', () => {
  for (const c of cases) {
    it(`${c.what}: code ${c.code}`, async () => {
      const ours = await invoke(fakeRuntime().runtime, c.env, c.conf)
      const ref = await execPlugin(REFERENCE, c.env, c.conf)
      const o = oneDocument(ours)
      const r = oneDocument(ref)
      assert.equal(ours.exitCode, 1)
      assert.equal(ref.exitCode, 1)
      assert.equal(o['code'], c.code)
      assert.equal(r['code'], c.code, `the reference says ${JSON.stringify(r)}`)
      if (c.msgPrefix === true) {
        assert.ok(
          String(o['msg']).startsWith(c.msg) && String(r['msg']).startsWith(c.msg),
          `${String(o['msg'])} / ${String(r['msg'])}`
        )
      } else {
        assert.equal(o['msg'], c.msg)
        assert.equal(r['msg'], c.msg)
      }
      if (c.sameDetails === true) assert.equal(o['details'], r['details'])
      assert.equal(typeof o['cniVersion'], 'string', 'isthmus errors carry cniVersion (SPEC §Error)')
    })
  }

  it('VERSION: compact document with a newline, stdin never read, same shape as the reference', async () => {
    const ours = await (await import('@isthmus/cni-exec')).runSkel(fakeRuntime().runtime)(
      { CNI_COMMAND: 'VERSION' },
      () => {
        throw new Error('VERSION must not read stdin')
      }
    )
    assert.equal(ours.exitCode, 0)
    assert.equal(ours.stdout, '{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n')
    const ref = await execPlugin(REFERENCE, { CNI_COMMAND: 'VERSION' }, '')
    assert.deepEqual(Object.keys(oneDocument(ref)), ['cniVersion', 'supportedVersions'])
    assert.ok(ref.stdout.endsWith('\n'))
  })

  it('no CNI_COMMAND: the about text on stderr, nothing on stdout, exit 0 (as the reference)', async () => {
    const ours = await invoke(fakeRuntime().runtime, { CNI_COMMAND: undefined }, '')
    const ref = await execPlugin(REFERENCE, {}, '')
    assert.deepEqual([ours.exitCode, ours.stdout, ours.stderr], [0, '', ABOUT])
    assert.deepEqual([ref.exitCode, ref.stdout], [0, ''])
    assert.match(ref.stderr, /CNI protocol versions supported/)
  })
})

describe('envelope: isthmus-only cases', () => {
  const run = (env: Record<string, string | undefined>, conf: unknown) => invoke(fakeRuntime().runtime, env, conf)

  it('reports every missing and invalid variable at once (code 4)', async () => {
    const o = oneDocument(
      await run(cniEnv('ADD', { cid: 'bad/id', ifName: 'waytoolonginterface', path: '', args: 'FOO=1' }), CONF)
    )
    assert.equal(o['code'], 4)
    assert.equal(o['msg'], 'required env variables [CNI_NETNS,CNI_PATH] missing')
    const d = String(o['details'])
    for (const part of [
      'missing: CNI_NETNS, CNI_PATH',
      'CNI_CONTAINERID: invalid characters in containerID (bad/id)',
      'CNI_IFNAME: interface name is too long',
      'CNI_ARGS: ARGS: unknown args ["FOO=1"]'
    ]) {
      assert.ok(d.includes(part), `details name ${part}: ${d}`)
    }
  })

  it('checks the environment before stdin (newer skel order): bad ifname and truncated JSON is code 4', async () => {
    assert.equal(oneDocument(await run(cniEnv('ADD', { ...ENV, ifName: 'eth0123456789012' }), '{"name"'))['code'], 4)
  })

  it('CNI_ARGS: unknown keys refused unless IgnoreUnknown, bad IP and MAC refused, malformed pairs refused', async () => {
    const r1 = oneDocument(await run(cniEnv('DEL', { ...ENV, args: 'K8S_POD_NAME=a;FOO=bar' }), CONF))
    assert.deepEqual([r1['code'], r1['msg']], [4, 'ARGS: unknown args ["FOO=bar"]'])
    assert.equal(
      (await run(cniEnv('DEL', { ...ENV, args: 'IgnoreUnknown=1;FOO=bar;K8S_POD_NAMESPACE=x' }), CONF)).exitCode,
      0
    )
    assert.equal((await run(cniEnv('DEL', { ...ENV, args: 'IgnoreUnknown=true;FOO=bar' }), CONF)).exitCode, 0)
    assert.equal(
      oneDocument(await run(cniEnv('DEL', { ...ENV, args: 'IP=10.1.2.300' }), CONF))['msg'],
      'ARGS: IP=10.1.2.300 is not an IP address'
    )
    assert.equal(
      oneDocument(await run(cniEnv('DEL', { ...ENV, args: 'MAC=zz' }), CONF))['msg'],
      'ARGS: MAC=zz is not a MAC address'
    )
    assert.equal(
      oneDocument(await run(cniEnv('DEL', { ...ENV, args: 'novalue' }), CONF))['msg'],
      'ARGS: invalid pair "novalue"'
    )
  })

  it('CNI_NETNS must be a path', async () => {
    const o = oneDocument(await run(cniEnv('ADD', { ...ENV, netns: 'relative/ns' }), CONF))
    assert.deepEqual([o['code'], o['msg']], [4, 'CNI_NETNS must be an absolute path'])
  })

  it('versions: missing cniVersion is 0.1.0 (refused), GC and STATUS need 1.1.0, errors carry the request version', async () => {
    const none = oneDocument(await run(cniEnv('ADD', ENV), { ...CONF, cniVersion: undefined }))
    assert.deepEqual(
      [none['code'], none['details']],
      [1, 'config is "0.1.0", plugin supports ["0.3.0" "0.3.1" "0.4.0" "1.0.0" "1.1.0"]']
    )
    const gc = oneDocument(await run(cniEnv('GC'), CONF))
    assert.deepEqual([gc['code'], gc['msg']], [1, 'config version does not allow GC'])
    const st = oneDocument(await run(cniEnv('STATUS'), CONF))
    assert.deepEqual([st['code'], st['msg'], st['cniVersion']], [1, 'config version does not allow STATUS', '1.0.0'])
    const bad = oneDocument(await run(cniEnv('ADD', ENV), { ...CONF, cniVersion: '0.4.0', mtu: 'abc' }))
    assert.equal(bad['cniVersion'], '0.4.0')
  })

  it('stdin: not an object is code 6, an unreadable stdin code 5, a bad plugin key code 7', async () => {
    assert.equal(oneDocument(await run(cniEnv('ADD', ENV), '[1,2]'))['code'], 6)
    assert.equal(oneDocument(await run(cniEnv('ADD', ENV), '5'))['code'], 6)
    const { runSkel } = await import('@isthmus/cni-exec')
    const io = await runSkel(fakeRuntime().runtime)(cniEnv('ADD', ENV), () => Promise.reject(new Error('EIO')))
    assert.deepEqual([io.exitCode, (JSON.parse(io.stdout) as { code?: unknown }).code], [1, 5])
    const mtu = oneDocument(await run(cniEnv('ADD', ENV), { ...CONF, mtu: 'abc' }))
    assert.deepEqual([mtu['code'], mtu['msg']], [7, 'invalid network config'])
    assert.match(String(mtu['details']), /^mtu: expected an integer from 68 to 65535, got "abc"/)
    const rel = oneDocument(await run(cniEnv('ADD', ENV), { ...CONF, stateDir: 'var/lib' }))
    assert.match(String(rel['details']), /stateDir: expected an absolute path/)
  })

  it('unsupported fields are code 2 naming key and value: isGateway false, a second range set of one family', async () => {
    const gw = oneDocument(await run(cniEnv('ADD', ENV), { ...CONF, isGateway: false }))
    assert.deepEqual([gw['code'], gw['msg']], [2, 'unsupported field isGateway=false'])
    const two = oneDocument(
      await run(cniEnv('ADD', ENV), {
        ...CONF,
        ipam: { ranges: [[{ subnet: '10.231.250.0/24' }], [{ subnet: '10.231.251.0/24' }]] }
      })
    )
    assert.equal(two['code'], 2)
    assert.match(String(two['msg']), /^unsupported field ipam\.ranges=\[\[\{"subnet":"10\.231\.250\.0\/24"\}\]/)
    assert.equal(two['details'], 'more than one IPv4 range set')
  })

  it('a delegated IPAM type that is not in CNI_PATH is code 7 naming the path', async () => {
    const o = oneDocument(
      await run(cniEnv('ADD', { ...ENV, path: '/nowhere:/neither' }), { ...CONF, ipam: { type: 'no-such-ipam' } })
    )
    assert.deepEqual([o['code'], o['msg']], [7, 'failed to find plugin "no-such-ipam" in path [/nowhere /neither]'])
  })

  it('STATUS: success with nothing on stdout; code 50 when the store cannot be opened', async () => {
    const f = fakeRuntime()
    const conf = { ...CONF, cniVersion: '1.1.0' }
    const ok = await invoke(f.runtime, cniEnv('STATUS', { path: '' }), conf)
    assert.deepEqual([ok.exitCode, ok.stdout], [0, ''])
    f.failOpen = true
    const down = oneDocument(await invoke(f.runtime, cniEnv('STATUS', { path: '' }), conf))
    assert.deepEqual([down['code'], down['msg']], [50, 'plugin not available'])
    assert.match(String(down['details']), /state store cannot be opened/)
  })

  it('GC needs CNI_PATH (spec 1.1) but no container id; STATUS needs neither', async () => {
    const o = oneDocument(await run(cniEnv('GC', { path: '' }), { ...CONF, cniVersion: '1.1.0' }))
    assert.deepEqual([o['code'], o['msg']], [4, 'required env variables [CNI_PATH] missing'])
    assert.equal(
      (await run(cniEnv('GC', { path: '/usr/lib/cni', cid: 'bad/ignored' }), { ...CONF, cniVersion: '1.1.0' }))
        .exitCode,
      0
    )
  })
})
