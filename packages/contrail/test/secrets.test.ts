/**
 * Secrets never leave the Contrail adapters: every remote text is redacted before it is cut to
 * length, secrets of any length are blanked (a text holding a one- to three-character one is
 * withheld whole), and userinfo in a URL is sent as Basic authorization and blanked everywhere.
 */
import { strict as assert } from 'node:assert'
import { after, before, afterEach, describe, it } from 'node:test'
import { describe as describeError } from '@isthmus/core'
import { configApi, redactor, WITHHELD, type KeystoneAuth } from '@isthmus/contrail'
import { closedPort, FAST, left, right, startSims, TENANT, USER, VN, type Sims } from './support/helpers.js'

/** No piece of `secret` of `min` or more characters anywhere in `text`. */
const assertNoPart = (text: string, secret: string, min = 3): void => {
  for (let n = min; n <= secret.length; n++) {
    for (let i = 0; i + n <= secret.length; i++) {
      assert.ok(!text.includes(secret.slice(i, i + n)), `"${secret.slice(i, i + n)}" of the secret in: ${text}`)
    }
  }
}

describe('Redactor', () => {
  const long = 'Lq8-ZrT2-vW0x-Np4K-Ys7d-Mh3u-Jb6e-Gc1a'

  it('redacts before it cuts: a secret across the 300-character cut leaves no part of it', () => {
    for (const at of [270, 280, 290, 296, 297, 299]) {
      const text = `${'x'.repeat(at)}${long} and more after it ${'y'.repeat(100)}`
      const body = redactor([long]).body(text)
      assert.ok(body.length <= 300, `${body.length}`)
      assert.ok(body.endsWith('...'))
      assertNoPart(body, long)
    }
  })

  it('blanks a secret split by a line break or a run of spaces in the raw text', () => {
    const r = redactor(['pass word'])
    assert.equal(r.body('bad: pass word\nand pass  word'), 'bad: [redacted] and [redacted]')
  })

  it('blanks secrets of four characters and more where they occur, longest first', () => {
    assert.equal(redactor(['abcd', 'abcdefgh']).redact('x abcdefgh y abcd z'), 'x [redacted] y [redacted] z')
  })

  it('withholds a text holding a one- to three-character secret, and keeps one that does not', () => {
    for (const secret of ['e', 'q7', 'q7z']) {
      const r = redactor([secret])
      assert.equal(r.body(`bad password ${secret} for user isthmus`), WITHHELD)
      assert.equal(
        r.body('The request you have made requires authorization.'),
        secret === 'e' ? WITHHELD : 'The request you have made requires authorization.'
      )
    }
  })

  it('blanks credentials of any URL in the text, known or not', () => {
    assert.equal(redactor().body('see http://u:Pw-123456@h:1/x'), 'see http://u:[redacted]@h:1/x')
  })
})

describe('the config API client: secrets in error bodies', () => {
  let sims: Sims
  const short1 = { username: 'one', password: 'e', project: 'admin' }
  const short3 = { username: 'three', password: 'q7z', project: 'admin' }
  before(async () => {
    sims = await startSims({ auth: 'keystone', users: [USER, short1, short3] })
  })
  after(async () => sims.close())
  afterEach(() => sims.contrail.clearFaults())

  const v3 = (user: typeof USER): KeystoneAuth => ({
    kind: 'keystone',
    url: sims.contrail.keystoneV3,
    version: 'v3',
    ...user
  })

  it('a token and the password echoed past the 300-character cut leave no part of either', async () => {
    const c = configApi({ url: sims.contrail.url, auth: v3(USER), policy: FAST })
    await right(c.fqNameToId('project', ['default-domain', TENANT])())
    const token = String(sims.contrail.calls('POST', '/fqname-to-id').at(-1)!.headers['x-auth-token'])
    assert.ok(token.length >= 32)
    for (const [secret, at] of [
      [token, 280],
      [USER.password, 290]
    ] as const) {
      sims.contrail.inject({
        method: 'POST',
        path: '/fqname-to-id',
        nth: 1,
        status: 403,
        body: `${'x'.repeat(at)}${secret} was refused`
      })
      const e = await left(c.fqNameToId('virtual-network', ['default-domain', TENANT, VN])())
      sims.contrail.clearFaults()
      assert.equal(e._tag === 'Controller' && e.status, 403)
      const text = describeError(e)
      assert.match(text, /HTTP 403\): x{20}/)
      assertNoPart(text, secret, 4)
    }
  })

  it('one- and three-character passwords are redacted: the body holding them is withheld, the sentence stays readable', async () => {
    for (const user of [short1, short3]) {
      const c = configApi({ url: sims.contrail.url, auth: v3(user), policy: FAST })
      // they work
      assert.equal(await right(c.fqNameToId('project', ['default-domain', TENANT])()), sims.projectId)
      sims.contrail.expireTokens()
      sims.contrail.inject({
        method: 'POST',
        path: '/v3/auth/tokens',
        nth: 1,
        status: 401,
        body: `wrong password "${user.password}" for ${user.username}`
      })
      const e = await left(c.fqNameToId('project', ['default-domain', TENANT])())
      assert.equal(describeError(e), `network controller refused authenticate with keystone (HTTP 401): ${WITHHELD}`)
    }
    // a body without the short secret is shown as it is
    sims.contrail.inject({
      method: 'POST',
      path: '/v3/auth/tokens',
      nth: 1,
      status: 401,
      body: 'Authentication required'
    })
    const e = await left(
      configApi({ url: sims.contrail.url, auth: v3(short3), policy: FAST }).fqNameToId('project', [
        'default-domain',
        TENANT
      ])()
    )
    assert.equal(
      describeError(e),
      'network controller refused authenticate with keystone (HTTP 401): Authentication required'
    )
  })

  it('userinfo in the API URL is sent as Basic authorization and never shown, even when echoed', async () => {
    const pw = 'UrlPw-5e7a9'
    const url = sims.contrail.url.replace('http://', `http://isthmus:${pw}@`)
    const c = configApi({ url, auth: v3(USER), policy: FAST })
    assert.equal(await right(c.fqNameToId('project', ['default-domain', TENANT])()), sims.projectId)
    const sent = sims.contrail.calls('POST', '/fqname-to-id').at(-1)!.headers
    assert.equal(sent['authorization'], `Basic ${Buffer.from(`isthmus:${pw}`).toString('base64')}`)
    sims.contrail.inject({
      method: 'POST',
      path: '/fqname-to-id',
      nth: 1,
      status: 403,
      body: `${'z'.repeat(292)}${pw} from ${url} with ${String(sent['authorization'])}`
    })
    const e = await left(c.fqNameToId('project', ['default-domain', TENANT])())
    const text = describeError(e)
    assertNoPart(text, pw, 4)
    assert.ok(!text.includes(Buffer.from(`isthmus:${pw}`).toString('base64').slice(0, 8)), text)
  })

  it('an unreachable API with userinfo is a sentence without the password', async () => {
    const c = configApi({
      url: `http://isthmus:Down-Pw-31@127.0.0.1:${await closedPort()}`,
      auth: { kind: 'none' },
      policy: FAST
    })
    const text = describeError(await left(c.fqNameToId('project', ['default-domain', TENANT])()))
    assert.match(
      text,
      /^temporary failure, try again: Contrail config API at http:\/\/isthmus:\[redacted\]@127\.0\.0\.1:\d+ unreachable \(ECONNREFUSED\)/
    )
  })
})
