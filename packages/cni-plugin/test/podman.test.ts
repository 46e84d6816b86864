/**
 * podman 4.3 with its CNI backend (Debian 12's podman, `network_backend = "cni"`) runs containers
 * on an isthmus network: isthmus is the only plugin of a hand-written conflist (cniVersion 1.0.0,
 * the newest podman's libcni 1.1.2 reads). The `isthmus` in podman's `cni_plugin_dirs` is the
 * native client, as `isthmus cni install` lays it out, and a running `isthmus serve` does every
 * call: its log shows each container's ADD and DEL. No Node fallback is installed beside the
 * client, so a call the daemon did not take would fail (code 11). Two containers get their
 * addresses, reach each other, a static `--ip` and `--mac-address` are honoured (CNI_ARGS IP and
 * MAC), and removing the containers releases every address (podman's DEL).
 *
 * Everything podman keeps (images, containers, its run state) lives in a temp directory of this
 * run (CONTAINERS_CONF / CONTAINERS_STORAGE_CONF); containers are removed by name in `after`.
 */
import { strict as assert } from 'node:assert'
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import {
  buildExecutables,
  installClient,
  requireRoot,
  Scope,
  serveDaemon,
  sh,
  shQuiet,
  type ServedDaemon
} from './support.js'

const scope = new Scope()
const dir = scope.tmpDir('podman')
const net = `pod-${scope.id}`
const bridge = scope.bridge('d')
let daemon: ServedDaemon | undefined
const image = `localhost/isthmus-cni-bb-${scope.id}:latest`
const names = ['a', 'b', 'c'].map((t) => `isthmus-cni-${scope.id}-${t}`)
const env = {
  ...process.env,
  CONTAINERS_CONF: join(dir, 'containers.conf'),
  CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf')
}
const podman = (...args: string[]): string =>
  execFileSync('podman', args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 })

const leases = (): string[] => {
  const d = join(daemon!.netconf.stateDir, 'v1', 'leases', 'isthmus-local')
  return existsSync(d)
    ? readdirSync(d)
        // A name starting with '.' is never a record (the daemon's spare files, a temp file).
        .filter((f) => f !== '10.231.40.1.json' && !f.startsWith('.'))
        .sort()
    : []
}
const ipOf = (name: string): string =>
  (
    JSON.parse(podman('inspect', name, '--format', '{{json .NetworkSettings.Networks}}')) as Record<
      string,
      { IPAddress: string }
    >
  )[net]?.IPAddress ?? ''

describe('podman 4.3 (CNI backend) on an isthmus network', () => {
  before(async () => {
    requireRoot()
    buildExecutables()
    for (const d of ['net.d', 'root', 'run', 'tmp', 'rootfs/bin']) mkdirSync(join(dir, d), { recursive: true })
    installClient(join(dir, 'bin'))
    daemon = await serveDaemon(scope, 'd')
    writeFileSync(
      env.CONTAINERS_CONF,
      [
        '[containers]',
        'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
        '[network]',
        'network_backend = "cni"',
        `cni_plugin_dirs = ["${join(dir, 'bin')}", "/usr/lib/cni"]`,
        `network_config_dir = "${join(dir, 'net.d')}"`,
        `default_network = "${net}"`,
        'default_subnet = "10.231.41.0/24"',
        'default_subnet_pools = [{"base" = "10.231.42.0/24", "size" = 24}]',
        '[engine]',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        `tmp_dir = "${join(dir, 'tmp')}"`
      ].join('\n')
    )
    writeFileSync(
      env.CONTAINERS_STORAGE_CONF,
      ['[storage]', 'driver = "vfs"', `graphroot = "${join(dir, 'root')}"`, `runroot = "${join(dir, 'run')}"`].join(
        '\n'
      )
    )
    writeFileSync(
      join(dir, 'net.d', `${net}.conflist`),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: net,
        plugins: [
          {
            type: 'isthmus',
            bridge,
            isGateway: true,
            // the daemon's socket, state directory and chains: its own session serves the calls
            ...daemon.netconf,
            logFile: join(dir, 'cni.log'),
            ipam: { ranges: [[{ subnet: '10.231.40.0/24' }]] }
          }
        ]
      })
    )
    // The busybox image: Debian's busybox-static and its applet links, imported as a tarball.
    copyFileSync('/bin/busybox', join(dir, 'rootfs/bin/busybox'))
    for (const a of ['sh', 'ip', 'ping', 'sleep', 'cat']) symlinkSync('busybox', join(dir, 'rootfs/bin', a))
    sh('tar', ['-C', join(dir, 'rootfs'), '-cf', join(dir, 'bb.tar'), '.'])
    podman('import', join(dir, 'bb.tar'), image)
  })
  after(async () => {
    for (const n of names) {
      try {
        podman('rm', '-f', '-t', '0', n)
      } catch {
        // not created, or gone
      }
    }
    shQuiet('podman', ['rmi', '-f', image])
    await scope.cleanup()
  })

  it('lists the network with the isthmus driver', () => {
    assert.match(podman('network', 'ls', '--format', '{{.Name}} {{.Driver}}'), new RegExp(`^${net} isthmus$`, 'm'))
  })

  it('two containers get addresses from the pool and reach each other; --ip and --mac-address are honoured; rm releases the addresses', async () => {
    const [a, b, c] = names as [string, string, string]
    podman('run', '-d', '--name', a, '--network', net, image, 'sleep', '600')
    podman(
      'run',
      '-d',
      '--name',
      b,
      '--network',
      net,
      '--ip',
      '10.231.40.77',
      '--mac-address',
      '02:31:40:00:00:77',
      image,
      'sleep',
      '600'
    )
    const ids = [a, b].map((n) => podman('inspect', n, '--format', '{{.Id}}').trim())
    const ipA = ipOf(a)
    assert.match(ipA, /^10\.231\.40\.\d+$/)
    assert.equal(ipOf(b), '10.231.40.77')
    assert.match(podman('exec', b, 'ip', 'link', 'show', 'eth0'), /link\/ether 02:31:40:00:00:77/)
    assert.deepEqual(leases(), [`${ipA}.json`, '10.231.40.77.json'].sort())
    // A third container pings both (busybox ping needs a raw socket).
    const out = podman(
      'run',
      '--rm',
      '--cidfile',
      join(dir, 'c.cid'),
      '--name',
      c,
      '--cap-add',
      'NET_RAW',
      '--network',
      net,
      image,
      'sh',
      '-c',
      `ping -c1 -W2 ${ipA} && ping -c1 -W2 10.231.40.77`
    )
    assert.match(out, /1 packets received[\s\S]*1 packets received/)
    podman('exec', a, 'ping', '-c1', '-W2', '10.231.40.77')
    assert.equal(leases().length, 2, "the --rm container's address went back at its DEL")
    podman('rm', '-f', '-t', '0', a, b)
    assert.deepEqual(leases(), [], 'removing the containers released their addresses')
    ids.push(readFileSync(join(dir, 'c.cid'), 'utf8').trim())
    // Every call ran in the daemon (no fallback is installed): one ADD per container, and its DELs.
    const calls = await daemon!.callsOnce(
      'three ADDs and their DELs',
      (cs) =>
        cs.filter((x) => x.command === 'ADD').length >= 3 &&
        ids.every((id) => cs.some((x) => x.command === 'DEL' && x.containerId === id))
    )
    assert.deepEqual(
      calls.filter((x) => x.command === 'ADD').map((x) => [x.containerId, x.exitCode]),
      [ids[0], ids[1], ids[2]].map((id) => [id, 0]),
      'the daemon ran the three ADDs'
    )
    for (const id of ids) {
      const dels = calls.filter((x) => x.command === 'DEL' && x.containerId === id)
      assert.ok(
        dels.length > 0 && dels.every((x) => x.exitCode === 0),
        `the daemon ran ${id}'s DEL: ${JSON.stringify(dels)}`
      )
    }
    assert.ok(!existsSync(join(dir, 'bin', 'isthmus-node')), 'no Node fallback to run a call instead')
    const log = readFileSync(join(dir, 'cni.log'), 'utf8')
    assert.match(log, /"K8S_POD_NAME":"isthmus-cni-/, 'podman passes CNI_ARGS with IgnoreUnknown and K8S_POD_NAME')
  })
})
