/**
 * Kept `ip -batch` processes (batchProcess.ts), side by side with an `ip` process per batch: the
 * same input gives the same exit code, the same stderr and the same links in the kernel.
 */
import { strict as assert } from 'node:assert'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import { batchProcesses, execFileExec, type Exec, type ExecOutput } from '../src/index.js'
import { link, requireRoot, Scope, sh } from './helpers.js'

const scope = new Scope()
const direct = execFileExec()
let passed: string[] = []
const counting: Exec = (file, args, input) => {
  passed.push([file, ...args].join(' '))
  return direct(file, args, input)
}
const kept = batchProcesses(counting, { maxProcesses: 2 })

const run = async (exec: Exec, args: ReadonlyArray<string>, lines: ReadonlyArray<string>): Promise<ExecOutput> => {
  const r = await exec('ip', args, `${lines.join('\n')}\n`)()
  if (E.isLeft(r)) assert.fail(`${args.join(' ')}: ${JSON.stringify(r.left)}`)
  return r.right
}

// `ip` processes whose parent is this test process (the kept ones).
const ipChildren = (): number[] =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
        return stat.includes('(ip)') && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid
      } catch {
        return false
      }
    })
    .map(Number)

describe('kept ip -batch processes (real kernel)', () => {
  before(requireRoot)
  after(async () => {
    await kept.close()
    await scope.cleanup()
  })

  const dummy = (tag: string): string => scope.track(`itd${scope.id}${tag}`)

  it('a plain batch stops at its first failing line, as an ip process of its own does', async () => {
    for (const exec of [direct, kept.exec]) {
      const [a, b] = [dummy(exec === direct ? 'a' : 'c'), dummy(exec === direct ? 'b' : 'd')]
      const out = await run(
        exec,
        ['-batch', '-'],
        [`link add ${a} type bridge`, `link set dev ${a}x up`, `link add ${b} type bridge`]
      )
      assert.equal(out.exitCode, 1)
      assert.match(out.stderr, /Cannot find device "[^"]+x"\nCommand failed -:2\n$/)
      assert.ok(link(a) !== undefined, 'the line before the failure ran')
      assert.equal(link(b), undefined, 'the line after it did not')
    }
  })

  it('a -force batch runs every line and numbers the failures within the batch', async () => {
    const outs: ExecOutput[] = []
    for (const exec of [direct, kept.exec]) {
      const a = dummy(exec === direct ? 'e' : 'f')
      outs.push(
        await run(
          exec,
          ['-force', '-batch', '-'],
          ['link del dev nonexist0', `link add ${a} type bridge`, 'link del dev nonexist1']
        )
      )
      assert.ok(link(a) !== undefined)
    }
    assert.deepEqual(outs[1], outs[0])
    assert.equal(outs[1]?.exitCode, 1)
    assert.match(outs[1]?.stderr ?? '', /Command failed -:1\n.*\nCommand failed -:3\n$/s)
  })

  it('a line that makes ip exit ends its batch with the exit code; the next batch gets a new process', async () => {
    const bad = ['neigh del 10.240.99.9 dev lo']
    const own = await run(direct, ['-force', '-batch', '-'], bad)
    const viaKept = await run(kept.exec, ['-force', '-batch', '-'], bad)
    assert.notEqual(own.exitCode, 0)
    assert.equal(viaKept.exitCode, own.exitCode)
    const a = dummy('g')
    assert.equal((await run(kept.exec, ['-batch', '-'], [`link add ${a} type bridge`])).exitCode, 0)
    assert.ok(link(a) !== undefined)
  })

  it('batches queued behind one that makes ip exit run on a new process', async () => {
    const one = batchProcesses(direct, { maxProcesses: 1 })
    try {
      const names = [dummy('q1'), dummy('q2')]
      const outs = await Promise.all([
        run(one.exec, ['-force', '-batch', '-'], ['neigh del 10.240.99.9 dev lo']),
        ...names.map((n) => run(one.exec, ['-batch', '-'], [`link add ${n} type bridge`]))
      ])
      assert.notEqual(outs[0]?.exitCode, 0)
      assert.deepEqual(
        outs.slice(1).map((o) => o.exitCode),
        [0, 0]
      )
      for (const n of names) assert.ok(link(n) !== undefined, n)
    } finally {
      await one.close()
    }
  })

  it('batches side by side use at most maxProcesses processes, and all complete', async () => {
    const names = Array.from({ length: 8 }, (_, i) => dummy(`p${i}`))
    const outs = await Promise.all(
      names.map((n) => run(kept.exec, ['-batch', '-'], [`link add ${n} type bridge`, `link set dev ${n} up`]))
    )
    assert.deepEqual(
      outs.map((o) => o.exitCode),
      names.map(() => 0)
    )
    for (const n of names) assert.ok(link(n)?.flags.includes('UP'), n)
    assert.ok(ipChildren().length <= 2, `kept processes: ${ipChildren().join(' ')}`)
  })

  it('with overflowToInner, a batch that finds every kept process busy runs through the wrapped Exec at once', async () => {
    const one = batchProcesses(counting, { maxProcesses: 1, overflowToInner: true })
    try {
      passed = []
      const names = Array.from({ length: 4 }, (_, i) => dummy(`o${i}`))
      const outs = await Promise.all(
        names.map((n) => run(one.exec, ['-batch', '-'], [`link add ${n} type bridge`, `link set dev ${n} up`]))
      )
      assert.deepEqual(
        outs.map((o) => o.exitCode),
        names.map(() => 0)
      )
      for (const n of names) assert.ok(link(n)?.flags.includes('UP'), n)
      assert.equal(passed.length, 3, `three ran as processes of their own: ${passed.join('; ')}`)
    } finally {
      await one.close()
    }
  })

  it('only host-namespace batches are kept: reads, ip -n and other commands start their own process', async () => {
    passed = []
    await run(kept.exec, ['-json', '-batch', '-'], ['link show dev lo'])
    await kept.exec('ip', ['link', 'show', 'dev', 'lo'])()
    await run(kept.exec, ['-batch', '-'], ['link set dev lo up'])
    assert.deepEqual(passed, ['ip -json -batch -', 'ip link show dev lo'])
  })

  it('a device deleted and made again under its name by another process is addressed as the new one, not by the index a kept ip remembers', async () => {
    const one = batchProcesses(direct, { maxProcesses: 1 })
    try {
      const br = dummy('rb')
      const [first, second] = [dummy('r1'), dummy('r2')]
      sh('ip', ['link', 'add', 'name', br, 'type', 'bridge'])
      // As a spare refill or an endpoint's pair: the bridge is named only as the master.
      const add = (n: string) =>
        run(
          one.exec,
          ['-batch', '-'],
          [`link add name ${n} master ${br} up type veth peer name ${n}p`, `link set dev ${n} alias x`]
        )
      assert.equal((await add(first)).exitCode, 0)
      scope.track(`${first}p`)
      // Another process replaces the bridge: same name, another interface index.
      sh('ip', ['link', 'del', 'dev', br])
      sh('ip', ['link', 'add', 'name', br, 'type', 'bridge'])
      const out = await add(second)
      scope.track(`${second}p`)
      assert.deepEqual([out.exitCode, out.stderr], [0, ''])
      assert.equal(link(second)?.master, br)
    } finally {
      await one.close()
    }
  })

  it('a kept ip that ran an ip neigh command (which reads every link into its memory) does not address a device made again since', async () => {
    const one = batchProcesses(direct, { maxProcesses: 1 })
    try {
      const [a, b] = [dummy('na'), dummy('nb')]
      const peer = dummy('n1')
      sh('ip', ['link', 'add', 'name', a, 'type', 'bridge'])
      sh('ip', ['link', 'add', 'name', b, 'type', 'bridge'])
      // names only bridge a, yet ip now knows bridge b's index too
      assert.equal(
        (await run(one.exec, ['-force', '-batch', '-'], [`neigh flush to 10.9.9.9 dev ${a} nud all`])).exitCode,
        0
      )
      sh('ip', ['link', 'del', 'dev', b])
      sh('ip', ['link', 'add', 'name', b, 'type', 'bridge'])
      const out = await run(
        one.exec,
        ['-batch', '-'],
        [`link add name ${peer} master ${b} type veth peer name ${peer}p`]
      )
      scope.track(`${peer}p`)
      assert.deepEqual([out.exitCode, out.stderr], [0, ''])
      assert.equal(link(peer)?.master, b)
    } finally {
      await one.close()
    }
  })

  it('close keeps the process alive until a batch in flight is done, with nothing else to keep it', () => {
    // In a process of its own: there the kept ip is the only thing the event loop waits for.
    const code = `
      const { batchProcesses, execFileExec } = await import(${JSON.stringify(fileURLToPath(new URL('../src/index.ts', import.meta.url)))})
      const k = batchProcesses(execFileExec())
      await k.exec('ip', ['-force', '-batch', '-'], 'link show lo\\n')()
      const running = k.exec('ip', ['-force', '-batch', '-'], 'link show lo\\n'.repeat(5000))()
      await new Promise((r) => setImmediate(r)) // the batch is sent, and takes ip a while
      await k.close()
      console.log('closed', (await running)._tag)
    `
    const out = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--conditions=@isthmus/source', '--input-type=module', '-e', code],
      { cwd: fileURLToPath(new URL('../../..', import.meta.url)), encoding: 'utf8', timeout: 20_000 }
    )
    assert.deepEqual([out.status, out.stdout], [0, 'closed Right\n'], out.stderr)
  })

  it('close ends the kept processes', async () => {
    const before = ipChildren()
    assert.ok(before.length > 0)
    await kept.close()
    for (const pid of before) {
      assert.equal(existsSync(`/proc/${pid}/stat`) && readFileSync(`/proc/${pid}/stat`, 'utf8').includes('(ip)'), false)
    }
  })
})
