/** Run the example: `pnpm --filter @isthmus/example-library start [stateDir]`. */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as E from 'fp-ts/lib/Either.js'
import { attachAll, detach } from './attach.js'

const stateDir = process.argv[2] ?? (await mkdtemp(join(tmpdir(), 'isthmus-example-')))
const attached = await attachAll(stateDir, 'blue', '10.77.0.0/24', ['web', 'db'])
if (E.isLeft(attached)) {
  console.error(attached.left)
  process.exitCode = 1
} else {
  for (const a of attached.right) console.log(`${a.container}\t${a.address}\t${a.mac}`)
  const gone = await detach(stateDir, 'blue', 'web')
  console.log(E.isRight(gone) ? `web detached; state in ${stateDir}` : gone.left)
}
