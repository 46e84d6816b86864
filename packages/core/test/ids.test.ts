import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { ContainerId, EndpointId, hostIfName, IfName, peerIfName, type EndpointId as EndpointIdT } from '@isthmus/core'
import * as E from 'fp-ts/lib/Either.js'

describe('ids', () => {
  it('derives host interface names of at most 15 characters that decode as IfName', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-f0-9]{1,64}$/), (s) => {
        const id = s as EndpointIdT
        for (const name of [hostIfName(id), peerIfName(id)]) {
          assert.ok(name.length <= 15)
          assert.ok(E.isRight(IfName.decode(name)))
        }
        assert.notEqual(hostIfName(id), peerIfName(id))
      })
    )
  })

  it('gives distinct names to distinct endpoint ids (no collision in 50,000 ids)', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 50_000; i++) seen.add(hostIfName(`ep${i}` as EndpointIdT))
    assert.equal(seen.size, 50_000)
  })

  it('rejects endpoint ids a runtime could not have sent', () => {
    assert.ok(E.isLeft(EndpointId.decode('')))
    assert.ok(E.isLeft(EndpointId.decode('-x')))
    assert.ok(E.isLeft(EndpointId.decode('a/b')))
  })

  it('takes as an interface name only what every tool reads literally', () => {
    for (const ok of ['eth0', 'net1', 'eth0.100', 'cni0', 'br_x-1', '_x', 'a', 'abcdefghijklmno']) {
      assert.ok(IfName.is(ok), ok)
    }
    // iptables wildcard and negation, an option, the kernel's own refusals, 16 characters, ip -batch quoting
    for (const bad of [
      'zz+',
      'a!b',
      '-x',
      '.',
      '..',
      '.x',
      '',
      'a b',
      'a/b',
      'a:b',
      'abcdefghijklmnop',
      'a"b',
      "a'b",
      'a#b',
      'é'
    ]) {
      assert.ok(!IfName.is(bad), JSON.stringify(bad))
    }
  })

  it('bounds container ids at 256 characters', () => {
    assert.ok(ContainerId.is('c'.repeat(256)))
    assert.ok(!ContainerId.is('c'.repeat(257)))
    assert.ok(!ContainerId.is('c'.repeat(100 * 1024)))
  })
})
