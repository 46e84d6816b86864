/**
 * A netconf that names a Contrail controller, end to end: the envelope with the real Linux ports
 * in process, and the built SEA executable with a minimal environment, against the Contrail
 * config API simulator (keystone v2 and v3) and the vRouter agent simulator, both real HTTP
 * servers on 127.0.0.1, and namespaces made here. ADD creates interface, VM and instance-ip in
 * the controller, the sandbox interface gets the controller's address and MAC, the agent gets
 * the port, two namespaces reach each other; DEL removes all of it; a failure at every
 * controller step and at the agent leaves nothing and prints one CNI error.
 *
 * Traffic stays inside the namespaces and the bridge made here: a random /24 of 10.254.0.0/16.
 */
import { strict as assert } from 'node:assert'
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, afterEach, before, describe, it } from 'node:test'
import {
  macFromUuid,
  startAgentSimulator,
  startContrailSimulator,
  type AgentSimulator,
  type ContrailSimulator,
  type Fault
} from '@isthmus/contrail/testing'
import type { Cni } from '@isthmus/cni-exec'
import {
  addresses,
  cniEnv,
  execPlugin,
  invoke,
  link,
  linkNames,
  pings,
  realRuntime,
  requireRoot,
  routes,
  Scope,
  sh,
  type Outcome
} from './support.js'

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..')
const sea = join(root, 'packages/cni-plugin/dist/sea/isthmus')
const scope = new Scope()
const runtime = realRuntime()
const stateDir = scope.tmpDir('state')
const logFile = join(stateDir, 'cni.log')
const bridge = scope.bridge('c')
const third = 10 + Math.floor(Math.random() * 230)
const cidr = `10.254.${third}.0/24`
const net = (host: number) => `10.254.${third}.${host}`
const TENANT = 'demo'
const VN = 'blue'
const USER = { username: 'isthmus-cni', password: 'Pa55-w0rd-never-shown', project: 'admin' }
const OS_VARS = { OS_USERNAME: USER.username, OS_PASSWORD: USER.password, OS_PROJECT_NAME: USER.project }

let contrail: ContrailSimulator
let agent: AgentSimulator
let credentialsFile = ''

/** The netconf: network `ctl-<run>` bound to demo:blue; keystone v3 unless told otherwise. */
const conf = (over: Record<string, unknown> = {}, contrailOver: Record<string, unknown> = {}) => ({
  cniVersion: '1.0.0',
  name: `ctl-${scope.id}`,
  type: 'isthmus',
  bridge,
  stateDir,
  chainPrefix: scope.chainPrefix,
  logFile,
  logLevel: 'debug',
  contrail: {
    api: contrail.url,
    agent: agent.url,
    tenant: TENANT,
    network: VN,
    owner: `cni-test-${scope.id}`,
    keystone: { url: contrail.keystoneV3, version: 3 },
    // Short, so timeouts and 5xx answers are quick to give up on.
    timeoutMs: 500,
    retries: 1,
    ...contrailOver
  },
  ...over
})
const env = (command: string, cid: string, netns: string, extra: Record<string, string> = OS_VARS) => ({
  ...cniEnv(command, { cid, netns, ifName: 'eth0' }),
  ...extra
})

const created = () => contrail.created().map((o) => `${o.type} ${o.fq_name.join(':')}`)
const files = (dir: string): string[] =>
  existsSync(join(stateDir, 'v1', dir)) ? readdirSync(join(stateDir, 'v1', dir)).filter((f) => f.endsWith('.json')) : []
const bridgePorts = (name = bridge): string[] => {
  if (!linkNames().includes(name)) return []
  return (JSON.parse(sh('ip', ['-json', 'link', 'show', 'master', name])) as Array<{ ifname: string }>).map(
    (l) => l.ifname
  )
}
const ok = (out: Outcome): Cni.Result100 => {
  assert.equal(out.exitCode, 0, out.stdout + out.stderr)
  return out.doc as Cni.Result100
}
/** One CNI error document: exit 1, the code, a fixed msg, details in one sentence. */
const failed = (out: Outcome, code: number): { msg: string; details: string } => {
  assert.equal(out.exitCode, 1, out.stdout)
  assert.equal(out.doc?.['code'], code, out.stdout)
  const details = String(out.doc?.['details'])
  assert.ok(!/[\r\n]/.test(details) && details.length < 400, `one sentence: ${details}`)
  assert.ok(!out.stdout.includes(USER.password), 'no password in the error')
  return { msg: String(out.doc?.['msg']), details }
}

describe('CNI on a Contrail network (simulated controller and agent, real kernel)', { timeout: 120_000 }, () => {
  before(async () => {
    requireRoot()
    // Incremental: a no-op when `pnpm build` made it already.
    execFileSync(process.execPath, [join(root, 'packages/cni-plugin/scripts/build.mjs')], { stdio: 'ignore' })
    contrail = await startContrailSimulator({ auth: 'keystone', users: [USER] })
    agent = await startAgentSimulator()
    contrail.seedProject(TENANT)
    contrail.seedSecurityGroup(TENANT)
    contrail.seedNetwork(TENANT, VN, [{ cidr }])
    contrail.seedNetwork(TENANT, 'two-subnets', [
      { cidr: `10.254.${third === 10 ? 11 : third - 1}.0/24` },
      { cidr: `10.254.${third === 240 ? 241 : third + 1}.0/24` }
    ])
    credentialsFile = join(scope.tmpDir('creds'), 'contrail.openrc')
    writeFileSync(
      credentialsFile,
      `# openrc\nexport OS_USERNAME=${USER.username}\nexport OS_PASSWORD='${USER.password}'\nexport OS_TENANT_NAME=${USER.project}\n`,
      { mode: 0o600 }
    )
  })
  after(async () => {
    await scope.cleanup()
    await contrail?.close()
    await agent?.close()
  })
  afterEach(() => {
    contrail.clearFaults()
    agent.clearFaults()
  })

  it('ADD: the controller makes interface, VM and instance-ip; eth0 gets its address and MAC; the agent gets the port; two namespaces reach each other', async () => {
    const a = scope.addNetns('a')
    const b = scope.addNetns('b')
    const ra = ok(await invoke(runtime, env('ADD', 'ctr-a', a.path), conf()))
    // B asks for an address and a MAC: the controller is asked for exactly these.
    const macB = '02:54:aa:bb:cc:dd'
    const rb = ok(
      await invoke(runtime, env('ADD', 'ctr-b', b.path), conf({ runtimeConfig: { ips: [`${net(50)}/24`], mac: macB } }))
    )

    for (const [r, ns, want] of [
      [ra, a, net(3)],
      [rb, b, net(50)]
    ] as const) {
      const iip = contrail.objects('instance-ip').find((o) => o.props['instance_ip_address'] === want)
      assert.ok(iip !== undefined, `an instance-ip ${want} in the controller`)
      const vmiUuid = (iip.props['virtual_machine_interface_refs'] as Array<{ uuid: string }>)[0]?.uuid ?? ''
      const vmi = contrail.get(vmiUuid)
      assert.ok(vmi?.fq_name[0] === 'default-domain' && vmi.fq_name[1] === TENANT)
      const vmUuid = (vmi.props['virtual_machine_refs'] as Array<{ uuid: string }>)[0]?.uuid ?? ''
      assert.equal(contrail.get(vmUuid)?.type, 'virtual-machine')
      const mac = want === net(50) ? macB : macFromUuid(vmiUuid)
      assert.deepEqual(
        vmi.props['virtual_machine_interface_mac_addresses'] ?? { mac_address: [macFromUuid(vmiUuid)] },
        { mac_address: [mac] }
      )
      // the result and the kernel both say the controller's address, gateway and MAC
      assert.deepEqual(r.ips, [{ address: `${want}/24`, gateway: net(1), interface: 2 }])
      assert.deepEqual(r.interfaces?.[2], { name: 'eth0', mac, sandbox: ns.path })
      assert.equal(link('eth0', ns.name)?.address, mac)
      assert.deepEqual(addresses('eth0', ns.name), [`${want}/24`])
      assert.ok(routes(ns.name).includes(`default via ${net(1)} dev eth0`))
      // the agent's port names all of it, and the host end of the veth pair
      const port = agent.ports().get(vmiUuid)
      assert.ok(port !== undefined, 'the agent holds the port')
      assert.equal(port['instance-id'], vmUuid)
      assert.equal(port['ip-address'], want)
      assert.equal(port['mac-address'], mac)
      assert.equal(port['system-name'], r.interfaces?.[1]?.name)
      assert.equal(link(port['system-name'])?.master, bridge)
    }
    assert.equal(created().length, 6, 'two interfaces, two VMs, two instance-ips')
    // B's address again: the controller's 409 is code 103, and the attempt leaves nothing
    const dup = scope.addNetns('dup')
    const taken = await invoke(runtime, env('ADD', 'ctr-dup', dup.path), conf({ runtimeConfig: { ips: [net(50)] } }))
    assert.deepEqual(
      [taken.exitCode, taken.doc?.['code'], taken.doc?.['msg']],
      [1, 103, 'requested address is in use'],
      taken.stdout
    )
    assert.equal(created().length, 6)
    assert.deepEqual(linkNames(dup.name), ['lo'])
    assert.deepEqual(addresses(bridge), [`${net(1)}/24`], "the controller's gateway is on the bridge")
    assert.ok(pings(a.name, net(50)), 'A reaches B')
    assert.ok(pings(b.name, net(3)), 'B reaches A')
    // every controller call carried a keystone v3 token
    assert.ok(contrail.calls('POST', '/v3/auth/tokens').length >= 2)
    assert.ok(
      contrail.journal
        .filter((e) => !e.path.startsWith('/v'))
        .every((e) => typeof e.headers['x-auth-token'] === 'string')
    )

    const check = await invoke(runtime, env('CHECK', 'ctr-a', a.path), conf({ prevResult: ra }))
    assert.deepEqual([check.exitCode, check.stdout], [0, ''])
  })

  it('DEL removes instance-ip, interface, VM and agent port; it refuses (keeping the record) without the contrail section, and a controller 503 is code 11 until it recovers', async () => {
    const a = `/var/run/netns/isthmus-cni-${scope.id}-a`
    const b = `/var/run/netns/isthmus-cni-${scope.id}-b`
    const { contrail: _dropped, ...plain } = conf()
    const refused = failed(await invoke(runtime, env('DEL', 'ctr-a', a), plain), 7)
    assert.match(
      refused.details,
      new RegExp(`network ctl-${scope.id} is bound to Contrail demo:blue and this netconf has no contrail section`)
    )
    assert.equal(created().length, 6)
    assert.equal(files('endpoints').length, 2, 'the records stay for the retry')

    contrail.inject({ method: 'DELETE', path: /^\/instance-ip\//, status: 503, body: 'Service Unavailable' })
    const down = failed(await invoke(runtime, env('DEL', 'ctr-a', a), conf()), 11)
    assert.equal(down.msg, 'network controller error')
    assert.match(down.details, /^network controller refused delete instance-ip .* \(HTTP 503\): Service Unavailable$/)
    contrail.clearFaults()

    const portsBefore = [...agent.ports().keys()]
    for (const [cid, ns] of [
      ['ctr-a', a],
      ['ctr-b', b]
    ] as const) {
      const d = await invoke(runtime, env('DEL', cid, ns), conf())
      assert.deepEqual([d.exitCode, d.stdout], [0, ''], d.stdout)
      assert.deepEqual(linkNames(ns.split('/').pop()), ['lo'])
    }
    assert.deepEqual(created(), [], 'no controller object left')
    assert.equal(agent.ports().size, 0, 'no agent port left')
    for (const id of portsBefore) assert.equal(agent.calls('DELETE', `/port/${id}`).length >= 1, true)
    const deletes = contrail.journal
      .filter((e) => e.method === 'DELETE' && e.status === 200)
      .map((e) => e.path.split('/')[1])
    assert.deepEqual(
      deletes.slice(-3),
      ['instance-ip', 'virtual-machine-interface', 'virtual-machine'],
      'in the one order the server accepts'
    )
    assert.deepEqual(files('endpoints'), [])
    assert.deepEqual(bridgePorts(), [])
    // DEL again, and with an empty CNI_NETNS: nothing to do, success
    assert.equal((await invoke(runtime, env('DEL', 'ctr-a', a), conf())).exitCode, 0)
    assert.equal((await invoke(runtime, env('DEL', 'ctr-b', ''), conf())).exitCode, 0)
  })

  // ---------------------------------------------------------------------------------
  // a failure at every step, in turn: nothing is left
  // ---------------------------------------------------------------------------------

  type Step = {
    readonly step: string
    /** A fresh network: the failure is in ensureNetwork, before any bridge exists. */
    readonly fresh?: boolean
    readonly fault: () => void
    readonly code: number
    readonly says: RegExp
  }
  const ctl = (step: string, f: Fault, code: number, says: RegExp, fresh = false): Step => ({
    step,
    fresh,
    fault: () => contrail.inject(f),
    code,
    says
  })
  const steps: ReadonlyArray<Step> = [
    ctl(
      'keystone token',
      {
        method: 'POST',
        path: '/v3/auth/tokens',
        status: 401,
        body: 'The request you have made requires authentication.'
      },
      102,
      /^network controller refused authenticate with keystone \(HTTP 401\)/,
      true
    ),
    ctl(
      'project lookup',
      { method: 'POST', path: '/fqname-to-id', nth: 1, status: 404, body: "Name ['default-domain', 'demo'] not found" },
      102,
      /refused look up project default-domain:demo \(HTTP 404\)/,
      true
    ),
    ctl(
      'virtual network lookup',
      { method: 'POST', path: '/fqname-to-id', nth: 2, status: 400, body: 'injected' },
      102,
      /refused look up virtual-network default-domain:demo:blue \(HTTP 400\)/,
      true
    ),
    ctl(
      'virtual network read',
      { method: 'GET', path: /^\/virtual-network\//, status: 503, body: 'injected' },
      11,
      /refused read virtual-network .* \(HTTP 503\)/,
      true
    ),
    ctl(
      'security group lookup',
      { method: 'POST', path: '/fqname-to-id', nth: 1, status: 400, body: 'injected' },
      102,
      /refused look up security-group default-domain:demo:default \(HTTP 400\)/
    ),
    ctl(
      'interface create',
      { method: 'POST', path: '/virtual-machine-interfaces', status: 400, body: 'injected' },
      102,
      /refused create virtual-machine-interface default-domain:demo:cni-\w+-\w+ \(HTTP 400\)/
    ),
    ctl(
      'interface read',
      { method: 'GET', path: /^\/virtual-machine-interface\//, status: 400, body: 'injected' },
      102,
      /refused read virtual-machine-interface .* \(HTTP 400\)/
    ),
    ctl(
      'VM create',
      { method: 'POST', path: '/virtual-machines', status: 500, body: 'injected' },
      11,
      /refused create virtual-machine cni-\w+-\w+ \(HTTP 500\)/
    ),
    ctl(
      'interface→VM reference',
      { method: 'POST', path: '/ref-update', status: 400, body: 'injected' },
      102,
      /refused add virtual-machine reference on virtual-machine-interface .* \(HTTP 400\)/
    ),
    ctl(
      'instance-ip create (address in use)',
      { method: 'POST', path: '/instance-ips', status: 409, body: 'IP address already in use' },
      102,
      /refused create instance-ip cni-\w+-\w+ \(HTTP 409\): IP address already in use/
    ),
    ctl(
      'instance-ip create (no answer)',
      { method: 'POST', path: '/instance-ips', hang: true },
      11,
      /^temporary failure, try again: Contrail config API at http:\/\/127\.0\.0\.1:\d+ no answer within 500 ms during create instance-ip/
    ),
    ctl(
      'instance-ip read',
      { method: 'GET', path: /^\/instance-ip\//, status: 400, body: 'injected' },
      102,
      /refused read instance-ip .* \(HTTP 400\)/
    ),
    {
      step: 'agent port (500)',
      fault: () =>
        agent.inject({
          method: 'POST',
          path: '/port',
          status: 500,
          body: '{"error":"{ Invalid data for <vm-project-id> }"}'
        }),
      code: 11,
      says: /^vRouter agent refused add port .* \(HTTP 500\)/
    },
    {
      step: 'agent port (400)',
      fault: () => agent.inject({ method: 'POST', path: '/port', status: 400, body: 'bad port' }),
      code: 102,
      says: /^vRouter agent refused add port .* \(HTTP 400\): bad port$/
    },
    {
      step: 'agent unreachable',
      fault: () => agent.inject({ method: 'POST', path: '/port', reset: true }),
      code: 11,
      says: /^temporary failure, try again: vRouter agent at http:\/\/127\.0\.0\.1:\d+ unreachable .* during add port/
    }
  ]

  for (const [i, s] of steps.entries()) {
    it(`ADD failing at the ${s.step} gives code ${s.code} and leaves nothing in the controller, the agent, the kernel or the store`, async () => {
      const ns = scope.addNetns(`f${i}`)
      const freshBridge = s.fresh === true ? scope.bridge(`n${i}`) : bridge
      const c = s.fresh === true ? conf({ name: `ctl-${scope.id}-n${i}`, bridge: freshBridge }) : conf()
      const networksBefore = files('networks').length
      s.fault()
      const e = failed(await invoke(runtime, env('ADD', `ctr-f${i}`, ns.path), c), s.code)
      contrail.clearFaults()
      agent.clearFaults()
      assert.match(e.details, s.says)
      assert.deepEqual(created(), [], 'no controller object')
      assert.equal(agent.ports().size, 0, 'no agent port')
      assert.deepEqual(linkNames(ns.name), ['lo'], 'nothing in the namespace')
      assert.deepEqual(bridgePorts(freshBridge), [], 'nothing on the bridge')
      assert.deepEqual(files('endpoints'), [], 'no endpoint record')
      if (s.fresh === true) {
        assert.equal(files('networks').length, networksBefore, 'no network record')
        assert.ok(!linkNames().includes(freshBridge), 'no bridge')
      }
    })
  }

  it('an ADD killed while the controller holds its instance-ip create leaves objects behind; the DEL the runtime sends next removes them', async () => {
    const ns = scope.addNetns('kill')
    contrail.inject({ method: 'POST', path: '/instance-ips', hang: true })
    const hung = contrail.nextHang()
    const child = spawn(sea, [], {
      env: { PATH: '/usr/bin', ...env('ADD', 'ctr-kill', ns.path) },
      stdio: ['pipe', 'ignore', 'ignore']
    })
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    scope.finally(() => {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        process.kill(child.pid, 'SIGKILL')
      }
    })
    child.stdin.end(JSON.stringify(conf({}, { timeoutMs: 30_000 })))
    await hung
    assert.ok(child.pid !== undefined)
    process.kill(child.pid, 'SIGKILL')
    await exited
    contrail.clearFaults()
    assert.deepEqual(
      created()
        .map((o) => o.split(' ')[0])
        .sort(),
      ['virtual-machine', 'virtual-machine-interface'],
      'what the killed ADD made'
    )
    assert.deepEqual(files('endpoints'), [], 'and no record')
    const d = await invoke(runtime, env('DEL', 'ctr-kill', ns.path), conf())
    assert.deepEqual([d.exitCode, d.stdout], [0, ''], d.stdout)
    assert.deepEqual(created(), [])
    assert.equal(agent.ports().size, 0)
  })

  // ---------------------------------------------------------------------------------
  // the netconf and the credentials
  // ---------------------------------------------------------------------------------

  it('credentials never come from the netconf, and never show: an inline password, missing ones, a wrong one', async () => {
    const ns = scope.addNetns('k')
    const inline = failed(
      await invoke(
        runtime,
        env('ADD', 'ctr-k', ns.path),
        conf({}, { keystone: { url: contrail.keystoneV3, password: 'inline-secret-value' } })
      ),
      7
    )
    assert.match(inline.details, /contrail\.keystone: expected only url, version and credentialsFile .*not password/)
    assert.ok(!inline.details.includes('inline-secret-value'))
    const userinfo = failed(
      await invoke(
        runtime,
        env('ADD', 'ctr-k', ns.path),
        conf({}, { api: contrail.url.replace('http://', 'http://admin:inline-secret-value@') })
      ),
      7
    )
    assert.ok(!JSON.stringify(userinfo).includes('inline-secret-value'))
    const missing = failed(await invoke(runtime, env('ADD', 'ctr-k', ns.path, {}), conf()), 7)
    assert.equal(
      missing.details,
      'invalid configuration: keystone needs OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME in the environment (or contrail.keystone.credentialsFile)'
    )
    const noFile = failed(
      await invoke(
        runtime,
        env('ADD', 'ctr-k', ns.path, {}),
        conf({}, { keystone: { url: contrail.keystoneV3, credentialsFile: '/nonexistent/contrail.openrc' } })
      ),
      7
    )
    assert.equal(
      noFile.details,
      'invalid configuration: cannot read contrail.keystone.credentialsFile /nonexistent/contrail.openrc: ENOENT'
    )
    const wrong = failed(
      await invoke(runtime, env('ADD', 'ctr-k', ns.path, { ...OS_VARS, OS_PASSWORD: 'wrong-password-xyz' }), conf()),
      102
    )
    assert.match(wrong.details, /authenticate with keystone \(HTTP 401\)/)
    assert.ok(!wrong.details.includes('wrong-password-xyz'))
    // a VN with two subnets needs contrail.subnet; ipam.ranges is refused rather than ignored
    const two = failed(
      await invoke(
        runtime,
        env('ADD', 'ctr-k', ns.path),
        conf({ name: `ctl-${scope.id}-two`, bridge: scope.bridge('t') }, { network: 'two-subnets' })
      ),
      7
    )
    assert.match(two.details, /has 2 subnets: name one \(docker --subnet, CNI contrail\.subnet\)/)
    const ranges = failed(
      await invoke(runtime, env('ADD', 'ctr-k', ns.path), conf({ ipam: { ranges: [[{ subnet: cidr }]] } })),
      7
    )
    assert.match(ranges.details, /remove ipam\.ranges \(name a subnet with contrail\.subnet\)/)
    // the same network name without the contrail section is another network: refused
    const { contrail: _c, ...plain } = conf({ ipam: { ranges: [[{ subnet: cidr }]] } })
    const other = failed(await invoke(runtime, env('ADD', 'ctr-k', ns.path), plain), 7)
    assert.equal(other.msg, 'network exists with another controller binding')
    assert.deepEqual(created(), [])
    assert.deepEqual(linkNames(ns.name), ['lo'])
    // in all of the above and everything before, at debug level: no password, no token in the log
    const log = readFileSync(logFile, 'utf8')
    assert.ok(log.length > 0)
    for (const secret of [USER.password, 'inline-secret-value', 'wrong-password-xyz']) {
      assert.ok(!log.includes(secret), 'no secret in the log')
    }
    const tokens = new Set(
      contrail.journal.map((e) => e.headers['x-auth-token']).filter((t): t is string => typeof t === 'string')
    )
    assert.ok(tokens.size > 0)
    for (const t of tokens) assert.ok(!log.includes(t), 'no token in the log')
  })

  it('GC deletes the controller objects and agent port of every attachment not in cni.dev/valid-attachments', async () => {
    const g1 = scope.addNetns('g1')
    const g2 = scope.addNetns('g2')
    ok(await invoke(runtime, env('ADD', 'ctr-g1', g1.path), conf()))
    const r2 = ok(await invoke(runtime, env('ADD', 'ctr-g2', g2.path), conf()))
    assert.equal(created().length, 6)
    const gc = await invoke(
      runtime,
      { ...cniEnv('GC'), ...OS_VARS },
      { ...conf({ cniVersion: '1.1.0' }), 'cni.dev/valid-attachments': [{ containerID: 'ctr-g1', ifname: 'eth0' }] }
    )
    assert.deepEqual([gc.exitCode, gc.stdout], [0, ''], gc.stdout)
    assert.equal(created().length, 3, "only ctr-g1's interface, VM and instance-ip")
    assert.equal(agent.ports().size, 1)
    assert.ok(
      !contrail
        .objects('instance-ip')
        .some((o) => `${String(o.props['instance_ip_address'])}/24` === r2.ips?.[0]?.address)
    )
    assert.deepEqual(linkNames(g2.name), ['lo'])
    assert.equal((await invoke(runtime, env('DEL', 'ctr-g1', g1.path), conf())).exitCode, 0)
    assert.deepEqual(created(), [])
    assert.equal(agent.ports().size, 0)
  })

  // ---------------------------------------------------------------------------------
  // the built executable
  // ---------------------------------------------------------------------------------

  it('the SEA executable under a minimal environment: ADD with a credentials file (keystone v2) and with OS_* variables (v3), they reach each other, a failure leaves nothing, DEL removes all', async () => {
    const c = scope.addNetns('sc')
    const d = scope.addNetns('sd')
    const e = scope.addNetns('se')
    // What a runtime with a minimal environment passes: no node on PATH, no HOME.
    const minimal = (command: string, cid: string, netns: string, extra: Record<string, string> = {}) => ({
      PATH: '/usr/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: cid,
      CNI_NETNS: netns,
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/opt/cni/bin',
      ...extra
    })
    const v2 = conf({}, { subnet: cidr, keystone: { url: contrail.keystoneV2, version: 'v2', credentialsFile } })
    const rc = ok(await execPlugin(sea, minimal('ADD', 'sea-c', c.path), v2))
    const rd = ok(await execPlugin(sea, minimal('ADD', 'sea-d', d.path, OS_VARS), conf()))
    const ipC = rc.ips?.[0]?.address.split('/')[0] ?? ''
    const ipD = rd.ips?.[0]?.address.split('/')[0] ?? ''
    assert.deepEqual(addresses('eth0', c.name), [`${ipC}/24`])
    assert.equal(link('eth0', d.name)?.address, rd.interfaces?.[2]?.mac)
    assert.ok(contrail.calls('POST', '/v2.0/tokens').length >= 1, 'keystone v2 was used')
    assert.equal(agent.ports().size, 2)
    assert.equal(created().length, 6)
    assert.ok(pings(c.name, ipD), 'C reaches D')

    agent.inject({
      method: 'POST',
      path: '/port',
      status: 500,
      body: '{"error":"{ Invalid data for <vm-project-id> }"}'
    })
    const bad = await execPlugin(sea, minimal('ADD', 'sea-e', e.path, OS_VARS), conf())
    agent.clearFaults()
    const err = failed(bad, 11)
    assert.equal(err.msg, 'forwarding agent error')
    assert.equal(bad.stderr, '')
    assert.deepEqual(linkNames(e.name), ['lo'])
    assert.equal(created().length, 6, 'only C and D')
    assert.equal(agent.ports().size, 2)

    for (const [cid, ns, extra] of [
      ['sea-c', c.path, {}],
      ['sea-d', d.path, OS_VARS]
    ] as const) {
      const out = await execPlugin(sea, minimal('DEL', cid, ns, extra), cid === 'sea-c' ? v2 : conf())
      assert.deepEqual([out.exitCode, out.stdout], [0, ''], out.stdout + out.stderr)
    }
    assert.deepEqual(created(), [])
    assert.equal(agent.ports().size, 0)
    assert.deepEqual(files('endpoints'), [])
    assert.deepEqual(bridgePorts(), [])
  })
})
