/**
 * The managed (v2) plugin end to end: plugin/build.mjs assembles config.json + rootfs from this
 * host's files, dockerd installs and enables it (`docker plugin create` + `enable`), and containers
 * on a network of it (network + IPAM driver `<name>:latest`) reach each other.
 */
import { strict as assert } from 'node:assert'
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { linuxDataplane } from '@isthmus/dataplane-linux'
import {
  docker,
  ensureBusyboxImage,
  ensureDockerd,
  mustDocker,
  mustRun,
  removeDockerObjects,
  uniquePrefix,
  type DockerDaemon
} from '@isthmus/testkit'

const BUILD = fileURLToPath(new URL('../plugin/build.mjs', import.meta.url))
const run = promisify(execFile)
/** What a plugin process gets from dockerd: a PATH and nothing of this shell. */
const CLEAN_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' }

// Spawner processes whose parent runs the plugin's bundle (other tests' daemons run `isthmus serve`).
const pluginSpawners = (): number[] =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        if (readFileSync(`/proc/${p}/comm`, 'utf8').trim() !== 'isthmus-spawner') return false
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
        const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]
        return readFileSync(`/proc/${ppid}/cmdline`, 'utf8').includes('/opt/isthmus/bin/plugin.mjs')
      } catch {
        return false
      }
    })
    .map(Number)

describe('managed (v2) plugin', { timeout: 180_000 }, () => {
  const prefix = uniquePrefix()
  const plugin = `${prefix}-isthmus:latest`
  const network = `${prefix}-net`
  // 10.252.160.0/19: this file's share of the test range; random so reruns do not collide.
  const third = 160 + Math.floor(Math.random() * 32)
  const subnet = `10.252.${third}.0/24`
  const gateway = `10.252.${third}.1`
  // Through the settable variable ISTHMUS_CHAIN_PREFIX: chains of this run only, removed at the end.
  const chainPrefix = `IT${prefix.replace(/\W/g, '')}`
  let daemon: DockerDaemon | undefined
  let image = ''
  let tmp = ''
  let stateDir = ''
  let installed = false

  before(async () => {
    daemon = await ensureDockerd()
    image = await ensureBusyboxImage()
    tmp = await mkdtemp(join(tmpdir(), `${prefix}-plugin-`))
    stateDir = join(tmp, 'state')
    await mkdir(stateDir)
  })

  after(async () => {
    await removeDockerObjects(prefix)
    if (installed) {
      await docker('plugin', 'disable', '-f', plugin)
      await docker('plugin', 'rm', '-f', plugin)
    }
    if (tmp !== '') await rm(tmp, { recursive: true, force: true })
    await linuxDataplane({ chainPrefix }).removeFirewall()()
    await daemon?.stop()
  })

  it('builds a plugin directory with config.json and a rootfs holding node, the bundle and the tools', async () => {
    const { stdout } = await run(process.execPath, [BUILD, join(tmp, 'plugin')], { maxBuffer: 1 << 20 })
    const report = JSON.parse(stdout.trim().split('\n').pop()!) as { outdir: string; bytes: number; files: number }
    assert.equal(report.outdir, join(tmp, 'plugin'))
    const rootfs = join(tmp, 'plugin/rootfs')
    for (const f of [
      'usr/bin/node',
      'opt/isthmus/bin/plugin.mjs',
      'usr/sbin/ip',
      'usr/bin/nsenter',
      'usr/sbin/iptables-save',
      'usr/sbin/iptables-restore',
      'usr/sbin/ip6tables-save',
      'usr/sbin/ip6tables-restore',
      // the dataplane's kept spawner, where the bundle looks for it
      'opt/isthmus/dist/spawner/isthmus-spawner'
    ]) {
      assert.ok(existsSync(join(rootfs, f)), `${f} in the rootfs`)
    }
    // the rootfs runs on its own (every library is inside): the bundled daemon and iptables, chrooted
    const version = await mustRun(
      ['/usr/sbin/chroot', rootfs, '/usr/bin/node', '/opt/isthmus/bin/plugin.mjs', '--version'],
      { env: CLEAN_ENV }
    )
    assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+/)
    const ipt = await mustRun(['/usr/sbin/chroot', rootfs, '/usr/sbin/iptables-save', '--version'], { env: CLEAN_ENV })
    assert.match(ipt.stdout, /iptables-save v\d/)
  })

  it('installs and enables with docker plugin create / set / enable', async () => {
    await mustDocker('plugin', 'create', plugin, join(tmp, 'plugin'))
    installed = true
    await mustDocker(
      'plugin',
      'set',
      plugin,
      `state.source=${stateDir}`,
      `ISTHMUS_CHAIN_PREFIX=${chainPrefix}`,
      'ISTHMUS_LOG_LEVEL=debug'
    )
    await mustDocker('plugin', 'enable', plugin)
    const env = await mustDocker('plugin', 'inspect', '--format', '{{json .Settings.Env}}', plugin)
    const settings = JSON.parse(env.stdout) as string[]
    assert.ok(settings.includes(`ISTHMUS_CHAIN_PREFIX=${chainPrefix}`), env.stdout)
    assert.ok(settings.includes('ISTHMUS_LOG_LEVEL=debug'), env.stdout)
    const enabled = await mustDocker(
      'plugin',
      'inspect',
      '--format',
      '{{.Enabled}} {{json .Config.Interface.Types}}',
      plugin
    )
    assert.match(enabled.stdout.trim(), /^true /)
    assert.match(enabled.stdout, /docker\.networkdriver\/1\.0/)
    assert.match(enabled.stdout, /docker\.ipamdriver\/1\.0/)
  })

  it('serves a network whose containers reach each other', async () => {
    await mustDocker('network', 'create', '-d', plugin, '--ipam-driver', plugin, '--subnet', subnet, network)
    const drivers = await mustDocker('network', 'inspect', '--format', '{{.Driver}} {{.IPAM.Driver}}', network)
    assert.equal(drivers.stdout.trim(), `${plugin} ${plugin}`)
    // the plugin keeps its records in the settable state mount
    assert.ok(readdirSync(join(stateDir, 'v1/networks')).length >= 1, 'a network record in the state dir')
    // the host side: the gateway address on a bridge in the host namespace
    const hostAddrs = await mustRun(['ip', '-o', '-4', 'addr', 'show'])
    assert.ok(hostAddrs.stdout.includes(` ${gateway}/24 `), `gateway ${gateway} on the host`)
    // the variable set before enable reached the daemon: its masquerade is in chains of that prefix
    const nat = await mustRun(['iptables-save', '-t', 'nat'])
    assert.match(nat.stdout, new RegExp(`-A ${chainPrefix}-POSTROUTING .*${subnet.replace(/\./g, '\\.')}`))

    await mustDocker('run', '-d', '--name', `${prefix}-a`, '--net', network, image, 'busybox', 'sleep', '300')
    const ipA = (
      await mustDocker(
        'inspect',
        '--format',
        `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`,
        `${prefix}-a`
      )
    ).stdout.trim()
    assert.ok(ipA.startsWith(`10.252.${third}.`), `address ${ipA} in ${subnet}`)

    const b = await docker(
      'run',
      '--rm',
      '--name',
      `${prefix}-b`,
      '--net',
      network,
      image,
      'busybox',
      'sh',
      '-c',
      `ip -4 -o addr show eth0 && ping -c 2 -W 2 ${ipA} && ping -c 2 -W 2 ${prefix}-a`
    )
    assert.equal(b.code, 0, `b pings a: ${b.stdout}${b.stderr}`)
    // the plugin's daemon started its commands through its spawner, not a fork of itself each
    assert.ok(pluginSpawners().length > 0, 'an isthmus-spawner whose parent is the plugin daemon')
    assert.match(b.stdout, new RegExp(`inet 10\\.252\\.${third}\\.\\d+/24`))
    assert.match(b.stdout, /2 packets transmitted, 2 packets received/)

    await mustDocker('rm', '-f', `${prefix}-a`)
    await mustDocker('network', 'rm', network)
    const left = await mustRun(['ip', '-o', '-4', 'addr', 'show'])
    assert.ok(!left.stdout.includes(` ${gateway}/24 `), 'the bridge went with the network')
  })

  it('disables and removes cleanly', async () => {
    await mustDocker('plugin', 'disable', plugin)
    await mustDocker('plugin', 'rm', plugin)
    installed = false
    const ls = await mustDocker('plugin', 'ls', '--format', '{{.Name}}')
    assert.ok(!ls.stdout.split('\n').includes(plugin))
  })
})
