import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import * as C from '@isthmus/core'

const URL_WITH = 'http://isthmus:Pw-s3cr3t@127.0.0.1:8082/fqname-to-id'
const SHOWN = 'http://isthmus:[redacted]@127.0.0.1:8082/fqname-to-id'

describe('redactUrlCredentials', () => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    [`at ${URL_WITH} (ECONNREFUSED)`, `at ${SHOWN} (ECONNREFUSED)`],
    ['https://ghp_token123@example.test/x.git', 'https://[redacted]@example.test/x.git'],
    // URL parsers split at the last @: a raw @ in the password must not leave its tail
    ['http://u:p@ss@host:1/', 'http://u:[redacted]@host:1/'],
    ['http://u:p%40ss%3A@[::1]:9091', 'http://u:[redacted]@[::1]:9091'],
    ['"api":"http://a:b@h","mail":"x@y"', '"api":"http://a:[redacted]@h","mail":"x@y"'],
    ['HTTPS://A:B@H and ftp://c:d@e', 'HTTPS://A:[redacted]@H and ftp://c:[redacted]@e'],
    [
      'http://127.0.0.1:8082/path?q=a@b#c@d mail me@example.test',
      'http://127.0.0.1:8082/path?q=a@b#c@d mail me@example.test'
    ],
    ['no url: user:pass@host', 'no url: user:pass@host']
  ]
  for (const [text, want] of cases) {
    it(`${text} -> ${want}`, () => {
      assert.equal(C.redactUrlCredentials(text), want)
      assert.equal(C.redactUrlCredentials(want), want, 'idempotent')
    })
  }

  it('never leaves a generated password of a generated URL', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z][a-z0-9+.-]{0,8}$/),
        fc.stringMatching(/^[A-Za-z0-9._~-]{0,12}$/),
        fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:%@-]{6,40}$/),
        fc.string(),
        (scheme, user, password, around) => {
          fc.pre(!/[\s/?#"'<>\\]/.test(password) && !around.includes(password))
          const text = `${around} ${scheme}://${user}:${password}@host.example:1/p ${around}`
          assert.ok(!C.redactUrlCredentials(text).includes(password))
        }
      )
    )
  })

  it('takes linear time on long runs of letters and of userinfo characters', () => {
    const started = Date.now()
    C.redactUrlCredentials('a'.repeat(1_000_000))
    C.redactUrlCredentials(`http://${'b'.repeat(1_000_000)}`)
    C.redactUrlCredentials('x://'.repeat(250_000))
    assert.ok(Date.now() - started < 2_000, `${Date.now() - started} ms`)
  })
})

describe('describe', () => {
  it('blanks URL credentials in the sentence of every variant that carries free text', () => {
    const errors: ReadonlyArray<C.CoreError> = [
      C.decodeFailure(`netconf from ${URL_WITH}`, [`bad ${URL_WITH}`]),
      C.invalidConfig(`cannot use ${URL_WITH}`),
      C.unsupportedField('api', URL_WITH),
      C.alreadyExists('network', 'n1', `bridge of ${URL_WITH}`),
      C.invalidNetns(URL_WITH, URL_WITH),
      C.io(`read ${URL_WITH}`, new Error(URL_WITH)),
      C.transient(`Contrail config API at ${URL_WITH} unreachable`),
      C.dataplane(['curl', URL_WITH], 1, `failed ${URL_WITH}`),
      C.controller('read virtual-network', 403, `echo ${URL_WITH}`),
      C.agent('add port', 500, `echo ${URL_WITH}`),
      C.unavailable(`waiting for ${URL_WITH}`)
    ]
    for (const e of errors) {
      const s = C.describe(e)
      assert.ok(!s.includes('Pw-s3cr3t'), s)
      assert.ok(s.includes('isthmus:[redacted]@127.0.0.1:8082'), s)
    }
  })
})
