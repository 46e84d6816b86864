/**
 * `/IpamDriver.Shutdown` at the route level (in-memory ports, a real unix socket): served only when
 * the host gives a way to stop, answered `{}` to a POST with an empty body or `{}`, the host asked
 * once per call, GET refused (a stop is not an inspection); and the named-pipe listener over a
 * unix socket path standing in for the pipe (the same code path: no stale-file check, no chmod).
 */
import { strict as assert } from 'node:assert'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { builtinControlPlane, makeIpam, type Env, type Ipam } from '@isthmus/core'
import { testEnv } from '@isthmus/core/testing'
import { pluginCall, pluginRequest } from '@isthmus/testkit'
import { createPluginApp, listen, type PluginServer } from '../src/index.js'

const getOn = (socket: string, path: string) =>
  new Promise<number>((resolve, reject) => {
    const req = request({ socketPath: socket, path, method: 'GET' }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end()
  })

describe('/IpamDriver.Shutdown on the plugin socket', () => {
  let dir = ''
  let env: Env
  let ipam: Ipam
  const servers: PluginServer[] = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'isthmus-shutdown-'))
    const t = testEnv()
    ipam = makeIpam({ store: t.env.store, clock: t.env.clock })
    env = { ...t.env, controlPlane: builtinControlPlane(ipam, t.env.store) }
  })
  after(async () => {
    for (const s of servers) await s.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('is not served when the host gives no way to stop (an embedding integrator): 404', async () => {
    const socket = join(dir, 'embedded.sock')
    servers.push(await listen(createPluginApp({ env, ipam }), { socket }))
    const r = await pluginCall(socket, '/IpamDriver.Shutdown')
    assert.equal(r.status, 404)
  })

  it('answers {} to an empty body and to {}, asks the host to stop each time, and refuses GET', async () => {
    const socket = join(dir, 'daemon.sock')
    const asked: string[] = []
    servers.push(await listen(createPluginApp({ env, ipam, shutdown: () => asked.push('stop') }), { socket }))
    const empty = await pluginRequest(socket, '/IpamDriver.Shutdown', '')
    assert.deepEqual(
      [empty.status, empty.text, empty.headers['content-type']],
      [200, '{}', 'application/vnd.docker.plugins.v1.2+json']
    )
    assert.deepEqual(await pluginCall(socket, '/IpamDriver.Shutdown', {}), { status: 200, body: {} })
    assert.deepEqual(asked, ['stop', 'stop'])
    assert.equal(await getOn(socket, '/IpamDriver.Shutdown'), 405)
    assert.deepEqual(asked, ['stop', 'stop'], 'a GET asks nothing')
    // Docker's protocol has no NetworkDriver counterpart: still "not implemented"
    assert.equal((await pluginCall(socket, '/NetworkDriver.Shutdown')).status, 404)
  })

  it('listens on a named pipe as given: a unix socket path standing in for the pipe', async () => {
    const pipe = join(dir, 'pipe-stand-in')
    const s = await listen(createPluginApp({ env, ipam }), { pipe })
    assert.deepEqual(await pluginCall(pipe, '/Plugin.Activate'), {
      status: 200,
      body: { Implements: ['NetworkDriver', 'IpamDriver'] }
    })
    await s.close()
    await assert.rejects(stat(pipe), /ENOENT/, 'gone with the listener')
  })
})
