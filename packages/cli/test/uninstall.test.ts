/**
 * `isthmus uninstall --purge` leaves the host as it found it: a snapshot of the links (`ip -json
 * link`), of iptables' filter and nat tables (counters stripped) and of the files under the test's
 * directory is taken; isthmus is installed (`isthmus cni install`) and used (`isthmus serve`, with
 * the capabilities packaging/systemd/isthmus.service keeps and no_new_privs, takes a Docker network
 * and endpoint on its plugin socket and a CNI ADD through the installed client into a namespace);
 * the daemon is stopped, uninstall runs, and the snapshot is taken again.
 *
 * Other tests make and remove links and rules meanwhile, so the two snapshots are compared on
 * everything this test's isthmus could have made (its names, its chain prefix, its directory),
 * and decoys stand for everybody else's: a bridge with another isthmus network's mark, a spare
 * pair and an endpoint-named veth on it, chains under another prefix that starts like this one's.
 * They must all survive.
 */
import { strict as assert } from 'node:assert'
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { HOST_IF_PREFIX, PEER_IF_PREFIX } from '@isthmus/core'
import { chainNames } from '@isthmus/dataplane-linux'
import { stopChild, uniquePrefix, waitUntil } from '@isthmus/testkit'
import { createEndpoint, createNetwork } from '../../cnm-server/test/support/cnmCalls.js'

const execFileP = promisify(execFile)
const root = fileURLToPath(new URL('../../../', import.meta.url))
const BIN = join(root, 'packages/cli/src/bin/isthmus.ts')
const NODE_ARGS = ['--import', 'tsx', '--conditions=@isthmus/source', BIN]
const UNIT = join(root, 'packaging/systemd/isthmus.service')

const sh = (file: string, args: ReadonlyArray<string>): string => execFileSync(file, args, { encoding: 'utf8' })
const quiet = (file: string, args: ReadonlyArray<string>): void => {
  try {
    execFileSync(file, args, { stdio: 'ignore' })
  } catch {
    // already gone
  }
}
const hex = (n: number): string => randomBytes(n).toString('hex')

interface Link {
  readonly ifname: string
  readonly ifalias?: string
  readonly master?: string
  readonly linkinfo?: { readonly info_kind?: string }
}
const links = (): ReadonlyArray<Link> => JSON.parse(sh('ip', ['-json', '-details', 'link', 'show'])) as Link[]

// One line per link, rule, chain and file; counters and comments stripped.
const snapshot = async (dir: string): Promise<ReadonlySet<string>> => {
  const lines = new Set<string>()
  for (const l of links()) {
    lines.add(`link ${l.ifname} kind=${l.linkinfo?.info_kind ?? ''} master=${l.master ?? ''} alias=${l.ifalias ?? ''}`)
  }
  for (const table of ['filter', 'nat']) {
    for (const line of sh('iptables-save', ['-t', table]).split('\n')) {
      if (line === '' || line.startsWith('#') || line === 'COMMIT') continue
      lines.add(`${table} ${line.replace(/ \[\d+:\d+\]$/, '')}`)
    }
  }
  const walk = async (d: string): Promise<void> => {
    for (const name of await readdir(d).catch(() => [])) {
      const p = join(d, name)
      const st = await stat(p)
      lines.add(`file ${relative(dir, p)} ${st.isDirectory() ? 'dir' : st.size}`)
      if (st.isDirectory()) await walk(p)
    }
  }
  await walk(dir)
  return lines
}

const diff = (a: ReadonlySet<string>, b: ReadonlySet<string>): ReadonlyArray<string> => [
  ...[...a].filter((x) => !b.has(x)).map((x) => `- ${x}`),
  ...[...b].filter((x) => !a.has(x)).map((x) => `+ ${x}`)
]

// The capabilities the unit keeps, as setpriv's bounding set.
const unitCapabilities = async (): Promise<string> => {
  const m = /^CapabilityBoundingSet=(.+)$/m.exec(await readFile(UNIT, 'utf8'))
  assert.ok(m?.[1] !== undefined, 'the unit names its capabilities')
  return ['-all', ...m[1].split(/\s+/).map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`)].join(',')
}

const isthmus = (args: ReadonlyArray<string>): Promise<{ code: number; stdout: string; stderr: string }> =>
  execFileP(process.execPath, [...NODE_ARGS, ...args], { cwd: root }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr })
  )

const cniCall = (client: string, env: Record<string, string>, conf: unknown): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = execFile(client, [], { env: { PATH: process.env['PATH'] ?? '', ...env } }, (err, stdout, stderr) =>
      err === null ? resolve(stdout) : reject(new Error(`CNI ${env['CNI_COMMAND']}: ${stdout} ${stderr}`))
    )
    child.stdin?.end(JSON.stringify(conf))
  })

describe('isthmus uninstall --purge', () => {
  const prefix = uniquePrefix('un')
  const chainPrefix = `UN${hex(4)}`
  const decoyPrefix = `${chainPrefix}X`
  const bridge = `${prefix}b`
  const dockerBridge = `${prefix}k`
  const decoyBridge = `${prefix}d`
  const decoySpare = `${HOST_IF_PREFIX}${hex(5)}a`
  const decoyPeer = `${PEER_IF_PREFIX}${decoySpare.slice(HOST_IF_PREFIX.length)}`
  const decoyPort = `${HOST_IF_PREFIX}${hex(5)}b`
  const decoyPortPeer = `${PEER_IF_PREFIX}${decoyPort.slice(HOST_IF_PREFIX.length)}`
  const ns = `${prefix}ns`
  const octet = 100 + Math.floor(Math.random() * 100)
  let dir = ''
  let daemon: ChildProcess | undefined

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), `${prefix}-`))
    sh('ip', ['netns', 'add', ns])
    // another isthmus network's bridge, its spare and its endpoint; another prefix's chains
    sh('ip', ['link', 'add', decoyBridge, 'type', 'bridge'])
    sh('ip', ['link', 'set', 'dev', decoyBridge, 'alias', `isthmus:net:decoy${hex(8)}`])
    sh('ip', ['link', 'add', decoySpare, 'master', decoyBridge, 'type', 'veth', 'peer', 'name', decoyPeer])
    sh('ip', ['link', 'set', 'dev', decoySpare, 'alias', 'isthmus-spare'])
    sh('ip', ['link', 'add', decoyPort, 'master', decoyBridge, 'type', 'veth', 'peer', 'name', decoyPortPeer])
    const decoyChain = chainNames(decoyPrefix).forward
    sh('iptables', ['-N', decoyChain])
    sh('iptables', ['-I', 'FORWARD', '-j', decoyChain])
  })

  after(async () => {
    if (daemon !== undefined) await stopChild(daemon, 'SIGKILL')
    quiet('ip', ['netns', 'del', ns])
    for (const l of [decoySpare, decoyPort, decoyBridge, bridge, dockerBridge]) quiet('ip', ['link', 'del', l])
    for (const p of [chainPrefix, decoyPrefix]) {
      const c = chainNames(p)
      for (const [table, from, chain] of [
        ['filter', 'FORWARD', c.forward],
        ['filter', 'INPUT', c.input],
        ['nat', 'POSTROUTING', c.postrouting],
        ['nat', 'PREROUTING', c.dnat],
        ['nat', 'OUTPUT', c.dnat]
      ] as const) {
        quiet('iptables', ['-t', table, '-D', from, '-j', chain])
        quiet('iptables', ['-t', table, '-D', from, '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', chain])
      }
      for (const table of ['filter', 'nat']) {
        for (const chain of Object.values(c)) {
          quiet('iptables', ['-t', table, '-F', chain])
          quiet('iptables', ['-t', table, '-X', chain])
        }
      }
    }
    await rm(dir, { recursive: true, force: true })
  })

  it('removes everything it made and nothing else; a second run finds nothing', { timeout: 180_000 }, async () => {
    const state = join(dir, 'state')
    const binDir = join(dir, 'bin')
    const confDir = join(dir, 'conf')
    const socket = join(dir, 'plugin.sock')
    const cniSocket = join(dir, 'cni.sock')
    const where = ['--state-dir', state, '--socket', socket, '--cni-socket', cniSocket, '--chain-prefix', chainPrefix]
    const cniDirs = ['--bin-dir', binDir, '--conf-dir', confDir]
    // This isthmus's: its names, its chains, its directory's files, and (added below) the links it made.
    const made = new Set<string>()
    const ours = (line: string): boolean =>
      line.startsWith('file ') ||
      [prefix, chainPrefix].some((s) => line.includes(s)) ||
      made.has(/^link (\S+) /.exec(line)?.[1] ?? '')
    const before = await snapshot(dir)

    // install
    const installed = await isthmus([
      'cni',
      'install',
      ...cniDirs,
      '--name',
      prefix,
      '--bridge',
      bridge,
      '--subnet',
      `10.${octet}.7.0/24`,
      '--state-dir',
      state
    ])
    assert.equal(installed.code, 0, installed.stderr)
    const conflistPath = join(confDir, '10-isthmus.conflist')
    const conflist = JSON.parse(await readFile(conflistPath, 'utf8')) as {
      cniVersion: string
      name: string
      plugins: Array<Record<string, unknown>>
    }
    conflist.plugins[0] = { ...conflist.plugins[0], chainPrefix, daemon: cniSocket }
    await writeFile(conflistPath, JSON.stringify(conflist, null, 2))

    // run the daemon with the unit's capabilities only
    daemon = spawn(
      'setpriv',
      ['--bounding-set', await unitCapabilities(), '--no-new-privs', process.execPath, ...NODE_ARGS, 'serve', ...where],
      { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] }
    )
    let log = ''
    daemon.stderr!.setEncoding('utf8')
    daemon.stderr!.on('data', (c: string) => (log += c))
    await waitUntil('the daemon to serve', async () => /"message":"cni hand-off"/.test(log), 60_000, 50)

    // Docker's calls: a network and an endpoint (its pool of spares fills in the background)
    const networkId = hex(32)
    const net = await createNetwork(socket, { id: networkId, subnet: `10.${octet}.8.0/24`, bridge: dockerBridge })
    assert.equal(net.status, 200, JSON.stringify(net.body))
    await createEndpoint(socket, { networkId, id: hex(32), poolId: net.poolId })
    await waitUntil(
      'spares on the Docker bridge',
      async () => links().filter((l) => l.master === dockerBridge && l.ifalias === 'isthmus-spare').length >= 2,
      10_000,
      50
    )

    // a CNI ADD through the installed client, handed to the daemon
    const { plugins, ...top } = conflist
    const added = JSON.parse(
      await cniCall(
        join(binDir, 'isthmus'),
        {
          CNI_COMMAND: 'ADD',
          CNI_CONTAINERID: `${prefix}c`,
          CNI_NETNS: `/var/run/netns/${ns}`,
          CNI_IFNAME: 'eth0',
          CNI_PATH: binDir
        },
        { ...top, ...plugins[0] }
      )
    ) as { ips?: Array<{ address: string }> }
    assert.match(added.ips?.[0]?.address ?? '', new RegExp(`^10\\.${octet}\\.7\\.`))
    assert.match(log, /"message":"cni"/, 'the daemon ran the ADD')
    const during = await snapshot(dir)
    for (const l of links()) {
      if (l.master !== bridge && l.master !== dockerBridge) continue
      made.add(l.ifname)
      made.add(`${PEER_IF_PREFIX}${l.ifname.slice(HOST_IF_PREFIX.length)}`)
    }
    assert.ok(made.size >= 6, `links on its bridges: ${[...made].join(' ')}`)
    assert.ok(diff(before, during).filter(ours).length > 5, 'isthmus made links, rules and files')
    assert.ok([...during].some((l) => l.includes(`${chainPrefix}-POSTROUTING`)))

    // refuses while the daemon answers
    const refused = await isthmus(['uninstall', ...where, ...cniDirs])
    assert.equal(refused.code, 1)
    assert.match(refused.stdout, /something answers on .*plugin\.sock.*stop it first/)

    await stopChild(daemon, 'SIGTERM')
    assert.match(log, /"message":"stopped"/)
    daemon = undefined

    const first = await isthmus(['uninstall', '--purge', ...where, ...cniDirs])
    assert.equal(first.code, 0, first.stdout + first.stderr)
    assert.match(first.stdout, new RegExp(`removed bridge ${bridge}`))
    assert.match(first.stdout, new RegExp(`removed bridge ${dockerBridge}`))
    assert.match(first.stdout, new RegExp(`removed iptables chain nat/${chainPrefix}-POSTROUTING`))
    assert.match(first.stdout, /removed .*10-isthmus\.conflist/)

    const afterwards = await snapshot(dir)
    assert.deepEqual(diff(before, afterwards).filter(ours), [], 'the host as before, for everything of this isthmus')
    for (const decoy of [decoyBridge, decoySpare, decoyPort]) {
      assert.ok(
        [...afterwards].some((l) => l.startsWith(`link ${decoy} `)),
        `${decoy} (not this isthmus's) is still there`
      )
    }
    assert.ok(afterwards.has(`filter -A FORWARD -j ${chainNames(decoyPrefix).forward}`), 'the other prefix stays')

    const second = await isthmus(['uninstall', '--purge', ...where, ...cniDirs])
    assert.equal(second.code, 0, second.stdout + second.stderr)
    assert.equal(second.stdout.trim(), 'nothing left to remove')
  })
})
