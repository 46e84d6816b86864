/**
 * What the hand-off sends and to whom, and what the daemon's side bounds. Through the built
 * executable (the Node SEA) and raw connections:
 *
 * - the request carries the call's CNI variables and, only for a netconf with a Contrail keystone,
 *   the OS_* credentials; never the rest of the environment; the daemon drops any other variable
 *   and refuses the old whole-environment protocol (v1);
 * - the plugin hands off only to a socket owned by root and writable by nobody else, in
 *   directories nobody else can change; otherwise it runs the call itself and says why on stderr;
 * - the daemon drops a client that sends nothing or half a request, refuses one connection over
 *   its cap (that plugin runs the call itself), and `close` ends idle connections at once while a
 *   call in flight still gets its answer.
 */
import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import { chmodSync, chownSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { silentLogger } from '@isthmus/core'
import { HANDOFF_VERSION, trustedSocket, type HandoffServer } from '@isthmus/handoff'
import { cniHandoffServer } from '@isthmus/wiring'
import type { Runtime } from '@isthmus/cni-exec'
import type { RawEnv } from '@isthmus/cni-exec/protocol'
import { cniEnv, execPlugin, fakeDaemon, fakeRuntime, rawHandoff, requireRoot, Scope } from './support.js'

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..')
const sea = join(root, 'packages/cni-plugin/dist/sea/isthmus')
const scope = new Scope()
const dir = scope.tmpDir('guard')
const stateDir = scope.tmpDir('state')
const statusConf = (daemon: string, over: Record<string, unknown> = {}) => ({
  cniVersion: '1.1.0',
  name: `guard-${scope.id}`,
  type: 'isthmus',
  stateDir,
  chainPrefix: scope.chainPrefix,
  daemon,
  ...over
})
const STATUS_ENV = cniEnv('STATUS', {})

// A daemon over fake ports (STATUS answers from the memory store) that records each call's variables.
const seen: RawEnv[] = []
const fakePorts = fakeRuntime()
const recording = (e: RawEnv): Runtime => {
  seen.push(e)
  return fakePorts.runtime
}
const start = (socket: string, more: Partial<Parameters<typeof cniHandoffServer>[0]> = {}) =>
  cniHandoffServer({ socket, runtime: recording, log: silentLogger, ...more })
// `f` with such a daemon listening at `socket`, closed afterwards.
const serving = async (
  socket: string,
  more: Partial<Parameters<typeof cniHandoffServer>[0]>,
  f: () => Promise<void>
): Promise<void> => {
  const daemon = await start(socket, more)
  try {
    await f()
  } finally {
    await daemon.close()
  }
}

const idle = (socket: string): Promise<Socket> =>
  new Promise((res, rej) => {
    const c = connect(socket)
    c.on('connect', () => res(c))
    c.on('error', rej)
  })
const closed = (c: Socket): Promise<void> => new Promise((r) => (c.destroyed ? r() : c.once('close', () => r())))

after(() => scope.cleanup())

describe('hand-off: what the plugin sends', () => {
  before(() => {
    requireRoot()
    execFileSync(process.execPath, [join(root, 'packages/cni-plugin/scripts/build.mjs')], { stdio: 'ignore' })
  })

  const secretEnv = {
    OS_USERNAME: 'admin',
    OS_PASSWORD: 'hunter2-secret',
    OS_PROJECT_NAME: 'p',
    HOME: '/root',
    AWS_SECRET_ACCESS_KEY: 'aws-secret',
    CNI_FOO: 'x'
  }
  const capture = async (path: string, conf: Record<string, unknown>) => {
    const requests: string[] = []
    await fakeDaemon(scope, path, (c, text) => {
      requests.push(text)
      c.end(JSON.stringify({ stdout: '', stderr: '', exitCode: 0 }))
    })
    const out = await execPlugin(
      sea,
      { ...cniEnv('DEL', { cid: 'g1', ifName: 'eth0' }), ...secretEnv },
      { ...conf, daemon: path }
    )
    assert.equal(out.exitCode, 0, out.stdout + out.stderr)
    assert.equal(requests.length, 1)
    return { raw: requests[0]!, request: JSON.parse(requests[0]!) as { v: number; env: Record<string, string> } }
  }

  it('the CNI variables only; no other variable of the environment', async () => {
    const { raw, request } = await capture(join(dir, 'plain.sock'), statusConf(''))
    assert.equal(request.v, HANDOFF_VERSION)
    assert.deepEqual(Object.keys(request.env).sort(), [
      'CNI_ARGS',
      'CNI_COMMAND',
      'CNI_CONTAINERID',
      'CNI_IFNAME',
      'CNI_NETNS',
      'CNI_PATH'
    ])
    for (const secret of ['hunter2-secret', 'aws-secret', 'admin', 'HOME', '"PATH"']) {
      assert.ok(!raw.includes(secret), `${secret} is not sent`)
    }
  })

  it('with a Contrail keystone in the netconf, also the OS_* credentials', async () => {
    const contrail = {
      api: 'http://127.0.0.1:1',
      tenant: 't',
      network: 'n',
      keystone: { url: 'http://127.0.0.1:2/v3' }
    }
    const { raw, request } = await capture(join(dir, 'contrail.sock'), statusConf('', { contrail }))
    assert.deepEqual(
      Object.keys(request.env)
        .filter((k) => !k.startsWith('CNI_'))
        .sort(),
      ['OS_PASSWORD', 'OS_PROJECT_NAME', 'OS_USERNAME']
    )
    assert.ok(!raw.includes('aws-secret') && !raw.includes('HOME'))
  })

  it("a delegated IPAM plugin gets the runtime's environment, so that call is not handed off", async () => {
    const path = join(dir, 'delegated.sock')
    const fake = await fakeDaemon(scope, path, (c) => c.end(JSON.stringify({ stdout: '', stderr: '', exitCode: 0 })))
    const empty = scope.tmpDir('cnipath')
    const out = await execPlugin(
      sea,
      cniEnv('DEL', { cid: 'g2', ifName: 'eth0', path: empty }),
      statusConf(path, { cniVersion: '1.0.0', ipam: { type: 'host-local' } })
    )
    assert.equal(fake.accepted(), 0)
    assert.equal(out.doc?.['code'], 7, out.stdout)
  })

  it("the daemon keeps only the call's variables, under its own PATH, and refuses protocol v1", async () => {
    const socket = join(dir, 'strip.sock')
    await serving(socket, { baseEnv: { PATH: '/daemon/bin' } }, async () => {
      const env = { ...STATUS_ENV, EVIL: 'x', PATH: '/client/bin' }
      const r = await rawHandoff(
        socket,
        JSON.stringify({ v: HANDOFF_VERSION, env, stdin: JSON.stringify(statusConf(socket)), selfNames: ['isthmus'] })
      )
      assert.equal((JSON.parse(r.text) as { exitCode: number }).exitCode, 0, r.text)
      const got = seen.at(-1)!
      assert.equal(got['EVIL'], undefined)
      assert.equal(got['PATH'], '/daemon/bin')
      assert.equal(got['CNI_COMMAND'], 'STATUS')
      const v1 = await rawHandoff(socket, JSON.stringify({ v: 1, env, stdin: '{}', selfNames: [] }))
      assert.match((JSON.parse(v1.text) as { refused: string }).refused, /invalid hand-off request: v: expected 2/)
    })
  })
})

describe('hand-off: whom the plugin trusts', () => {
  before(requireRoot)

  it("a socket of root, mode 0600, in root's directories: trusted; its real path is the one used", async () => {
    const d = join(dir, 'ok')
    mkdirSync(d, { mode: 0o700 })
    await serving(join(d, 'cni.sock'), {}, async () => {
      assert.deepEqual(await trustedSocket(join(d, 'cni.sock')), { ok: true, path: join(d, 'cni.sock') })
      // A link from a directory anyone can write to still leads to the checked socket.
      const open = join(dir, 'open')
      mkdirSync(open)
      chmodSync(open, 0o777)
      symlinkSync(join(d, 'cni.sock'), join(open, 'link.sock'))
      assert.deepEqual(await trustedSocket(join(open, 'link.sock')), { ok: true, path: join(d, 'cni.sock') })
    })
  })

  it('refused: writable by others, owned by another user, a directory others may change, not a socket', async () => {
    const mk = async (
      name: string,
      setup: (d: string, sock: string) => void
    ): Promise<{ daemon: HandoffServer; sock: string }> => {
      const d = join(dir, name)
      mkdirSync(d, { mode: 0o755 })
      const sock = join(d, 'cni.sock')
      const daemon = await start(sock)
      setup(d, sock)
      return { daemon, sock }
    }
    const cases: Array<[string, (d: string, sock: string) => void, RegExp]> = [
      ['world', (_d, s) => chmodSync(s, 0o666), /cni\.sock is writable by group or others \(mode 666\)/],
      ['group', (_d, s) => chmodSync(s, 0o620), /writable by group or others \(mode 620\)/],
      ['owner', (_d, s) => chownSync(s, 1234, 1234), /cni\.sock is owned by uid 1234, not root/],
      [
        'opendir',
        (d) => chmodSync(d, 0o777),
        /directory .*opendir is writable by group or others \(mode 777\) and not sticky/
      ],
      ['userdir', (d) => chownSync(d, 1234, 1234), /directory .*userdir is owned by uid 1234/]
    ]
    for (const [name, setup, why] of cases) {
      const { daemon, sock } = await mk(name, setup)
      try {
        const r = await trustedSocket(sock)
        assert.ok(!r.ok && why.test(r.why), `${name}: ${JSON.stringify(r)}`)
      } finally {
        await daemon.close()
      }
    }
    // Sticky, as /tmp: nobody but the owner may replace the root-owned entries, so it is trusted.
    const { daemon, sock } = await mk('sticky', (d) => chmodSync(d, 0o1777))
    try {
      assert.equal((await trustedSocket(sock)).ok, true)
    } finally {
      await daemon.close()
    }
    writeFileSync(join(dir, 'file.sock'), '')
    const file = await trustedSocket(join(dir, 'file.sock'))
    assert.ok(!file.ok && /is not a socket/.test(file.why))
    const none = await trustedSocket(join(dir, 'none.sock'))
    assert.ok(!none.ok && none.absent === true)
  })

  it('through the executable: an untrusted socket is never sent to; the call runs in the process, and stderr says why', async () => {
    const d = join(dir, 'exe')
    mkdirSync(d, { mode: 0o755 })
    const sock = join(d, 'cni.sock')
    await serving(sock, {}, async () => {
      const before = seen.length
      chmodSync(sock, 0o666)
      const out = await execPlugin(sea, STATUS_ENV, statusConf(sock))
      assert.deepEqual([out.exitCode, out.stdout], [0, ''], out.stdout + out.stderr)
      assert.match(
        out.stderr,
        /not handing the call to the daemon, running it in this process: .*cni\.sock is writable by group or others/
      )
      assert.equal(seen.length, before, 'the daemon got nothing')
      chmodSync(sock, 0o600)
      const ok = await execPlugin(sea, STATUS_ENV, statusConf(sock))
      assert.deepEqual([ok.exitCode, ok.stderr], [0, ''])
      assert.equal(seen.length, before + 1, 'a trusted socket gets the call')
      // No daemon at all is the ordinary case: silent.
      const none = await execPlugin(sea, STATUS_ENV, statusConf(join(d, 'none.sock')))
      assert.deepEqual([none.exitCode, none.stderr], [0, ''])
    })
  })
})

describe('hand-off: what the daemon bounds', () => {
  before(requireRoot)

  it('a client that sends nothing, or half a request, is dropped after the request timeout', async () => {
    const socket = join(dir, 'timeout.sock')
    await serving(socket, { requestTimeoutMs: 300 }, async () => {
      const [nothing, half] = await Promise.all([
        rawHandoff(socket, '', false),
        rawHandoff(socket, '{"v":2,"env":{', false)
      ])
      for (const r of [nothing, half]) {
        assert.equal(r.text, '')
        assert.ok(r.closedAfterMs >= 250 && r.closedAfterMs < 2_000, `dropped after ${r.closedAfterMs} ms`)
      }
    })
  })

  it('one connection over the cap is refused, and that plugin runs the call itself', async () => {
    const socket = join(dir, 'cap.sock')
    const daemon = await start(socket, { maxConnections: 2 })
    const held = [await idle(socket), await idle(socket)]
    try {
      const r = await rawHandoff(
        socket,
        JSON.stringify({ v: HANDOFF_VERSION, env: STATUS_ENV, stdin: '{}', selfNames: [] })
      )
      assert.deepEqual(JSON.parse(r.text), { refused: 'too many connections (2)' })
      const before = seen.length
      const out = await execPlugin(sea, STATUS_ENV, statusConf(socket))
      assert.deepEqual([out.exitCode, out.stdout, out.stderr], [0, '', ''])
      assert.equal(seen.length, before, 'run in the plugin process')
    } finally {
      for (const c of held) c.destroy()
      await daemon.close()
    }
  })

  it('a request over the size limit is refused (not dropped), so the plugin runs the call itself', async () => {
    const socket = join(dir, 'size.sock')
    await serving(socket, { maxRequestBytes: 1_000 }, async () => {
      const r = await rawHandoff(
        socket,
        JSON.stringify({ v: HANDOFF_VERSION, env: STATUS_ENV, stdin: 'x'.repeat(5_000), selfNames: [] })
      )
      assert.deepEqual(JSON.parse(r.text), { refused: 'request larger than 1000 bytes' })
    })
  })

  it('close: idle clients are ended at once, a call in flight still answers, then nothing is accepted', async () => {
    const socket = join(dir, 'close.sock')
    let release: () => void = () => undefined
    const gate = new Promise<void>((r) => (release = r))
    const slow: Runtime = {
      ...fakePorts.runtime,
      open: (settings, log) =>
        TE.fromTask(async () => {
          await gate
          const s = await fakePorts.runtime.open(settings, log)()
          if (s._tag === 'Left') throw new Error('fake store did not open')
          return s.right
        })
    }
    const daemon = await start(socket, { runtime: () => slow })
    const idlers = [await idle(socket), await idle(socket), await idle(socket)]
    const inFlight = rawHandoff(
      socket,
      JSON.stringify({
        v: HANDOFF_VERSION,
        env: STATUS_ENV,
        stdin: JSON.stringify(statusConf(socket)),
        selfNames: ['isthmus']
      })
    )
    await new Promise((r) => setTimeout(r, 200))
    const started = Date.now()
    const closing = daemon.close()
    await Promise.all(idlers.map(closed))
    assert.ok(Date.now() - started < 1_000, 'idle clients ended at once, not after the request timeout')
    setTimeout(release, 300)
    await closing
    const answer = await inFlight
    assert.deepEqual(JSON.parse(answer.text), { stdout: '', stderr: '', exitCode: 0 })
    assert.ok(Date.now() - started < 3_000, `close took ${Date.now() - started} ms`)
    const after = await rawHandoff(socket, '{}')
    assert.equal(after.text, '', 'nobody listens any more')
  })
})
