/**
 * The kept spawner (spawner/*.go, spawner.ts): the same answers as `execFileExec` for the same
 * commands (exit codes, stdout, stderr, stdin), its failures in the same shapes (a command that
 * does not exist, a timeout, output past maxBuffer, a signal), 100 commands at once each with its
 * own output, a spawner killed mid-command (that command fails, the next one gets a new spawner),
 * and no spawner left behind: not after `close`, not after its parent is killed with SIGKILL.
 */
import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import type { CoreError, Logger } from '@isthmus/core'
import { execFileExec, spawnerExec, type Exec, type KeptSpawner } from '../src/index.js'
import { buildSpawner, requireRoot } from './helpers.js'

const pkg = resolve(fileURLToPath(new URL('.', import.meta.url)), '..')
const root = resolve(pkg, '../..')

const outcome = async (exec: Exec, file: string, args: ReadonlyArray<string>, input?: string) => {
  const r = await exec(file, args, input)()
  return E.isRight(r) ? { ok: r.right } : { error: r.left }
}
const left = async (exec: Exec, file: string, args: ReadonlyArray<string>): Promise<CoreError> => {
  const r = await exec(file, args)()
  if (E.isRight(r)) assert.fail(`expected a failure, got ${JSON.stringify(r.right)}`)
  return r.left
}

/** The command name of a live process, if any. */
const commOf = (pid: number): string | undefined => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
  } catch {
    return undefined
  }
}
/** The children of every thread of `pid`. */
const childrenOf = (pid: number): number[] => {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((t) =>
      readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
    )
  } catch {
    return []
  }
}
/** End a process this test started, if it still runs under that name (a pid may be reused). */
const endOwn = (pid: number, comm: string): void => {
  if (commOf(pid) === comm) process.kill(pid, 'SIGKILL')
}

/** Whether a process with this pid exists (a zombie counts as gone). */
const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}
const waitGone = async (pid: number, ms: number): Promise<boolean> => {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (!alive(pid)) return true
    await new Promise((r) => setTimeout(r, 20))
  }
  return !alive(pid)
}

describe('the kept spawner', () => {
  const direct = execFileExec()
  let kept: KeptSpawner
  const started: number[] = []
  const orphans: number[] = []

  before(() => {
    requireRoot()
    buildSpawner()
    kept = spawnerExec()
  })
  after(async () => {
    await kept.close()
    for (const pid of started) endOwn(pid, 'isthmus-spawner')
    for (const pid of orphans) endOwn(pid, 'sleep')
  })

  it('answers as execFileExec does: exit codes, stdout, stderr, stdin, an empty stdin, LC_ALL=C', async () => {
    const cases: Array<[string, ReadonlyArray<string>, string | undefined]> = [
      ['sh', ['-c', 'echo out; echo err >&2; exit 3'], undefined],
      ['sh', ['-c', 'exit 0'], undefined],
      ['cat', [], 'line one\nline two\n'],
      ['cat', [], undefined],
      ['cat', [], ''],
      ['sh', ['-c', 'echo "$LC_ALL"'], undefined],
      ['sh', ['-c', 'head -c 100 >/dev/null; echo read'], 'x'.repeat(1 << 20)],
      ['ip', ['-json', 'link', 'show', 'lo'], undefined],
      ['ip', ['link', 'show', 'dev', 'nonexistent0'], undefined],
      ['printf', ['%s', 'ünïcödé ✓'], undefined]
    ]
    for (const [file, args, input] of cases) {
      const mine = await outcome(kept.exec, file, args, input)
      const theirs = await outcome(direct, file, args, input)
      assert.deepEqual(mine, theirs, `${file} ${args.join(' ')}`)
    }
    const pid = kept.pid()
    assert.ok(pid !== undefined && alive(pid), 'one spawner runs')
    started.push(pid)
  })

  it('passes a large output whole (4 MiB)', async () => {
    const r = await outcome(kept.exec, 'head', ['-c', String(4 << 20), '/dev/zero'])
    assert.equal(r.ok?.stdout.length, 4 << 20)
    assert.equal(r.ok?.exitCode, 0)
  })

  it('a command that does not exist is Io; one killed at its timeout is Dataplane 124; so is one killed by a signal', async () => {
    const missing = await left(kept.exec, 'isthmus-no-such-command', [])
    assert.equal(missing._tag, 'Io')
    assert.match(missing._tag === 'Io' ? missing.cause : '', /isthmus-no-such-command/)

    const quick = spawnerExec({ timeoutMs: 300 })
    try {
      const t0 = Date.now()
      const slow = await left(quick.exec, 'sleep', ['5'])
      assert.ok(Date.now() - t0 < 2_000, 'killed at its timeout')
      assert.equal(slow._tag, 'Dataplane')
      if (slow._tag === 'Dataplane') {
        assert.equal(slow.exitCode, 124)
        assert.deepEqual(slow.argv, ['sleep', '5'])
        assert.match(slow.stderr, /killed \(SIGKILL\) after 300 ms/)
      }
    } finally {
      await quick.close()
    }

    const signalled = await left(kept.exec, 'sh', ['-c', 'kill -TERM $$'])
    const same = await left(direct, 'sh', ['-c', 'kill -TERM $$'])
    assert.deepEqual(
      [signalled._tag, signalled._tag === 'Dataplane' ? signalled.exitCode : 0],
      [same._tag, same._tag === 'Dataplane' ? same.exitCode : 0]
    )
    assert.match(signalled._tag === 'Dataplane' ? signalled.stderr : '', /killed \(SIGTERM\)/)
  })

  it('output past maxBuffer is Io, as with execFileExec', async () => {
    const small = spawnerExec({ maxBuffer: 1000 })
    try {
      const mine = await left(small.exec, 'head', ['-c', '5000', '/dev/zero'])
      const theirs = await left(execFileExec({ maxBuffer: 1000 }), 'head', ['-c', '5000', '/dev/zero'])
      assert.deepEqual([mine._tag, theirs._tag], ['Io', 'Io'])
      const fits = await outcome(small.exec, 'head', ['-c', '1000', '/dev/zero'])
      assert.equal(fits.ok?.stdout.length, 1000)
    } finally {
      await small.close()
    }
  })

  it('answers 100 commands at once, each with its own output', async () => {
    const outs = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        kept.exec('sh', [
          '-c',
          `sleep 0.0$(( $0 % 10 )); echo "out $0"; echo "err $0" >&2; exit $(( $0 % 7 ))`,
          String(i)
        ])()
      )
    )
    outs.forEach((r, i) => {
      assert.ok(E.isRight(r), `command ${i}`)
      assert.deepEqual(r.right, { stdout: `out ${i}\n`, stderr: `err ${i}\n`, exitCode: i % 7 })
    })
  })

  it('a spawner killed mid-command fails that command with Io; the next one runs on a new spawner', async () => {
    const first = kept.pid() ?? assert.fail('a spawner runs')
    const pending = kept.exec('sleep', ['2'])()
    await new Promise((r) => setTimeout(r, 100))
    process.kill(first, 'SIGKILL')
    const lost = await pending
    assert.ok(E.isLeft(lost))
    assert.equal(lost.left._tag, 'Io')
    assert.match(lost.left._tag === 'Io' ? lost.left.cause : '', /may have run, and is not run again/)

    const next = await outcome(kept.exec, 'echo', ['again'])
    assert.deepEqual(next.ok, { stdout: 'again\n', stderr: '', exitCode: 0 })
    const second = kept.pid()
    assert.ok(second !== undefined && second !== first, 'a new spawner')
    started.push(second)
  })

  it('close ends the spawner after answering what it runs; later commands run as processes of their own', async () => {
    const own = spawnerExec()
    const warm = await outcome(own.exec, 'true', [])
    assert.equal(warm.ok?.exitCode, 0)
    const pid = own.pid() ?? assert.fail('a spawner runs')
    started.push(pid)
    const running = own.exec('sh', ['-c', 'sleep 0.3; echo late'])()
    await new Promise((r) => setTimeout(r, 50))
    await own.close()
    const answered = await running
    assert.deepEqual(E.isRight(answered) ? answered.right.stdout : answered.left, 'late\n')
    assert.ok(await waitGone(pid, 2_000), 'the spawner is gone')
    assert.equal(own.pid(), undefined)
    const after = await outcome(own.exec, 'echo', ['direct'])
    assert.equal(after.ok?.stdout, 'direct\n')
    assert.equal(own.pid(), undefined, 'no new spawner after close')
  })

  it('a parent killed with SIGKILL leaves no spawner (idle, or running a command: it does not wait for it)', async () => {
    for (const busy of [false, true]) {
      const code = `
        const { spawnerExec } = await import(${JSON.stringify(join(pkg, 'src/index.ts'))})
        const s = spawnerExec()
        await s.exec('true', [])()
        console.log(String(s.pid()))
        ${busy ? "void s.exec('sleep', ['5'])()" : ''}
        setInterval(() => undefined, 1000)
      `
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', '--conditions=@isthmus/source', '--input-type=module', '-e', code],
        { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] }
      )
      try {
        const pid = await new Promise<number>((res, rej) => {
          let out = ''
          child.stdout.on('data', (d: Buffer) => {
            out += d.toString()
            if (out.includes('\n')) res(Number(out.trim()))
          })
          child.on('exit', (c) => rej(new Error(`the child exited (${c}) before it told its spawner`)))
        })
        assert.ok(Number.isInteger(pid) && alive(pid), `a spawner runs (${pid})`)
        started.push(pid)
        if (busy) {
          await new Promise((r) => setTimeout(r, 100))
          orphans.push(...childrenOf(pid))
          assert.equal(orphans.length, 1, 'the spawner runs the sleep')
        }
        child.kill('SIGKILL')
        // At once, not after its command: PR_SET_PDEATHSIG, not only the end of its stdin.
        assert.ok(await waitGone(pid, 1_000), `the spawner ${pid} went with its parent (busy: ${busy})`)
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      }
    }
  })

  it('without the binary, commands run as processes of their own, said once at debug level', async () => {
    const said: string[] = []
    const log: Logger = {
      debug: (msg) => said.push(`debug ${msg}`),
      info: (msg) => said.push(`info ${msg}`),
      warn: (msg) => said.push(`warn ${msg}`),
      error: (msg) => said.push(`error ${msg}`)
    }
    const none = spawnerExec({ binary: '/nonexistent/isthmus-spawner', log })
    const a = await outcome(none.exec, 'echo', ['a'])
    const b = await outcome(none.exec, 'sh', ['-c', 'exit 4'])
    assert.deepEqual([a.ok?.stdout, b.ok?.exitCode], ['a\n', 4])
    assert.equal(none.pid(), undefined)
    assert.deepEqual(said, ['debug no spawner binary: commands run as processes of their own'])
    await none.close()
  })
})
