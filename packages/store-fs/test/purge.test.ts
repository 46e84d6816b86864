/**
 * `purgeStateDir` (isthmus uninstall --purge): the store goes, the state directory with it when
 * nothing else is in it, and what the operator keeps there stays.
 */
import { strict as assert } from 'node:assert'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import { fileStore } from '../src/fileStore.js'
import { hasStore, purgeStateDir } from '../src/purge.js'

describe('purgeStateDir', () => {
  let dir = ''
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'isthmus-purge-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  const openAndClose = async (stateDir: string): Promise<void> => {
    const s = await fileStore({ stateDir })()
    assert.ok(E.isRight(s))
    await s.right.close()
  }

  it('removes the store and the emptied directory; a second purge removes nothing', async () => {
    const stateDir = join(dir, 'a')
    await openAndClose(stateDir)
    assert.ok(hasStore(stateDir))
    assert.deepEqual(await purgeStateDir(stateDir)(), E.right({ removed: [join(stateDir, 'v1'), stateDir], kept: [] }))
    assert.equal(existsSync(stateDir), false)
    assert.equal(hasStore(stateDir), false)
    assert.deepEqual(await purgeStateDir(stateDir)(), E.right({ removed: [], kept: [] }))
  })

  it('keeps the directory and what else is in it', async () => {
    const stateDir = join(dir, 'b')
    await openAndClose(stateDir)
    await writeFile(join(stateDir, 'notes.txt'), 'the operator’s')
    assert.deepEqual(await purgeStateDir(stateDir)(), E.right({ removed: [join(stateDir, 'v1')], kept: ['notes.txt'] }))
    assert.ok(existsSync(join(stateDir, 'notes.txt')))
  })
})
