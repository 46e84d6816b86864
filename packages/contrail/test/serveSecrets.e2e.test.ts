/**
 * The real `isthmus serve --log-level debug` with credentials in its URLs (`--contrail-api
 * http://user:s3cr3tPw@…`, the same in `--vrouter-agent`) and a long keystone password from
 * OS_PASSWORD, against the Contrail simulator: the userinfo is used (Basic authorization), and
 * neither password, nor the Basic value, nor a token, appears in stderr, in any `{"Err"}` reply
 * (a controller body that echoes them past the 300-character cut included) or in
 * /IpamDriver.Configuration. Calls go to the plugin socket as dockerd makes them.
 */
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { pluginCall, startPlugin, uniquePrefix, type PluginProcess } from '@isthmus/testkit'
import { closedPort, startSims, TENANT, VN, type Sims } from './support/helpers.js'

const PW = 's3cr3tPw'
const KEYSTONE_PW = `Ks-${randomBytes(24).toString('hex')}`
const BASIC = Buffer.from(`user:${PW}`).toString('base64')

/**
 * The pieces of `secret` a cut could leave: 3 characters and more of the password, 8 and more of
 * random hex (shorter ones turn up in port numbers and ids by chance).
 */
const partsOf = (secret: string): ReadonlyArray<string> => {
  const out: string[] = []
  for (let n = secret === PW ? 3 : 8; n <= secret.length; n++) {
    for (let i = 0; i + n <= secret.length; i++) out.push(secret.slice(i, i + n))
  }
  return out
}
const leaked = (text: string, secrets: ReadonlyArray<string>): ReadonlyArray<string> =>
  secrets.flatMap((s) =>
    partsOf(s)
      .filter((p) => text.includes(p))
      .slice(0, 1)
  )

const netId = () => randomBytes(32).toString('hex')

describe('isthmus serve with credentials in its URLs', { timeout: 120_000 }, () => {
  const prefix = uniquePrefix('sec')
  const cidr = `10.253.${248 + Math.floor(Math.random() * 6)}.0/24`
  const gateway = cidr.replace('.0/24', '.1')
  let sims: Sims | undefined
  let plugin: PluginProcess | undefined
  let apiUrl = ''
  const replies: Array<{ readonly path: string; readonly status: number; readonly text: string }> = []

  const call = async (path: string, body?: unknown) => {
    const r = await pluginCall(plugin!.socket, path, body)
    replies.push({ path, status: r.status, text: JSON.stringify(r.body) })
    return { status: r.status, body: r.body as Record<string, unknown> }
  }
  const errOf = (r: { status: number; body: Record<string, unknown> }): string => {
    assert.notEqual(r.status, 200, JSON.stringify(r.body))
    return String(r.body['Err'])
  }
  const tokens = (): ReadonlyArray<string> => [
    ...new Set(
      sims!.contrail.journal.map((e) => e.headers['x-auth-token']).filter((t): t is string => typeof t === 'string')
    )
  ]

  before(async () => {
    sims = await startSims(
      { auth: 'keystone', users: [{ username: 'isthmus', password: KEYSTONE_PW, project: 'admin' }] },
      cidr
    )
    // the daemon inherits this process's environment: keystone credentials the supported way
    Object.assign(process.env, { OS_USERNAME: 'isthmus', OS_PASSWORD: KEYSTONE_PW, OS_PROJECT_NAME: 'admin' })
    apiUrl = sims.contrail.url.replace('http://', `http://user:${PW}@`)
    plugin = await startPlugin(`${prefix}-p`, [
      '--contrail-api',
      apiUrl,
      '--keystone-url',
      sims.contrail.keystoneV3,
      // nothing listens there: every agent call fails, and its error names this URL
      '--vrouter-agent',
      `http://agent:${PW}@127.0.0.1:${await closedPort()}`,
      '--contrail-owner',
      prefix
    ])
  })

  after(async () => {
    await plugin?.dispose()
    await sims?.close()
  })

  it('uses the userinfo, and shows no password, Basic value or token anywhere', async () => {
    const s = sims!
    const configuration = await call('/IpamDriver.Configuration')
    assert.equal(configuration.status, 200)
    assert.deepEqual((configuration.body['controlPlane'] as Record<string, unknown>)['api'], `${s.contrail.url}/`)

    const pool = await call('/IpamDriver.RequestPool', {
      AddressSpace: 'isthmus-local',
      Pool: cidr,
      SubPool: '',
      Options: {},
      V6: false
    })
    assert.equal(pool.status, 200, JSON.stringify(pool.body))
    const poolId = pool.body['PoolID']
    assert.equal(
      (
        await call('/IpamDriver.RequestAddress', {
          PoolID: poolId,
          Address: gateway,
          Options: { RequestAddressType: 'com.docker.network.gateway' }
        })
      ).status,
      200
    )
    const network = (id: string) =>
      call('/NetworkDriver.CreateNetwork', {
        NetworkID: id,
        Options: {
          'com.docker.network.enable_ipv6': false,
          'com.docker.network.generic': { tenant: TENANT, network: VN }
        },
        IPv4Data: [{ AddressSpace: 'isthmus-local', Gateway: `${gateway}/24`, Pool: cidr }],
        IPv6Data: []
      })

    // the controller refuses, echoing the URL password and the keystone password across the cut
    s.contrail.inject({
      method: 'POST',
      path: '/fqname-to-id',
      nth: 1,
      status: 403,
      body: `${'x'.repeat(293)}${PW} and ${KEYSTONE_PW} from ${apiUrl}`
    })
    const refused = errOf(await network(netId()))
    assert.match(refused, /network controller refused .*\(HTTP 403\): x{100}/)
    s.contrail.clearFaults()
    s.contrail.inject({
      method: 'POST',
      path: '/fqname-to-id',
      nth: 1,
      status: 403,
      body: `${'y'.repeat(280)}${KEYSTONE_PW}`
    })
    assert.match(errOf(await network(netId())), /\(HTTP 403\): y{100}/)
    s.contrail.clearFaults()

    const id = netId()
    const created = await network(id)
    assert.equal(created.status, 200, JSON.stringify(created.body))
    const sent = s.contrail.calls('POST', '/fqname-to-id').at(-1)!.headers
    assert.equal(sent['authorization'], `Basic ${BASIC}`, 'the userinfo is sent as Basic authorization')
    assert.match(String(sent['x-auth-token']), /^[0-9a-f]{32}$/, 'next to the keystone token')

    const address = await call('/IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: {} })
    assert.equal(address.status, 200, JSON.stringify(address.body))
    const ep = randomBytes(32).toString('hex')
    const noAgent = errOf(
      await call('/NetworkDriver.CreateEndpoint', {
        NetworkID: id,
        EndpointID: ep,
        Interface: { Address: address.body['Address'] }
      })
    )
    assert.match(noAgent, /vRouter agent at http:\/\/agent:\[redacted\]@127\.0\.0\.1:\d+ unreachable/)
    assert.equal(
      (
        await call('/IpamDriver.ReleaseAddress', {
          PoolID: poolId,
          Address: String(address.body['Address']).split('/')[0]
        })
      ).status,
      200
    )

    // the controller gone: its error names the API URL
    await s.contrail.close()
    const down = errOf(await call('/IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: {} }))
    assert.match(down, /Contrail config API at http:\/\/user:\[redacted\]@127\.0\.0\.1:\d+ .*unreachable/)
    await call('/NetworkDriver.DeleteNetwork', { NetworkID: id })
    await call('/IpamDriver.ReleaseAddress', { PoolID: poolId, Address: gateway })
    await call('/IpamDriver.ReleasePool', { PoolID: poolId })

    const secrets = [PW, KEYSTONE_PW, BASIC, ...tokens()]
    assert.ok(tokens().length > 0)
    const errs = replies.filter((r) => r.status !== 200)
    assert.ok(errs.length >= 4, `${errs.length} error replies`)
    for (const r of replies) assert.deepEqual(leaked(r.text, secrets), [], `${r.path}: ${r.text}`)
    const logs = plugin!.logs()
    assert.deepEqual(leaked(logs, secrets), [], 'stderr holds a secret')
    const lines = logs
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    assert.ok(
      lines.some((l) => l['level'] === 'debug'),
      'debug lines were written'
    )
    const start = lines.find((l) => l['message'] === 'contrail')
    assert.equal(
      start?.['api'],
      apiUrl.replace(`:${PW}@`, ':[redacted]@'),
      'the start-up line names the API, without its password'
    )
    assert.ok(
      lines.some((l) => l['level'] === 'warn' && /credentials in a URL on the command line/.test(String(l['message']))),
      'and warns about the userinfo'
    )
  })
})
