/**
 * Where the plugin listens: its socket file (a stale one from a killed daemon is replaced, one a
 * live daemon serves is refused, mode 0660) and, under systemd socket activation, the socket
 * passed as fd 3 (`isthmus serve` run by systemd-socket-activate).
 */
import { strict as assert } from 'node:assert'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { pluginCall, stopChild, waitUntil } from '@isthmus/testkit'
import { createPluginApp, listen, type PluginServer } from '../src/index.js'
import { startHarness, type Harness } from './support/harness.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))

describe('listen', () => {
  let dir = ''
  let h: Harness
  const children: ChildProcess[] = []
  const servers: PluginServer[] = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'isthmus-listen-'))
    h = await startHarness()
  })
  after(async () => {
    for (const c of children) await stopChild(c, 'SIGKILL')
    for (const s of servers) await s.close()
    await h.close()
    await rm(dir, { recursive: true, force: true })
  })

  const appOf = () => createPluginApp({ env: h.env, ipam: h.ipam })

  it('replaces the socket file a killed daemon left, and serves on it with mode 0660', async () => {
    const socket = join(dir, 'stale.sock')
    // a process that listens, then dies by SIGKILL: the file stays, nobody answers on it
    const holder = spawn(process.execPath, ['-e', 'require("net").createServer().listen(process.argv[1])', socket], {
      stdio: 'ignore'
    })
    children.push(holder)
    await waitUntil('the socket file', async () => existsSync(socket), 10_000, 20)
    await stopChild(holder, 'SIGKILL')
    assert.ok((await stat(socket)).isSocket(), 'the stale socket file is still there')
    await assert.rejects(pluginCall(socket, '/Plugin.Activate'), /ECONNREFUSED/)

    const s = await listen(appOf(), { socket })
    servers.push(s)
    assert.deepEqual(await pluginCall(socket, '/Plugin.Activate'), {
      status: 200,
      body: { Implements: ['NetworkDriver', 'IpamDriver'] }
    })
    assert.equal((await stat(socket)).mode & 0o777, 0o660)
  })

  it('refuses a socket a live daemon serves, which keeps serving', async () => {
    const socket = join(dir, 'live.sock')
    const first = await listen(appOf(), { socket })
    servers.push(first)
    await assert.rejects(listen(appOf(), { socket }), { message: `another process is serving ${socket}` })
    assert.equal((await pluginCall(socket, '/Plugin.Activate')).status, 200)
  })

  it('refuses a path that is not a socket, and leaves the file alone', async () => {
    const path = join(dir, 'plain-file')
    await writeFile(path, 'keep me')
    await assert.rejects(listen(appOf(), { socket: path }), { message: `${path} exists and is not a socket` })
    assert.ok((await stat(path)).isFile())
  })

  it(
    'serves on fd 3 under systemd socket activation, without creating its own socket',
    { timeout: 60_000 },
    async () => {
      const socket = join(dir, 'activated.sock')
      const unused = join(dir, 'not-used.sock')
      const state = join(dir, 'state')
      // systemd-socket-activate listens on `socket`, then execs `isthmus serve` with LISTEN_FDS=1,
      // LISTEN_PID=<its own pid> and the socket as fd 3 on the first connection.
      const child = spawn(
        'systemd-socket-activate',
        [
          '-l',
          socket,
          process.execPath,
          '--import',
          'tsx',
          '--conditions=@isthmus/source',
          join(root, 'packages/cli/src/bin/isthmus.ts'),
          'serve',
          '--socket',
          unused,
          '--state-dir',
          state,
          '--log-level',
          'info',
          '--cni-socket',
          ''
        ],
        { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] }
      )
      children.push(child)
      let log = ''
      child.stderr.setEncoding('utf8')
      child.stderr.on('data', (c: string) => (log += c))
      await waitUntil('systemd-socket-activate to listen', async () => existsSync(socket), 10_000, 20)
      // the first call waits in the socket's backlog while the daemon starts
      assert.deepEqual(await pluginCall(socket, '/Plugin.Activate'), {
        status: 200,
        body: { Implements: ['NetworkDriver', 'IpamDriver'] }
      })
      assert.match(log, /"fd":3/)
      assert.equal(existsSync(unused), false, 'the --socket path is not used when systemd passes one')
      await stopChild(child, 'SIGTERM')
      assert.match(log, /"message":"stopped"/)
    }
  )
})
