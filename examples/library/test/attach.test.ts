import { strict as assert } from 'node:assert'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import { attachAll, detach } from '../src/attach.js'

describe('example: embedding the core', () => {
  const dirs: string[] = []
  after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))))

  it('gives each container its own address, keeps them across runs, and frees one on detach', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'isthmus-example-'))
    dirs.push(dir)
    const first = await attachAll(dir, 'blue', '10.77.0.0/24', ['web', 'db'])
    assert.ok(E.isRight(first), E.isLeft(first) ? first.left : '')
    assert.deepEqual(
      first.right.map((a) => a.address),
      ['10.77.0.2/24', '10.77.0.3/24']
    )

    // a second process (a new Env on the same state) sees the same attachments: no new addresses
    const again = await attachAll(dir, 'blue', '10.77.0.0/24', ['web', 'db', 'cache'])
    assert.ok(E.isRight(again), E.isLeft(again) ? again.left : '')
    assert.deepEqual(
      again.right.map((a) => a.address),
      ['10.77.0.2/24', '10.77.0.3/24', '10.77.0.4/24']
    )

    assert.ok(E.isRight(await detach(dir, 'blue', 'web')))
    const leases = await readdir(join(dir, 'v1/leases/isthmus-local'))
    assert.deepEqual(leases.filter((f) => !f.startsWith('.')).sort(), [
      '10.77.0.1.json',
      '10.77.0.3.json',
      '10.77.0.4.json'
    ])
  })

  it('reports a bad subnet as one sentence, not an exception', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'isthmus-example-'))
    dirs.push(dir)
    const r = await attachAll(dir, 'red', '10.78.0.0/31', ['x'])
    assert.ok(E.isLeft(r))
    assert.match(r.left, /10\.78\.0\.0\/31/)
  })
})
