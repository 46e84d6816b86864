/**
 * ADD, CHECK and DEL with CNI_NETNS=/proc/<pid>/ns/net, as containerd and CRI-O pass it: the
 * namespace of a running process, not a file under /var/run/netns. On the real kernel.
 */
import { strict as assert } from 'node:assert'
import { spawn, type ChildProcess } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { cniEnv, invoke, realRuntime, requireRoot, Scope, sh, type IpLinkJson } from './support.js'

const scope = new Scope()
const runtime = realRuntime()
const conf = {
  cniVersion: '1.0.0',
  name: `proc-${scope.id}`,
  type: 'isthmus',
  bridge: scope.bridge('p'),
  isGateway: true,
  stateDir: scope.tmpDir('state'),
  chainPrefix: scope.chainPrefix,
  ipam: { ranges: [[{ subnet: '10.231.149.0/24' }]] }
}
const GATEWAY = '10.231.149.1'

let sleeper: ChildProcess | undefined
const pid = (): number => {
  assert.ok(sleeper?.pid !== undefined, 'the namespace holder runs')
  return sleeper.pid
}
const inNs = (args: ReadonlyArray<string>): string => sh('nsenter', ['-t', String(pid()), '-n', ...args])
const eth0 = (): IpLinkJson | undefined =>
  (JSON.parse(inNs(['ip', '-j', 'addr'])) as IpLinkJson[]).find((l) => l.ifname === 'eth0')

describe('CNI_NETNS=/proc/<pid>/ns/net', () => {
  before(async () => {
    requireRoot()
    sleeper = spawn('unshare', ['-n', 'sleep', '60'], { stdio: 'ignore' })
    // unshare execs sleep in the same process: wait until its namespace differs from ours.
    const ours = sh('readlink', ['/proc/self/ns/net']).trim()
    for (let i = 0; i < 100; i++) {
      const theirs = sh('readlink', [`/proc/${pid()}/ns/net`]).trim()
      if (theirs !== ours) return
      await new Promise((r) => setTimeout(r, 20))
    }
    assert.fail('unshare -n did not make a namespace')
  })
  after(async () => {
    if (sleeper?.pid !== undefined) process.kill(sleeper.pid, 'SIGKILL')
    await scope.cleanup()
  })

  it('ADD puts the address in the process namespace, the gateway answers, CHECK passes, DEL removes it', async () => {
    const env = (command: string) =>
      cniEnv(command, { cid: `ctr-${scope.id}`, netns: `/proc/${pid()}/ns/net`, ifName: 'eth0' })

    const add = await invoke(runtime, env('ADD'), conf)
    assert.equal(add.exitCode, 0, add.stdout)
    const ips = (add.doc?.['ips'] ?? []) as Array<{ address: string; gateway?: string }>
    assert.equal(ips.length, 1)
    assert.equal(ips[0]?.gateway, GATEWAY)

    const inside = (eth0()?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`)
    assert.deepEqual(inside, [ips[0]?.address])
    inNs(['/bin/busybox', 'ping', '-c1', '-W2', GATEWAY])

    const check = await invoke(runtime, env('CHECK'), { ...conf, prevResult: add.doc })
    assert.deepEqual([check.exitCode, check.stdout], [0, ''])

    const del = await invoke(runtime, env('DEL'), conf)
    assert.equal(del.exitCode, 0, del.stdout)
    assert.equal(eth0(), undefined)
  })
})
