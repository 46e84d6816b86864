/**
 * What an iptables change retries (real iptables): only contention. A rule iptables refuses fails
 * at once; the xtables lock held by another program is waited for, within the deadline, and held
 * past it gives a Transient error. The lock exists only for iptables-legacy (iptables-nft ignores
 * it), so those cases run iptables-legacy inside a network namespace of their own: its tables are
 * that namespace's, while /run/xtables.lock is the host's.
 */
import { strict as assert } from 'node:assert'
import { spawn, type ChildProcess } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { describe as describeError } from '@isthmus/core'
import { execFileExec, type Exec } from '../src/index.js'
import { removeAll, sync, type Iptables } from '../src/iptables.js'
import { fails, ok, ourRules, requireRoot, Scope, sh } from './helpers.js'

const scope = new Scope()
const P = scope.chainPrefix
const real = execFileExec()

/** Every restore run, to count attempts. */
const restores: string[] = []
const counting =
  (inner: Exec): Exec =>
  (file, args, input) => {
    if (file.includes('restore')) restores.push(input ?? '')
    return inner(file, args, input)
  }

const iptables = (exec: Exec, deadlineMs: number, legacy = false): Iptables => ({
  exec: counting(exec),
  prefix: P,
  deadlineMs,
  commands: legacy
    ? {
        4: { save: 'iptables-legacy-save', restore: 'iptables-legacy-restore' },
        6: { save: 'ip6tables-legacy-save', restore: 'ip6tables-legacy-restore' }
      }
    : {
        4: { save: 'iptables-save', restore: 'iptables-restore' },
        6: { save: 'ip6tables-save', restore: 'ip6tables-restore' }
      }
})

const rule = (spec: string) => ({
  table: 'filter',
  chain: `${P}-FORWARD`,
  spec: `${spec} -m comment --comment "isthmus:net:ipt-${scope.id}"`
})

/** Hold the host's xtables lock for `seconds` (as another iptables-legacy user would); resolves once held. */
const holdLock = async (seconds: number): Promise<ChildProcess> => {
  const holder = scope.process(spawn('flock', ['/run/xtables.lock', 'sleep', String(seconds)], { stdio: 'ignore' }))
  const until = Date.now() + 5_000
  for (;;) {
    const free = await new Promise<boolean>((resolve) =>
      spawn('flock', ['-n', '/run/xtables.lock', 'true']).on('exit', (code) => resolve(code === 0))
    )
    if (!free) return holder
    if (Date.now() > until) assert.fail('the xtables lock was never held')
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('iptables: only contention is retried (real iptables)', () => {
  const ns = `isthmus-test-${scope.id}-ipt`
  /** Every command inside the namespace `ns`. */
  const inNs: Exec = (file, args, input) => real('ip', ['netns', 'exec', ns, file, ...args], input)

  before(() => {
    requireRoot()
    scope.addNetns('ipt')
  })
  after(async () => {
    await removeAll(iptables(real, 5_000), 4)()
    await scope.cleanup()
  })

  it('a rule iptables refuses fails at once, after one attempt, naming the rule and with iptables’ own words', async () => {
    restores.length = 0
    const started = Date.now()
    const e = await fails(
      sync(iptables(real, 5_000), 4, `isthmus:net:ipt-${scope.id}`, [rule('-p tcp --dport 99999 -j ACCEPT')])
    )
    assert.equal(restores.length, 1, 'one attempt')
    assert.ok(Date.now() - started < 2_000)
    assert.equal(e._tag, 'Dataplane')
    const text = describeError(e)
    assert.match(
      text,
      new RegExp(
        `^host networking command failed \\(iptables-restore --noflush \\*filter -A ${P}-FORWARD -p tcp --dport 99999 `
      )
    )
    assert.match(text, /invalid port\/service `99999' specified/)
    assert.doesNotMatch(text, /Try `iptables-restore -h'/)
    assert.deepEqual(
      ourRules(P).filter((r) => r.includes('99999')),
      []
    )
  })

  it('waits for the xtables lock another program holds, within the deadline, then applies', async () => {
    await holdLock(2)
    restores.length = 0
    const started = Date.now()
    assert.equal(
      await ok(sync(iptables(inNs, 5_000, true), 4, `isthmus:net:ipt-${scope.id}`, [rule('-j ACCEPT')])),
      true
    )
    assert.ok(Date.now() - started >= 1_000, `waited ${Date.now() - started} ms`)
    const saved = sh('ip', ['netns', 'exec', ns, 'iptables-legacy-save'])
    assert.match(saved, new RegExp(`-A ${P}-FORWARD -m comment --comment "?isthmus:net:ipt-${scope.id}"? -j ACCEPT`))
  })

  it('gives a Transient error naming the lock when it is held past the deadline', async () => {
    const holder = await holdLock(5)
    const started = Date.now()
    const e = await fails(sync(iptables(inNs, 1_000, true), 4, `isthmus:net:ipt2-${scope.id}`, [rule('-j DROP')]))
    const took = Date.now() - started
    holder.kill('SIGKILL')
    assert.equal(e._tag, 'Transient')
    assert.match(
      describeError(e),
      /^temporary failure, try again: iptables: the rules of isthmus:net:ipt2-\S+ waited 1000 ms for other writers and gave up \(.*xtables lock/s
    )
    assert.ok(took >= 1_000 && took < 4_000, `took ${took} ms`)
  })
})
