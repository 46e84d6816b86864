import { strict as assert } from 'node:assert'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { ownerText, type AddressSpace } from '@isthmus/core'
import { expectRight, sampleEndpoint, sampleNetwork } from '@isthmus/core/testing'
import { isRecordName, isTempName } from '../src/index.js'
import { killChild, openStore, removeDir, startChild, tempDir, type Child } from './support/children.js'

const KILLS = 50
const SPACE = 'kill' as AddressSpace

// What the writer said about one key: the value it last saw acknowledged, and the changes it had
// started after that (a kill may have let any of them reach the disk).
interface KeyState {
  acked: string
  pending: string[]
}

const apply = (model: Map<string, KeyState>, line: string): void => {
  const { t, k, v } = JSON.parse(line) as { t: 'I' | 'A'; k: string; v: string }
  const s = model.get(k) ?? { acked: '-', pending: [] }
  if (t === 'I') s.pending.push(v)
  else {
    // One change at a time per key: an acknowledgement is for the last change started. Earlier
    // ones were started by writers killed before it; they were dead before this one started.
    assert.equal(s.pending[s.pending.length - 1], v, `ack of ${k}=${v} without its intent`)
    s.acked = v
    s.pending = []
  }
  model.set(k, s)
}

describe('fileStore under SIGKILL', () => {
  const dirs: string[] = []
  const live = new Set<Child>()
  after(async () => {
    await Promise.all([...live].map((c) => killChild(c)))
    await Promise.all(dirs.map(removeDir))
  })

  it(`keeps every acknowledged change and only whole records across ${KILLS} kills of a writer`, async (t) => {
    const dir = await tempDir()
    dirs.push(dir)
    const model = new Map<string, KeyState>()
    let inFlightAtKill = 0
    let acks = 0
    const t0 = Date.now()
    // Starting a tsx child costs ~0.5 s of CPU, so the next writers load while this one runs; each
    // opens the store only on "go", after the previous writer is dead.
    const start = (run: number) => {
      const c = startChild(['writer', dir, String(run)])
      live.add(c)
      return c
    }
    const queue = [start(0), start(1)]
    for (let run = 0; run < KILLS; run++) {
      const child = queue.shift()!
      await child.waitFor('loaded')
      child.proc.stdin!.write('go\n')
      await child.waitFor('ready')
      if (run + queue.length + 1 < KILLS) queue.push(start(run + queue.length + 1))
      // Even runs: a few to a few tens of milliseconds after the store is open (kills land in
      // the first changes too). Odd runs: the same after the first acknowledged change, so that
      // writers do work even on a loaded machine.
      if (run % 2 === 1) await child.waitFor('first-ack')
      await new Promise((r) => setTimeout(r, 2 + Math.random() * 38))
      const { code, signal } = await killChild(child)
      live.delete(child)
      assert.equal(signal, 'SIGKILL', `writer ${run} ended by itself (${code}): ${child.stderr()}`)
      const changes = child.lines.filter((l) => l.startsWith('{'))
      for (const line of changes) apply(model, line)
      acks += changes.filter((l) => l.startsWith('{"t":"A"')).length
      if (changes.length > 0 && changes[changes.length - 1]!.startsWith('{"t":"I"')) inFlightAtKill++
    }
    const killMs = Date.now() - t0

    // Reopen: everything must decode, and be what was acknowledged (or a change started after it).
    const store = await openStore(dir)
    const leases = await expectRight(store.leases.list(SPACE))
    const networks = await expectRight(store.networks.list())
    const endpoints = await expectRight(store.endpoints.list())

    const actual = new Map<string, string>()
    for (const l of leases) {
      assert.ok(!actual.has(`lease:${l.address}`), `address ${l.address} held twice`)
      actual.set(`lease:${l.address}`, ownerText(l.owner))
    }
    for (const n of networks) {
      const v = n.options['v'] ?? '?'
      assert.deepEqual(n, sampleNetwork(n.id, Number(v)), `network ${n.id} is a whole record`)
      actual.set(`network:${n.id}`, v)
    }
    for (const e of endpoints) {
      const i = e.id.split('-').pop() ?? '?'
      assert.deepEqual(e, sampleEndpoint(e.id, Number(i)), `endpoint ${e.id} is a whole record`)
      actual.set(`endpoint:${e.id}`, i)
    }
    for (const k of actual.keys()) assert.ok(model.has(k), `${k} on disk but never written`)
    let checked = 0
    for (const [k, s] of model) {
      const now = actual.get(k) ?? '-'
      assert.ok(
        now === s.acked || s.pending.includes(now),
        `${k} is ${now}, but the writer acknowledged ${s.acked} (then started ${JSON.stringify(s.pending)})`
      )
      checked++
    }
    // Each get agrees with the listing, the way a reader process would look a record up.
    for (const n of networks) assert.ok((await expectRight(store.networks.get(n.id)))._tag === 'Some')
    for (const e of endpoints.slice(0, 50)) {
      assert.ok((await expectRight(store.endpoints.get(e.id)))._tag === 'Some')
    }
    await store.close()

    // Temp files a kill left behind are not records, and the sweep removes them all.
    const dirsToScan = ['networks', 'endpoints', `leases/${SPACE}`].map((d) => join(dir, 'v1', d))
    let temps = 0
    for (const d of dirsToScan) {
      const names = await readdir(d)
      temps += names.filter(isTempName).length
      const records = names.filter(isRecordName).length
      const listed = d.endsWith('networks')
        ? networks.length
        : d.endsWith('endpoints')
          ? endpoints.length
          : leases.length
      assert.equal(listed, records, `${d}: every record file listed, nothing else`)
    }
    const swept = await openStore(dir, { tempMaxAgeMs: 0 })
    await swept.close()
    for (const d of dirsToScan) assert.deepEqual((await readdir(d)).filter(isTempName), [], `${d} swept`)

    assert.ok(acks >= KILLS / 2, `the writers acknowledged only ${acks} changes`)
    assert.ok(inFlightAtKill >= 10, `only ${inFlightAtKill} kills landed during a change`)
    t.diagnostic(
      `${KILLS} kills in ${killMs} ms; ${acks} acknowledged changes, ${checked} keys checked, ` +
        `${inFlightAtKill} kills during a change, ${temps} temp files left by kills (swept)`
    )
  })
})
