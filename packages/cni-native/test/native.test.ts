/**
 * The native CNI client (packages/cni-native/dist/isthmus) as a runtime runs it: a static
 * program that answers VERSION itself and hands every other call to the daemon (here
 * `cniHandoffServer` in this process, as `isthmus serve` runs it). With no daemon it runs the
 * Node fallback beside it (`isthmus-node`, the SEA) when that is installed, else answers code 11;
 * a daemon that took the call and answered nothing is code 11 and the fallback never runs.
 */
import { strict as assert } from 'node:assert'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, readFileSync, statSync, symlinkSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ABOUT, runSkel } from '@isthmus/cni-exec'
import type { RawEnv } from '@isthmus/cni-exec/protocol'
import { planHandoff } from '@isthmus/cni-plugin'
import type { Logger } from '@isthmus/core'
import type { HandoffServer } from '@isthmus/handoff'
import { waitUntil } from '@isthmus/testkit'
import { cniHandoffServer, linuxRuntime } from '@isthmus/wiring'
import {
  addresses,
  cniEnv,
  errorDoc,
  fakeDaemon,
  hasStackTrace,
  linkNames,
  pings,
  realRuntime,
  requireRoot,
  Scope
} from '../../cni-plugin/test/support.js'
import {
  buildClient,
  buildSea,
  CLIENT,
  programHeaderTypes,
  PT_DYNAMIC,
  PT_INTERP,
  root,
  run,
  SEA,
  type Run
} from './support.js'

const scope = new Scope()
const dir = scope.tmpDir('native')
const stateDir = scope.tmpDir('state')
const socket = join(dir, 'cni.sock')
const nobody = join(dir, 'nobody.sock')
const bridge = scope.bridge('n')
// Bin directories as `isthmus cni install` makes them: the client alone, and the client (also
// under another name) with the fallback beside it.
const bare = join(dir, 'bare', 'isthmus')
const withFallback = join(dir, 'fb', 'isthmus')
const renamed = join(dir, 'fb', 'mycni')
// A client built with the test daemon's socket as its default (build.mjs --set).
const defaulted = join(dir, 'dflt', 'isthmus')

const conf = (over: Record<string, unknown> = {}) => ({
  cniVersion: '1.0.0',
  name: `native-${scope.id}`,
  type: 'isthmus',
  bridge,
  isGateway: true,
  stateDir,
  chainPrefix: scope.chainPrefix,
  daemon: socket,
  ipam: { ranges: [[{ subnet: '10.231.70.0/24' }]] },
  ...over
})
const env = (command: string, cid: string, netns = '/var/run/netns/none'): RawEnv =>
  cniEnv(command, { cid, netns, ifName: 'eth0' })
const call = (file: string, e: RawEnv, stdin: unknown): Promise<Run> =>
  run(file, e, typeof stdin === 'string' || Buffer.isBuffer(stdin) ? stdin : JSON.stringify(stdin))
const ipsOf = (r: Run): string[] | undefined =>
  (r.doc?.['ips'] as Array<{ address: string }> | undefined)?.map((i) => i.address)

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

/** A daemon stand-in that keeps each request's bytes and answers `reply`. */
const recorder = async (path: string, reply: string): Promise<{ readonly requests: string[] }> => {
  const requests: string[] = []
  const server: Server = createServer({ allowHalfOpen: true }, (c) => {
    const chunks: Buffer[] = []
    c.on('error', () => undefined)
    c.on('data', (d: Buffer) => chunks.push(d))
    c.on('end', () => {
      requests.push(Buffer.concat(chunks).toString('utf8'))
      c.end(reply)
    })
  })
  await new Promise<void>((r) => server.listen(path, () => r()))
  scope.finally(() => new Promise<void>((r) => server.close(() => r())))
  return { requests }
}

describe('the native CNI client', () => {
  let daemon: HandoffServer | undefined
  before(async () => {
    requireRoot()
    // Incremental: no-ops after `pnpm build` (CI builds before testing).
    buildClient()
    buildSea()
    buildClient(['--out', defaulted, '--set', `defaultSocket=${socket}`])
    mkdirSync(join(dir, 'bare'))
    mkdirSync(join(dir, 'fb'))
    copyFileSync(CLIENT, bare)
    copyFileSync(CLIENT, withFallback)
    copyFileSync(CLIENT, renamed)
    for (const f of [bare, withFallback, renamed]) chmodSync(f, 0o755)
    symlinkSync(SEA, join(dir, 'fb', 'isthmus-node'))
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

  it('is a static ELF program under 5 MB: no interpreter, no shared library, nothing needed on PATH', async () => {
    const types = programHeaderTypes(CLIENT)
    assert.ok(!types.includes(PT_INTERP), 'no PT_INTERP: the kernel runs it without ld.so')
    assert.ok(!types.includes(PT_DYNAMIC), 'no PT_DYNAMIC: no shared library')
    assert.ok(statSync(CLIENT).size < 5 << 20, `${statSync(CLIENT).size} bytes`)
    for (const e of [{ CNI_COMMAND: 'VERSION' }, { CNI_COMMAND: 'VERSION', PATH: '' }]) {
      const v = await run(CLIENT, e, '')
      assert.deepEqual([v.exitCode, v.stderr], [0, ''])
    }
  })

  it('is Go of the standard library only, gofmt-formatted, and go vet finds nothing', () => {
    const src = join(root, 'packages/cni-native/src')
    const goEnv = { ...process.env, CGO_ENABLED: '0', GOFLAGS: '', GOPROXY: 'off', GOTOOLCHAIN: 'local' }
    assert.equal(execFileSync('gofmt', ['-l', '.'], { cwd: src, encoding: 'utf8' }), '')
    execFileSync('go', ['vet', '.'], { cwd: src, env: goEnv, stdio: 'pipe' })
    const imports = execFileSync('go', ['list', '-f', '{{join .Imports " "}}', '.'], {
      cwd: src,
      env: goEnv,
      encoding: 'utf8'
    })
    // The standard library's import paths have no dot in their first element.
    assert.deepEqual(
      imports
        .trim()
        .split(' ')
        .filter((i) => i.split('/')[0]!.includes('.')),
      []
    )
    assert.equal(readFileSync(join(src, 'go.mod'), 'utf8').includes('require'), false, 'no module required')
  })

  it('answers VERSION itself, byte for byte as the envelope and the Node executable, whatever stdin holds', async () => {
    const envelope = await runSkel(realRuntime())({ CNI_COMMAND: 'VERSION' }, '')
    const sea = await run(SEA, { CNI_COMMAND: 'VERSION' }, '')
    assert.equal(sea.stdout, envelope.stdout)
    for (const stdin of [
      '',
      '{"cniVersion":"0.3.1"}',
      JSON.stringify(conf({ cniVersion: '0.4.0', daemon: nobody })),
      JSON.stringify(conf({ cniVersion: '1.1.0' })),
      'not json',
      'x'.repeat(2 << 20)
    ]) {
      const v = await run(bare, { CNI_COMMAND: 'VERSION' }, stdin)
      assert.deepEqual([v.exitCode, v.stdout, v.stderr], [0, envelope.stdout, ''], stdin.slice(0, 80))
    }
  })

  it('with CNI_COMMAND unset, prints the about text on stderr as the envelope does, without reading stdin', async () => {
    // stdin is left open: a client that read it would wait for ever (and be killed at 10 s).
    const about = await run(bare, { PATH: '' }, undefined, 10_000)
    assert.deepEqual([about.exitCode, about.stdout, about.stderr], [0, '', ABOUT])
  })

  it('ADD, CHECK and DEL go to the daemon: the sandbox is addressed and reaches its gateway; DEL leaves nothing', async () => {
    const ns = scope.addNetns('a')
    const before = calls.length
    // The runtime's PATH does not matter: the client looks up nothing, the daemon has its own.
    const e = { ...env('ADD', 'n1', ns.path), PATH: '' }
    const add = await call(bare, e, conf())
    assert.equal(add.exitCode, 0, add.stdout + add.stderr)
    const ips = ipsOf(add)
    assert.ok(ips?.length === 1 && ips[0]!.startsWith('10.231.70.'), add.stdout)
    assert.deepEqual(addresses('eth0', ns.name), ips)
    assert.ok(pings(ns.name, '10.231.70.1'))
    const check = await call(bare, { ...e, CNI_COMMAND: 'CHECK' }, { ...conf(), prevResult: add.doc })
    assert.deepEqual([check.exitCode, check.stdout], [0, ''])
    const del = await call(bare, { ...e, CNI_COMMAND: 'DEL' }, conf())
    assert.deepEqual([del.exitCode, del.stdout, del.stderr], [0, '', ''])
    assert.deepEqual(
      calls.slice(before).map((c) => [c['command'], c['containerId'], c['exitCode']]),
      [
        ['ADD', 'n1', 0],
        ['CHECK', 'n1', 0],
        ['DEL', 'n1', 0]
      ]
    )
    // The daemon answers DEL before the kernel has removed the pair (deferLinkRemoval).
    await waitUntil('the sandbox interface to go', () => Promise.resolve(!linkNames(ns.name).includes('eth0')), 5_000)
  })

  it('no daemon and no fallback: code 11 naming the socket and both ways out, exit 1, one JSON document', async () => {
    // Nothing at the path, then a socket file nobody listens on (a daemon killed with SIGKILL).
    const stale = join(dir, 'stale.sock')
    const listenAndDie = `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`
    spawnSync(process.execPath, ['-e', listenAndDie])
    assert.ok(statSync(stale).isSocket())
    for (const [i, path, cause] of [
      [0, nobody, 'no such file or directory'],
      [1, stale, 'connect: connection refused']
    ] as const) {
      const ns = scope.addNetns(`x${i}`)
      const add = await call(bare, env('ADD', 'n2', ns.path), conf({ daemon: path }))
      const doc = errorDoc(add)
      assert.deepEqual([doc.code, doc.msg, doc.cniVersion], [11, 'isthmus daemon not reachable', '1.0.0'])
      const details = doc.details ?? ''
      assert.ok(details.startsWith(`no isthmus daemon answers on ${path} (${cause})`), details)
      assert.ok(details.includes('`isthmus serve`') && details.includes('`isthmus cni install --fallback`'), details)
      assert.equal(add.stderr, '', 'no daemon is the ordinary case: nothing on stderr')
      assert.ok(!linkNames(ns.name).includes('eth0'))
    }
    // A cniVersion that is not x.y.z: the error speaks the newest version.
    const odd = await call(bare, env('ADD', 'n2'), conf({ daemon: nobody, cniVersion: 'latest' }))
    assert.deepEqual([errorDoc(odd).code, errorDoc(odd).cniVersion], [11, '1.1.0'])
  })

  it('no daemon, the fallback installed: the fallback runs the call, under the name the client was run as', async () => {
    const ns = scope.addNetns('f')
    const before = calls.length
    const add = await call(withFallback, env('ADD', 'n3', ns.path), conf({ daemon: nobody }))
    assert.equal(add.exitCode, 0, add.stdout + add.stderr)
    assert.deepEqual(addresses('eth0', ns.name), ipsOf(add))
    assert.equal(add.stderr, '')
    const del = await call(withFallback, env('DEL', 'n3', ns.path), conf({ daemon: nobody }))
    assert.deepEqual([del.exitCode, del.stdout], [0, ''])
    assert.ok(!linkNames(ns.name).includes('eth0'))
    // `type` and `ipam.type` name the client's file: the fallback answers to that name too
    // (ISTHMUS_CNI_NAME), so the IPAM is its own, not a plugin looked for in CNI_PATH.
    const named = conf({
      type: 'mycni',
      daemon: nobody,
      ipam: { type: 'mycni', ranges: [[{ subnet: '10.231.70.0/24' }]] }
    })
    const ns2 = scope.addNetns('g')
    const add2 = await call(renamed, env('ADD', 'n4', ns2.path), named)
    assert.equal(add2.exitCode, 0, add2.stdout + add2.stderr)
    assert.deepEqual(addresses('eth0', ns2.name), ipsOf(add2))
    const del2 = await call(renamed, env('DEL', 'n4', ns2.path), named)
    assert.equal(del2.exitCode, 0, del2.stdout)
    assert.equal(calls.length, before, 'the daemon ran none of them')
  })

  it('a daemon that refuses: the fallback runs the call (and does not ask the daemon again); without one, code 11', async () => {
    const path = join(dir, 'refusing.sock')
    const fake = await fakeDaemon(scope, path, (c) => c.end(JSON.stringify({ refused: 'too many connections (128)' })))
    const ns = scope.addNetns('r')
    const add = await call(withFallback, env('ADD', 'n5', ns.path), conf({ daemon: path }))
    assert.equal(add.exitCode, 0, add.stdout + add.stderr)
    assert.deepEqual(addresses('eth0', ns.name), ipsOf(add))
    assert.equal(fake.accepted(), 1, 'the fallback ran the call itself (ISTHMUS_CNI_FALLBACK)')
    const del = await call(withFallback, env('DEL', 'n5', ns.path), conf({ daemon: false }))
    assert.equal(del.exitCode, 0, del.stdout)
    const bareAdd = await call(bare, env('ADD', 'n6', ns.path), conf({ daemon: path }))
    const doc = errorDoc(bareAdd)
    assert.equal(doc.code, 11)
    assert.ok(doc.details?.includes(`the isthmus daemon on ${path} refused the call (too many connections (128))`))
  })

  it('a daemon that takes the request and answers nothing usable: code 11, and the fallback does not run', async () => {
    const mute = join(dir, 'mute.sock')
    const odd = join(dir, 'odd.sock')
    const fakes = [
      await fakeDaemon(scope, mute, (c) => c.destroy()),
      await fakeDaemon(scope, odd, (c) => c.end('{"stdout": 3}'))
    ]
    const ns = scope.addNetns('m')
    for (const [path, why] of [
      [mute, 'the daemon closed the connection without an answer'],
      [odd, 'the daemon answered something else']
    ] as const) {
      const add = await call(withFallback, env('ADD', 'n7', ns.path), conf({ daemon: path }))
      const doc = errorDoc(add)
      assert.deepEqual([doc.code, doc.msg, doc.cniVersion], [11, 'isthmus daemon did not answer', '1.0.0'])
      assert.equal(doc.details, `${path}: ${why}`)
    }
    assert.deepEqual(
      fakes.map((f) => f.accepted()),
      [1, 1]
    )
    assert.ok(!linkNames(ns.name).includes('eth0'), 'the call was not run a second time')
  })

  it('a socket others could write to, or in such a directory, is not used: one line on stderr says why', async () => {
    const open = join(dir, 'open.sock')
    const openDir = join(dir, 'open')
    mkdirSync(openDir)
    const inOpenDir = join(openDir, 'cni.sock')
    const fakes = [
      await fakeDaemon(scope, open, (c) => c.end('{"stdout":"","stderr":"","exitCode":0}')),
      await fakeDaemon(scope, inOpenDir, (c) => c.end('{"stdout":"","stderr":"","exitCode":0}'))
    ]
    chmodSync(open, 0o666)
    chmodSync(openDir, 0o777)
    for (const [path, why] of [
      [open, `${open} is writable by group or others (mode 666)`],
      [inOpenDir, `directory ${openDir} is writable by group or others (mode 777) and not sticky`]
    ] as const) {
      const add = await call(bare, env('ADD', 'n8'), conf({ daemon: path }))
      assert.equal(add.stderr, `isthmus: not handing the call to the daemon: ${why}\n`)
      const doc = errorDoc(add)
      assert.equal(doc.code, 11)
      assert.ok(doc.details?.includes(`the socket ${path} is not used: ${why}`), doc.details)
    }
    assert.deepEqual(
      fakes.map((f) => f.accepted()),
      [0, 0]
    )
  })

  it('a cluster netconf with no daemon: code 11 naming the cluster and the socket, even with the fallback', async () => {
    const ns = scope.addNetns('c')
    const add = await call(withFallback, env('ADD', 'n9', ns.path), conf({ cluster: 'blue', daemon: nobody }))
    const doc = errorDoc(add)
    assert.deepEqual([doc.code, doc.msg], [11, 'isthmus daemon not reachable'])
    assert.ok(doc.details?.startsWith(`cluster network blue is served by \`isthmus serve --cluster\` on ${nobody}`))
    assert.equal(add.stderr, '')
    assert.ok(!linkNames(ns.name).includes('eth0'))
  })

  it('"daemon": false runs the fallback; without one it is code 7 saying what to install', async () => {
    const ns = scope.addNetns('o')
    const before = calls.length
    const add = await call(withFallback, env('ADD', 'n10', ns.path), conf({ daemon: false }))
    assert.equal(add.exitCode, 0, add.stdout + add.stderr)
    assert.deepEqual(addresses('eth0', ns.name), ipsOf(add))
    const del = await call(withFallback, env('DEL', 'n10', ns.path), conf({ daemon: false }))
    assert.equal(del.exitCode, 0, del.stdout)
    const refused = await call(bare, env('ADD', 'n11', ns.path), conf({ daemon: false, cniVersion: '0.4.0' }))
    const doc = errorDoc(refused)
    assert.deepEqual([doc.code, doc.msg, doc.cniVersion], [7, 'invalid network config', '0.4.0'])
    assert.ok(doc.details?.includes('`isthmus cni install --fallback`'), doc.details)
    assert.equal(calls.length, before)
  })

  it("hostile stdin, missing variables, an unknown command: the daemon's envelope answers, as in the process", async () => {
    const full = cniEnv('ADD', { cid: 'n12', netns: '/var/run/netns/none', ifName: 'eth0' })
    const cases: Array<[RawEnv, string]> = [
      [full, `{"cniVersion":"1.0.0","name":"big","pad":"${'x'.repeat(2 << 20)}"}`],
      [full, 'not json at all'],
      [full, ''],
      [full, '[1, 2]'],
      [{ ...full, CNI_NETNS: undefined, CNI_IFNAME: undefined }, JSON.stringify(conf())],
      [{ ...full, CNI_COMMAND: 'BOGUS' }, JSON.stringify(conf())],
      [{ ...full, CNI_IFNAME: 'x'.repeat(40) }, JSON.stringify(conf())]
    ]
    for (const [e, stdin] of cases) {
      const before = calls.length
      // `defaulted`: a netconf with no usable "daemon" goes to the default socket, here the test daemon's.
      const got = await run(defaulted, e, stdin)
      const want = await runSkel(realRuntime())(e, stdin)
      assert.equal(calls.length, before + 1, 'the daemon ran it')
      assert.deepEqual([got.exitCode, got.stdout], [want.exitCode, want.stdout], stdin.slice(0, 60))
      errorDoc(got)
      assert.ok(!hasStackTrace(got.stdout + got.stderr))
    }
  })

  it('sends the request the Node client builds (planHandoff), byte for byte, and prints the reply as it came', async () => {
    const path = join(dir, 'recorder.sock')
    const rec = await recorder(path, JSON.stringify({ stdout: '{"out":1}', stderr: 'a line\n', exitCode: 3 }))
    const base = cniEnv('ADD', { cid: 'n13', netns: '/var/run/netns/n13', ifName: 'eth0' })
    const secrets = { OS_USERNAME: 'admin', OS_PASSWORD: 'hunter2', OS_PROJECT_NAME: 'demo', HOME: '/root' }
    const keystone = {
      api: 'http://127.0.0.1:1',
      tenant: 't',
      network: 'n',
      keystone: { url: 'http://127.0.0.1:1/v3' }
    }
    const text = (c: Record<string, unknown>) => Buffer.from(JSON.stringify(c))
    const cases: Array<{ file: string; selfNames: string[]; env: RawEnv; stdin: Buffer }> = [
      { file: bare, selfNames: ['isthmus'], env: { ...base, ...secrets }, stdin: text(conf({ daemon: path })) },
      {
        file: bare,
        selfNames: ['isthmus'],
        env: { ...base, ...secrets, CNI_ARGS: undefined, CNI_PATH: '' },
        stdin: text(conf({ daemon: path, contrail: keystone }))
      },
      {
        file: renamed,
        selfNames: ['isthmus', 'mycni'],
        // Any byte but NUL may be in a variable: control characters are escaped as JSON.stringify does.
        env: { ...base, CNI_ARGS: 'IgnoreUnknown=1;X=\x01\x1f\t\n\r\b\f"\\<>&\u2028\x7f' },
        stdin: Buffer.concat([
          Buffer.from(`{"daemon":${JSON.stringify(path)},"name":"n <&> \u2028\u2029 é 💡 \\u0001 \\t \x7f","bad":"`),
          // invalid UTF-8: a truncated 3-byte sequence, a surrogate, a stray continuation, a lone lead
          Buffer.from([0xe2, 0x82, 0x41, 0xed, 0xa0, 0x80, 0x80, 0xf0, 0x9f, 0x22, 0x7d])
        ])
      }
    ]
    for (const c of cases) {
      const out = await run(c.file, c.env, c.stdin)
      const plan = planHandoff(c.env, c.stdin.toString('utf8'), c.selfNames)
      assert.equal(plan._tag, 'HandOff')
      assert.equal(rec.requests.at(-1), plan._tag === 'HandOff' ? JSON.stringify(plan.request) : '')
      assert.deepEqual([out.exitCode, out.stdout, out.stderr], [3, '{"out":1}', 'a line\n'])
    }
    assert.equal(rec.requests.length, cases.length)
    assert.ok(!rec.requests[0]!.includes('hunter2'), 'credentials only for a netconf with keystone')
    assert.ok(rec.requests[1]!.includes('hunter2') && !rec.requests[1]!.includes('HOME'))
  })

  it('a bug is code 999 in one JSON document, the Go stack only on stderr', async () => {
    // A client linked with a value it cannot use panics at its start; the panic is answered.
    const broken = join(dir, 'broken', 'isthmus')
    buildClient(['--out', broken, '--set', 'maxStdinBytes=none'])
    const out = await call(broken, env('ADD', 'n15'), conf())
    const doc = errorDoc(out)
    assert.deepEqual(
      [doc.code, doc.msg, doc.cniVersion],
      [999, 'internal error in the isthmus plugin (see its log)', '1.1.0']
    )
    assert.ok(doc.details?.includes('maxStdinBytes is "none", not a positive number'), doc.details)
    assert.ok(!(doc.details ?? '').includes('\n') && !out.stdout.includes('goroutine'))
    assert.match(out.stderr, /^isthmus: internal error: .*\ngoroutine 1 \[running\]:/)
  })

  it('a runtime that stops reading stdout does not kill the client with SIGPIPE', async () => {
    const path = join(dir, 'slow.sock')
    const big = JSON.stringify({ stdout: 'x'.repeat(1 << 20), stderr: '', exitCode: 0 })
    await fakeDaemon(scope, path, (c) => setTimeout(() => c.end(big), 300))
    const child = spawn(bare, [], { env: env('ADD', 'n14'), stdio: ['pipe', 'pipe', 'ignore'] })
    child.stdout.destroy()
    child.stdin.end(JSON.stringify(conf({ daemon: path })))
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) =>
      child.on('exit', (c, s) => r([c, s]))
    )
    assert.deepEqual([code, signal], [0, null])
  })
})
