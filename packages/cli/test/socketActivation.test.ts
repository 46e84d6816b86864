/**
 * `isthmus serve` under socket activation as packaging/systemd/isthmus.socket sets it up, without
 * systemd: this test listens on the socket itself, starts serve with the listening socket as fd 3
 * and LISTEN_FDS=1, LISTEN_PID=<serve's pid> (what systemd passes), and calls the plugin on the
 * socket path. A LISTEN_PID naming another process is not for serve: it binds --socket itself.
 */
import { strict as assert } from 'node:assert'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rename, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { pluginCall, stopChild, waitUntil } from '@isthmus/testkit'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const BIN = join(root, 'packages/cli/src/bin/isthmus.ts')

// The fd of a listening net.Server (a libuv handle's; internal to Node, present in 20 and 24).
const fdOf = (server: Server): number => {
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd
  if (typeof fd !== 'number' || fd < 0) throw new Error('the listening socket has no fd')
  return fd
}

const listening = (path: string): Promise<Server> =>
  new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(path, () => resolve(s))
  })

describe('isthmus serve: socket activation (LISTEN_FDS, fd 3)', () => {
  let dir = ''
  const children: ChildProcess[] = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'isthmus-activation-'))
  })
  after(async () => {
    for (const c of children) await stopChild(c, 'SIGKILL')
    await rm(dir, { recursive: true, force: true })
  })

  // `sh` sets LISTEN_PID to its own pid, then execs node (same pid), as systemd sets it after fork.
  const serve = (env: Record<string, string>, stdio3: number | 'ignore', unused: string): ChildProcess => {
    const child = spawn(
      'sh',
      [
        '-c',
        `${Object.keys(env).includes('LISTEN_PID') ? '' : 'LISTEN_PID=$$ '}exec "$@"`,
        'sh',
        process.execPath,
        '--import',
        'tsx',
        '--conditions=@isthmus/source',
        BIN,
        'serve',
        '--socket',
        unused,
        '--state-dir',
        join(dir, 'state'),
        '--cni-socket',
        ''
      ],
      { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe', stdio3] }
    )
    children.push(child)
    return child
  }

  it('serves on the socket passed as fd 3, and binds no socket of its own', { timeout: 60_000 }, async () => {
    const bound = join(dir, 'bound.sock')
    const socket = join(dir, 'isthmus.sock')
    const unused = join(dir, 'not-used.sock')
    const server = await listening(bound)
    const child = serve({ LISTEN_FDS: '1' }, fdOf(server), unused)
    // The child holds its copy of the socket now. Ours must stop accepting, and closing a unix
    // server in Node unlinks the path it bound: move the socket file away first.
    await rename(bound, socket)
    await new Promise<void>((resolve) => server.close(() => resolve()))
    let log = ''
    child.stderr!.setEncoding('utf8')
    child.stderr!.on('data', (c: string) => (log += c))
    await waitUntil('serve to log "serving"', async () => /"message":"serving"/.test(log), 30_000, 50)
    assert.deepEqual(await pluginCall(socket, '/Plugin.Activate'), {
      status: 200,
      body: { Implements: ['NetworkDriver', 'IpamDriver'] }
    })
    const conf = await pluginCall(socket, '/IpamDriver.Configuration')
    assert.equal((conf.body as { socketActivated?: boolean }).socketActivated, true)
    assert.match(log, /"fd":3/)
    assert.equal(existsSync(unused), false, 'the --socket path is not bound when a socket is passed')
    await stopChild(child, 'SIGTERM')
    assert.match(log, /"message":"stopped"/)
  })

  it('binds --socket itself when LISTEN_PID names another process', { timeout: 60_000 }, async () => {
    const own = join(dir, 'own.sock')
    const child = serve({ LISTEN_FDS: '1', LISTEN_PID: '1' }, 'ignore', own)
    let log = ''
    child.stderr!.setEncoding('utf8')
    child.stderr!.on('data', (c: string) => (log += c))
    await waitUntil('serve to log "serving"', async () => /"message":"serving"/.test(log), 30_000, 50)
    assert.equal((await pluginCall(own, '/Plugin.Activate')).status, 200)
    const conf = await pluginCall(own, '/IpamDriver.Configuration')
    assert.equal((conf.body as { socketActivated?: boolean }).socketActivated, false)
    await stopChild(child, 'SIGTERM')
  })
})
