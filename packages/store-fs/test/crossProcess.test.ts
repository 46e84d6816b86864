import { strict as assert } from 'node:assert'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import type { AddressSpace } from '@isthmus/core'
import { expectRight } from '@isthmus/core/testing'
import { decodeName } from '../src/index.js'
import { killChild, openStore, removeDir, startChild, tempDir, type Child } from './support/children.js'

const SPACE = 'xproc' as AddressSpace
const IPAM_SPACE = 'xproc-ipam' as AddressSpace

describe('fileStore across processes', () => {
  const children: Child[] = []
  const dirs: string[] = []
  after(async () => {
    await Promise.all(children.map((c) => killChild(c)))
    await Promise.all(dirs.map(removeDir))
  })

  // Start two children on one fresh state dir, let them go at the same moment, and collect the
  // addresses each acknowledged.
  const race = async (args: (tag: string, i: number) => string[]) => {
    const dir = await tempDir()
    dirs.push(dir)
    await openStore(dir).then((s) => s.close())
    const procs = [
      startChild(args('p0', 0).map((a) => a.replace('$DIR', dir))),
      startChild(args('p1', 1).map((a) => a.replace('$DIR', dir)))
    ]
    children.push(...procs)
    await Promise.all(procs.map((p) => p.waitFor('ready')))
    const t0 = Date.now()
    for (const p of procs) p.proc.stdin!.write('go\n')
    const exits = await Promise.all(procs.map((p) => p.exited))
    const ms = Date.now() - t0
    exits.forEach((x, i) => assert.deepEqual(x, { code: 0, signal: null }, procs[i]!.stderr()))
    const acked = procs.map((p) => p.lines.filter((l) => l.startsWith('ok ')).map((l) => l.slice(3)))
    return { dir, ms, acked }
  }

  it('2 processes x 500 concurrent reservations in one pool of 1,000: no address acknowledged twice', async (t) => {
    const { dir, ms, acked } = await race((tag, i) => ['allocate', '$DIR', tag, i === 0 ? '11' : '29', '500'])
    assert.deepEqual(
      acked.map((a) => a.length),
      [500, 500]
    )
    const all = acked.flat()
    assert.equal(new Set(all).size, all.length, 'an address was acknowledged to two callers')

    // The files on disk are exactly the acknowledged addresses, each owned by the process told so.
    const names = (await readdir(join(dir, 'v1/leases', SPACE))).sort()
    assert.deepEqual(
      names.filter((n) => n.startsWith('.')),
      [],
      'no temp file left'
    )
    const onDisk = names.map((n) => decodeName(n.replace(/\.json$/, '')))
    assert.deepEqual(onDisk, [...all].sort())
    const store = await openStore(dir)
    const leases = await expectRight(store.leases.list(SPACE))
    await store.close()
    const ownerOf = new Map(leases.map((l) => [l.address as string, l.owner.kind === 'runtime' ? l.owner.ref : '']))
    acked.forEach((addresses, i) => {
      for (const a of addresses) assert.ok(ownerOf.get(a)?.startsWith(`p${i}-`), `${a} is not held by process ${i}`)
    })
    t.diagnostic(`1000 reservations by 2 processes in ${ms} ms`)
  })

  it('2 processes x 500 concurrent IPAM allocations in one /22 pool: 0 duplicate addresses', async (t) => {
    const { dir, ms, acked } = await race((tag) => ['ipam', '$DIR', tag, '500'])
    assert.deepEqual(
      acked.map((a) => a.length),
      [500, 500]
    )
    const all = acked.flat()
    assert.equal(new Set(all).size, 1000, 'an address was handed to two callers')
    assert.ok(!all.includes('10.20.0.1'), 'the gateway was handed out')

    // The store holds exactly those leases plus the pool's gateway, and one pool with both references.
    const store = await openStore(dir)
    const leases = await expectRight(store.leases.list(IPAM_SPACE))
    const pools = await expectRight(store.pools.list())
    await store.close()
    assert.deepEqual(leases.map((l) => l.address as string).sort(), [...all, '10.20.0.1'].sort())
    assert.deepEqual(
      pools.map((p) => [p.id, p.refs]),
      [['xproc-ipam/10.20.0.0/22', 2]]
    )
    t.diagnostic(`1000 IPAM allocations by 2 processes in ${ms} ms`)
  })
})
