import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import { jsonRefusalText, nestsDeeperThan, parseJsonWithin } from '@isthmus/core'

describe('JSON from outside, bounded', () => {
  it('counts nesting of arrays and objects, ignores brackets inside strings and escaped quotes', () => {
    const deep = (s: string) => nestsDeeperThan(s, 2)
    assert.equal(deep('[[1]]'), false)
    assert.equal(deep('[[[1]]]'), true)
    assert.equal(deep('{"a":{"b":{}}}'), true)
    assert.equal(deep('{"a":"[[[[[[","b":[1]}'), false)
    assert.equal(deep('{"a":"\\"[[[[","b":[1]}'), false)
    assert.equal(deep('["\\\\",[[1]]]'), true)
  })

  it('refuses a text over the byte limit, counting UTF-8 bytes, before parsing it', () => {
    const limits = { maxBytes: 8, maxDepth: 4 }
    assert.deepEqual(parseJsonWithin('"abcdef"', limits), E.right('abcdef'))
    // six characters, but 14 bytes in UTF-8; two emoji in quotes are 10
    const r = parseJsonWithin('"éééééé"', limits)
    assert.equal(E.isLeft(r) && jsonRefusalText(r.left), 'more than 8 bytes')
    assert.deepEqual(r, E.left({ _tag: 'TooLarge', maxBytes: 8 }))
    assert.deepEqual(parseJsonWithin('"😀😀"', { maxBytes: 10, maxDepth: 1 }), E.right('😀😀'))
    assert.deepEqual(parseJsonWithin('"😀😀"', { maxBytes: 9, maxDepth: 1 }), E.left({ _tag: 'TooLarge', maxBytes: 9 }))
  })

  it('refuses 5,000 levels without a stack overflow, and says why not JSON', () => {
    const r = parseJsonWithin('['.repeat(5000) + ']'.repeat(5000), { maxBytes: 1 << 20, maxDepth: 16 })
    assert.equal(E.isLeft(r) && jsonRefusalText(r.left), 'nested deeper than 16 levels')
    assert.deepEqual(r, E.left({ _tag: 'TooDeep', maxDepth: 16 }))
    const bad = parseJsonWithin('{"a":', { maxBytes: 100, maxDepth: 4 })
    assert.ok(E.isLeft(bad) && bad.left._tag === 'NotJson' && bad.left.detail.length > 0)
  })
})
