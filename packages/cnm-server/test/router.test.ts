/**
 * The router's last line: a handler that throws, or whose task rejects, is a bug. Over a real
 * unix socket, the caller gets Docker's own error form with one sentence (never the error's text
 * or a stack), the log gets the stack, and the next call is served. Bodies out of bounds are
 * refused before any handler runs.
 */
import { strict as assert } from 'node:assert'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import * as TE from 'fp-ts/lib/TaskEither.js'
import * as t from 'io-ts'
import type { CoreError } from '@isthmus/core'
import { recordingLogger } from '@isthmus/core/testing'
import { pluginCall, pluginRequest } from '@isthmus/testkit'
import { listen, type PluginServer } from '../src/index.js'
import { buildApp, route } from '../src/router.js'
import { assertProtocolShaped, deepArrayText } from './support/protocol.js'

describe('router: failures that are bugs', () => {
  let dir = ''
  let socket = ''
  let server: PluginServer
  const log = recordingLogger()
  let calls = 0

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'isthmus-router-'))
    socket = join(dir, 'plugin.sock')
    const routes = [
      route('Plugin', 'Activate', t.unknown, () => TE.right<CoreError, object>({ Implements: ['NetworkDriver'] })),
      // thrown while the task is built, as a RangeError from a recursive walk would be
      route('NetworkDriver', 'Throws', t.unknown, () => {
        calls++
        throw new RangeError('Maximum call stack size exceeded')
      }),
      // a task that rejects, with a message holding a path
      route(
        'IpamDriver',
        'Rejects',
        t.unknown,
        () => () => Promise.reject(new Error('ENOENT: /var/lib/isthmus/v1/endpoints/x.json'))
      ),
      // thrown from inside the task, after an await
      route('NetworkDriver', 'ThrowsLater', t.unknown, () => async () => {
        await Promise.resolve()
        throw new TypeError("Cannot read properties of undefined (reading 'x')")
      })
    ]
    server = await listen(buildApp(routes, log.port), { socket })
  })
  after(async () => {
    await server.close()
    await rm(dir, { recursive: true, force: true })
  })

  for (const [path, api] of [
    ['/NetworkDriver.Throws', 'NetworkDriver'],
    ['/IpamDriver.Rejects', 'IpamDriver'],
    ['/NetworkDriver.ThrowsLater', 'NetworkDriver']
  ] as const) {
    it(`answers ${path} with one {"Err"} sentence, logs the stack as a bug, and serves the next call`, async () => {
      log.state.clear()
      const r = await pluginRequest(socket, path, '{}\n')
      assertProtocolShaped(path, true, r)
      const sentence = `${path.slice(1)} failed on an internal error of isthmus (a bug; the daemon's log has the details)`
      assert.deepEqual(
        { status: r.status, body: JSON.parse(r.text) as unknown },
        { status: 500, body: api === 'IpamDriver' ? { Err: sentence, Error: sentence } : { Err: sentence } }
      )
      assert.doesNotMatch(r.text, /RangeError|TypeError|ENOENT|\/var\/lib/)
      const bugs = log.state.at('error')
      assert.equal(bugs.length, 1)
      assert.equal(bugs[0]!.msg, 'bug: a handler failed')
      assert.match(String(bugs[0]!.fields['stack']), /Error: .*\n\s+at /)
      assert.deepEqual(await pluginCall(socket, '/Plugin.Activate'), {
        status: 200,
        body: { Implements: ['NetworkDriver'] }
      })
    })
  }

  it('refuses a body past the depth limit before the handler runs', async () => {
    const before = calls
    const r = await pluginRequest(socket, '/NetworkDriver.Throws', deepArrayText(17))
    assert.equal(r.status, 400)
    assert.equal(calls, before, 'the handler never ran')
    assert.equal((await pluginRequest(socket, '/NetworkDriver.Throws', deepArrayText(16))).status, 500)
  })

  it('answers a known method asked with GET with 405, and an unknown path with 404', async () => {
    const get = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      import('node:http').then(({ request }) => {
        const req = request({ socketPath: socket, path: '/NetworkDriver.Throws', method: 'GET' }, (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (c: string) => (text += c))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
        })
        req.on('error', reject)
        req.end()
      }, reject)
    })
    assert.deepEqual(
      { status: get.status, body: JSON.parse(get.text) as unknown },
      { status: 405, body: { Err: 'NetworkDriver.Throws answers POST, not GET' } }
    )
    const unknown = await pluginRequest(socket, '/NetworkDriver.Nope', '{}')
    assertProtocolShaped('/NetworkDriver.Nope', false, unknown)
    assert.equal(unknown.status, 404)
  })
})
