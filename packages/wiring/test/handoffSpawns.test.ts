/**
 * A CNI ADD handed to the daemon (`cniHandoffServer` over `linuxRuntime({ deferLinkRemoval: true })`,
 * as `isthmus serve` and the CNI bench run it) starts no process from Node once the session is
 * warm: its host `ip` work goes to a kept `ip` process, the sandbox's `ip -n` batch to the kept
 * spawner. Closing the server ends both. Real kernel, root; everything under this run's names
 * (netns `isthmus-test-<hex>-*`, bridge `itw<hex>`, chains `IWS<hex>-*`, 10.240.71.0/24), removed
 * in `after`.
 */
import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { silentLogger } from '@isthmus/core'
import { linuxDataplane } from '@isthmus/dataplane-linux'
import { handOff, HANDOFF_VERSION, type HandoffServer } from '@isthmus/handoff'
import { cniHandoffServer, linuxRuntime } from '../src/index.js'
// The dataplane's test support: which processes this one started, and how.
import { children, countSpawns } from '../../dataplane-linux/test/support/processes.js'

const id = randomBytes(3).toString('hex')
const dir = mkdtempSync(join(tmpdir(), `isthmus-test-${id}-`))
const socket = join(dir, 'cni.sock')
const bridge = `itw${id}`
const chainPrefix = `IWS${id}`
const netnsNames: string[] = []
const conf = JSON.stringify({
  cniVersion: '1.0.0',
  name: `spawns-${id}`,
  type: 'isthmus',
  bridge,
  isGateway: true,
  stateDir: join(dir, 'state'),
  chainPrefix,
  ipam: { ranges: [[{ subnet: '10.240.71.0/24' }]] }
})

const quiet = (file: string, args: ReadonlyArray<string>): void => {
  try {
    execFileSync(file, [...args], { stdio: 'ignore', timeout: 10_000 })
  } catch {
    // already gone
  }
}
const addNetns = (tag: string): string => {
  const name = `isthmus-test-${id}-${tag}`
  netnsNames.push(name)
  execFileSync('ip', ['netns', 'add', name])
  return name
}

const call = async (command: 'ADD' | 'DEL', cid: string, netns: string) => {
  const out = await handOff(socket, {
    v: HANDOFF_VERSION,
    env: {
      CNI_COMMAND: command,
      CNI_CONTAINERID: cid,
      CNI_NETNS: `/var/run/netns/${netns}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/usr/lib/cni'
    },
    stdin: conf,
    selfNames: ['isthmus']
  })
  assert.equal(out._tag, 'Answered', JSON.stringify(out))
  if (out._tag !== 'Answered') throw new Error('unreachable')
  assert.equal(out.reply.exitCode, 0, out.reply.stdout + out.reply.stderr)
  return out.reply
}

const addressesIn = (netns: string): string[] =>
  (
    JSON.parse(
      execFileSync('ip', ['-n', netns, '-json', '-4', 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' })
    ) as Array<{
      addr_info: Array<{ local: string; prefixlen: number }>
    }>
  ).flatMap((l) => l.addr_info.map((a) => `${a.local}/${a.prefixlen}`))

describe("a handed-off CNI ADD in the daemon's session (real kernel)", () => {
  let server: HandoffServer | undefined
  const before0 = new Set<string>()

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'this test creates namespaces, a bridge and iptables chains: run it as root')
    const script = fileURLToPath(new URL('../../dataplane-linux/scripts/build-spawner.mjs', import.meta.url))
    execFileSync(process.execPath, [script], { stdio: 'ignore' })
    for (const c of children()) before0.add(c)
    server = await cniHandoffServer({
      socket,
      runtime: (env, selfNames) => linuxRuntime({ env, selfNames, deferLinkRemoval: true }),
      log: silentLogger
    })
  })
  after(async () => {
    await server?.close()
    for (const n of netnsNames) quiet('ip', ['netns', 'del', n])
    quiet('ip', ['link', 'del', 'dev', bridge])
    await linuxDataplane({ chainPrefix }).removeFirewall()()
    rmSync(dir, { recursive: true, force: true })
  })

  it('starts no Node child process once warm (kept ip and the spawner do the work); close ends them', async () => {
    const [a, b] = [addNetns('a'), addNetns('b')]
    // The first ADD makes the bridge and the rules, and starts the session's helpers.
    await call('ADD', `a-${id}`, a)
    assert.deepEqual(addressesIn(a), ['10.240.71.2/24'])
    const helpers = children().filter((c) => !before0.has(c))
    assert.ok(helpers.includes('isthmus-spawner'), `the session's spawner runs: ${helpers.join(', ')}`)

    const counted = countSpawns()
    try {
      await call('ADD', `b-${id}`, b)
    } finally {
      counted.restore()
    }
    assert.deepEqual(counted.calls, [], 'the ADD started no process from Node')
    assert.deepEqual(addressesIn(b), ['10.240.71.3/24'])

    await call('DEL', `a-${id}`, a)
    await call('DEL', `b-${id}`, b)
    await server?.close()
    server = undefined
    await new Promise((r) => setTimeout(r, 100))
    assert.deepEqual(
      children().filter((c) => c === 'isthmus-spawner' || c === 'ip'),
      [],
      'no spawner and no kept ip after the server closed'
    )
  })
})
