/**
 * The plugin socket of `isthmus serve` against clients that hold connections: idle ones (a raw
 * connection that sends nothing, a keep-alive connection after a call) do not keep SIGTERM from
 * stopping the daemon; a call in flight at SIGTERM is still answered; connections past the cap
 * are closed at once and those that stay idle are closed after the request timeout, so the
 * daemon serves others afterwards.
 */
import { strict as assert } from 'node:assert'
import { createConnection, type Socket } from 'node:net'
import { after, describe, it } from 'node:test'
import { pluginCall, startPlugin, uniquePrefix, waitUntil, type PluginProcess } from '@isthmus/testkit'
import { readState } from './support/state.js'

/** A raw connection to `socket`, read continuously (a paused socket never sees the peer close it). */
interface Raw {
  readonly socket: Socket
  /** Everything received so far. */
  readonly text: () => string
  /** When the connection closed (ms since it was opened), undefined while open. */
  readonly closedAfter: () => number | undefined
}

const open = (path: string): Promise<Raw> =>
  new Promise((resolve, reject) => {
    const opened = Date.now()
    let text = ''
    let closed: number | undefined
    const socket = createConnection(path)
    socket.setEncoding('utf8')
    socket.on('data', (c: string) => (text += c))
    socket.on('error', () => undefined)
    socket.on('close', () => (closed = Date.now() - opened))
    socket.once('connect', () => resolve({ socket, text: () => text, closedAfter: () => closed }))
    socket.once('error', reject)
  })

const request = (path: string, body: string): string =>
  `POST ${path} HTTP/1.1\r\nHost: plugin\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('the plugin socket: idle clients, calls in flight, the connection cap', { timeout: 120_000 }, () => {
  const prefix = uniquePrefix()
  let plugin: PluginProcess | undefined
  const raws: Raw[] = []
  after(async () => {
    for (const r of raws) r.socket.destroy()
    await plugin?.dispose()
  })

  it('stops on SIGTERM within seconds (exit 0) while raw and keep-alive connections sit idle', async () => {
    plugin = await startPlugin(`${prefix}-so`)
    const p = plugin
    const idle = await Promise.all(Array.from({ length: 5 }, () => open(p.socket)))
    const kept = await Promise.all(Array.from({ length: 3 }, () => open(p.socket)))
    raws.push(...idle, ...kept)
    for (const k of kept) k.socket.write(request('/Plugin.Activate', ''))
    await waitUntil(
      'the keep-alive calls to be answered',
      async () => kept.every((k) => k.text().includes('"Implements"')),
      5_000,
      20
    )
    assert.ok(
      kept.every((k) => k.closedAfter() === undefined),
      'kept alive after the call'
    )

    const started = Date.now()
    await p.kill('SIGTERM')
    const took = Date.now() - started
    assert.deepEqual(p.exit(), { code: 0, signal: null }, `exit status; log tail: ${p.logs().slice(-500)}`)
    assert.ok(took < 5_000, `stopped after ${took} ms`)
    assert.match(p.logs(), /"message":"stopped"/)
    await waitUntil(
      'the daemon to close every connection',
      async () => [...idle, ...kept].every((r) => r.closedAfter() !== undefined),
      2_000,
      20
    )
  })

  it('answers a call in flight at SIGTERM (its body still arriving), then exits 0', async () => {
    const p = plugin!
    await p.start()
    const subnet = `10.245.${Math.floor(Math.random() * 250)}.0/24`
    const body = JSON.stringify({ AddressSpace: 'isthmus-local', Pool: subnet, Options: {} })
    const r = await open(p.socket)
    raws.push(r)
    const whole = request('/IpamDriver.RequestPool', body)
    const cut = whole.length - 10
    r.socket.write(whole.slice(0, cut))
    await sleep(200)
    process.kill(p.pid(), 'SIGTERM')
    await sleep(500)
    assert.equal(p.exit(), undefined, 'the daemon waits for the call in flight')
    r.socket.write(whole.slice(cut))
    await waitUntil('the answer', async () => r.text().includes('\r\n\r\n{'), 5_000, 20)
    assert.match(r.text(), /^HTTP\/1\.1 200 OK\r\n/)
    assert.match(r.text(), /\r\nConnection: close\r\n/i)
    assert.equal((JSON.parse(r.text().split('\r\n\r\n')[1]!) as { Pool: string }).Pool, subnet)
    await waitUntil('the daemon to exit', async () => p.exit() !== undefined, 5_000, 20)
    assert.deepEqual(p.exit(), { code: 0, signal: null })
    // the call was done, not only answered: its pool is stored
    assert.deepEqual(
      (await readState(p.stateDir)).pools.map((x) => x.subnet),
      [subnet]
    )
  })

  it('closes connections past the cap at once and idle ones after the request timeout; serves others afterwards', async () => {
    const p = plugin!
    await p.kill('SIGKILL')
    await p.dispose()
    plugin = await startPlugin(`${prefix}-cap`, [
      '--max-connections',
      '8',
      '--request-timeout',
      '2',
      '--idle-timeout',
      '1'
    ])
    const q = plugin
    const conns: Raw[] = []
    for (let i = 0; i < 14; i++) conns.push(await open(q.socket))
    raws.push(...conns)
    await waitUntil(
      'the connections past the cap to be closed',
      async () => conns.filter((c) => c.closedAfter() !== undefined).length >= 6,
      2_000,
      20
    )
    await sleep(300)
    assert.equal(conns.filter((c) => c.closedAfter() !== undefined).length, 6, 'exactly those past the cap of 8')

    // the 8 it holds send nothing: closed after the 2 s request timeout, then others are served
    await waitUntil(
      'the idle connections to be closed',
      async () => conns.every((c) => c.closedAfter() !== undefined),
      6_000,
      50
    )
    const held = conns.map((c) => c.closedAfter()!).filter((ms) => ms >= 1_000)
    assert.equal(held.length, 8)
    assert.ok(
      held.every((ms) => ms < 5_000),
      `closed after ${held.join(', ')} ms`
    )
    assert.deepEqual(await pluginCall(q.socket, '/Plugin.Activate'), {
      status: 200,
      body: { Implements: ['NetworkDriver', 'IpamDriver'] }
    })

    // a keep-alive connection idle after its call: closed after the 1 s idle timeout
    const k = await open(q.socket)
    raws.push(k)
    k.socket.write(request('/Plugin.Activate', ''))
    await waitUntil('the idle keep-alive connection to be closed', async () => k.closedAfter() !== undefined, 4_000, 20)
    assert.match(k.text(), /^HTTP\/1\.1 200 OK/)
    assert.doesNotThrow(() => process.kill(q.pid(), 0), 'the daemon lives')
  })
})
