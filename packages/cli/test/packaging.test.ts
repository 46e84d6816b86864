/**
 * The operator files under packaging/: the systemd units pass `systemd-analyze verify` with no
 * finding (it needs no running systemd) and start the CLI this package builds; the Kubernetes
 * DaemonSet mounts what `isthmus cni install` and `isthmus serve` use, by the code's own defaults.
 * The DaemonSet is not run against a cluster here.
 */
import { strict as assert } from 'node:assert'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import * as E from 'fp-ts/lib/Either.js'
import { parseAllDocuments } from 'yaml'
import { DEFAULT_STATE_DIR } from '@isthmus/core'
import { DEFAULT_SOCKET, parseMetricsAddr } from '@isthmus/cnm-server'
import { DEFAULT_DAEMON_SOCKET } from '@isthmus/handoff'
import { DEFAULT_BIN_DIR, DEFAULT_CONF_DIR } from '../src/commands/cni.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../../../', import.meta.url))
const systemd = join(root, 'packaging/systemd')
const UNITS = ['isthmus.socket', 'isthmus.service'] as const

// systemd-analyze prints each finding on stderr (an unknown key is only a warning there, with exit 0).
const verify = async (files: ReadonlyArray<string>): Promise<{ code: number; findings: string }> =>
  run('systemd-analyze', ['verify', ...files]).then(
    ({ stderr }) => ({ code: 0, findings: stderr.trim() }),
    (e: { code: number; stderr: string }) => ({ code: e.code, findings: e.stderr.trim() })
  )

const directive = (unit: string, key: string): ReadonlyArray<string> =>
  [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1] ?? '')

describe('packaging/systemd', () => {
  let dir = ''
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'isthmus-units-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  // The units name the checkout at /opt/isthmus: verified against this checkout in its place.
  const here = async (to: string): Promise<ReadonlyArray<string>> => {
    for (const u of UNITS) {
      const text = await readFile(join(systemd, u), 'utf8')
      await writeFile(join(to, u), text.replaceAll('/opt/isthmus/', root))
    }
    return UNITS.map((u) => join(to, u))
  }

  it('systemd-analyze verify finds nothing in isthmus.socket and isthmus.service', async () => {
    const r = await verify(await here(dir))
    assert.deepEqual(r, { code: 0, findings: '' })
  })

  it('and it would: an unknown key and a missing ExecStart binary are findings', async () => {
    await here(dir)
    const service = join(dir, 'isthmus.service')
    const text = await readFile(service, 'utf8')
    await writeFile(
      service,
      text
        .replace('Restart=on-failure', 'Restart=on-failure\nRestartSoon=yes')
        .replace(/^ExecStart=\S+/m, 'ExecStart=/nonexistent/isthmus')
    )
    const r = await verify(UNITS.map((u) => join(dir, u)))
    assert.notEqual(r.code, 0)
    assert.match(r.findings, /Unknown key 'RestartSoon'/)
    assert.match(r.findings, /\/nonexistent\/isthmus is not executable/)
  })

  it("the socket is the plugin socket; the service runs this package's `isthmus serve` on the defaults", async () => {
    const socket = await readFile(join(systemd, 'isthmus.socket'), 'utf8')
    assert.deepEqual(directive(socket, 'ListenStream'), [DEFAULT_SOCKET])
    assert.deepEqual(directive(socket, 'SocketMode'), ['0660'])
    assert.deepEqual(directive(socket, 'Before'), ['docker.service'])
    const service = await readFile(join(systemd, 'isthmus.service'), 'utf8')
    const [exec] = directive(service, 'ExecStart')
    const argv = (exec ?? '').split(/\s+/)
    // /opt/isthmus is the checkout; its launcher runs this package's bin (and says its version).
    assert.equal(argv[0], '/opt/isthmus/scripts/isthmus')
    assert.deepEqual(argv.slice(1), ['serve', '--state-dir', DEFAULT_STATE_DIR])
    const pkg = JSON.parse(await readFile(join(root, 'packages/cli/package.json'), 'utf8')) as {
      version: string
      bin: Record<string, string>
    }
    const launcher = await readFile(join(root, 'scripts/isthmus'), 'utf8')
    assert.ok(launcher.includes(`packages/cli/${posix.normalize(pkg.bin['isthmus'] ?? '')}`), 'it runs the bin')
    const { stdout } = await run(join(root, 'scripts/isthmus'), ['--version'])
    assert.equal(stdout.trim(), pkg.version)
    assert.deepEqual(directive(service, 'Restart'), ['on-failure'])
    assert.deepEqual(directive(service, 'KillSignal'), ['SIGTERM'])
    assert.ok(directive(service, 'Before').includes('docker.service'))
    assert.ok(directive(service, 'Requires').includes('isthmus.socket'))
  })
})

interface Mount {
  readonly name: string
  readonly mountPath: string
  readonly mountPropagation?: string
}
interface Container {
  readonly name: string
  readonly command?: ReadonlyArray<string>
  readonly args?: ReadonlyArray<string>
  readonly volumeMounts?: ReadonlyArray<Mount>
  readonly securityContext?: { readonly privileged?: boolean; readonly capabilities?: { readonly add?: string[] } }
  readonly livenessProbe?: { readonly httpGet?: { host?: string; port?: number; path?: string } }
  readonly readinessProbe?: { readonly httpGet?: { host?: string; port?: number; path?: string } }
}
interface PodSpec {
  readonly hostNetwork?: boolean
  readonly initContainers?: ReadonlyArray<Container>
  readonly containers: ReadonlyArray<Container>
  readonly volumes: ReadonlyArray<{ readonly name: string; readonly hostPath?: { readonly path: string } }>
}

describe('packaging/kubernetes/isthmus-daemonset.yaml', () => {
  const load = async (): Promise<{ kinds: string[]; spec: PodSpec }> => {
    const text = await readFile(join(root, 'packaging/kubernetes/isthmus-daemonset.yaml'), 'utf8')
    const docs = parseAllDocuments(text)
    for (const d of docs) assert.deepEqual(d.errors, [], 'the manifest parses')
    const objects = docs.map((d) => d.toJS() as { kind: string; spec?: { template?: { spec?: PodSpec } } })
    const ds = objects.find((o) => o.kind === 'DaemonSet')
    assert.ok(ds?.spec?.template?.spec !== undefined, 'a DaemonSet with a pod template')
    return { kinds: objects.map((o) => o.kind), spec: ds.spec.template.spec }
  }

  // Where a container sees `path`: the host path of the mount that holds it (its volume's, at the same place).
  const hostPathOf = (spec: PodSpec, c: Container, path: string): { at: string; mount: Mount } | undefined => {
    const mount = (c.volumeMounts ?? [])
      .filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`))
      .sort((a, b) => b.mountPath.length - a.mountPath.length)[0]
    const volume = spec.volumes.find((v) => v.name === mount?.name)
    if (mount === undefined || volume?.hostPath === undefined) return undefined
    return { at: posix.join(volume.hostPath.path, path.slice(mount.mountPath.length)), mount }
  }

  it('is a DaemonSet on the host network', async () => {
    const { kinds, spec } = await load()
    assert.deepEqual(kinds, ['DaemonSet'])
    assert.equal(spec.hostNetwork, true)
  })

  it('installs the CNI plugin from an init container into the host directories runtimes read', async () => {
    const { spec } = await load()
    const [init] = spec.initContainers ?? []
    assert.ok(init !== undefined)
    assert.deepEqual(init.args?.slice(0, 2), ['cni', 'install'])
    const flag = (f: string, fallback: string): string => {
      const i = init.args?.indexOf(f) ?? -1
      return i < 0 ? fallback : (init.args?.[i + 1] ?? '')
    }
    for (const [dirFlag, fallback] of [
      ['--bin-dir', DEFAULT_BIN_DIR],
      ['--conf-dir', DEFAULT_CONF_DIR]
    ] as const) {
      const inContainer = flag(dirFlag, fallback)
      assert.equal(inContainer, fallback, `${dirFlag} is the default`)
      assert.equal(hostPathOf(spec, init, inContainer)?.at, fallback, `${dirFlag} lands in the host's ${fallback}`)
    }
  })

  it("runs `isthmus serve` with its state, sockets and the sandboxes' namespaces from the host", async () => {
    const { spec } = await load()
    const [daemon] = spec.containers
    assert.ok(daemon !== undefined)
    assert.deepEqual(daemon.command?.slice(1), ['/opt/isthmus/packages/cli/dist/bin/isthmus.js'])
    assert.equal(daemon.args?.[0], 'serve')
    const arg = (f: string): string | undefined => {
      const i = daemon.args?.indexOf(f) ?? -1
      return i < 0 ? undefined : daemon.args?.[i + 1]
    }
    assert.equal(arg('--state-dir'), DEFAULT_STATE_DIR)
    assert.equal(arg('--socket'), DEFAULT_SOCKET)
    assert.equal(arg('--cni-socket'), DEFAULT_DAEMON_SOCKET)
    for (const path of [
      DEFAULT_STATE_DIR,
      dirname(DEFAULT_SOCKET),
      dirname(DEFAULT_DAEMON_SOCKET),
      '/run/xtables.lock'
    ]) {
      assert.equal(hostPathOf(spec, daemon, path)?.at, path, `${path} is the host's`)
    }
    // containerd's and podman's namespaces: /var/run/netns is /run/netns on the host and in a Debian image
    const netns = hostPathOf(spec, daemon, '/run/netns')
    assert.equal(netns?.at, '/run/netns')
    assert.equal(netns?.mount.mountPropagation, 'HostToContainer', 'namespaces made after the start are seen')
    assert.equal(daemon.securityContext?.privileged, true)
    assert.deepEqual([...(daemon.securityContext?.capabilities?.add ?? [])].sort(), [
      'NET_ADMIN',
      'NET_RAW',
      'SYS_ADMIN',
      'SYS_PTRACE'
    ])
  })

  it('probes /healthz and /readyz on the loopback metrics address serve is given', async () => {
    const { spec } = await load()
    const [daemon] = spec.containers
    const i = daemon?.args?.indexOf('--metrics-addr') ?? -1
    const at = parseMetricsAddr(daemon?.args?.[i + 1] ?? '')
    assert.ok(E.isRight(at), 'a metrics address serve accepts')
    const addr = daemon?.args?.[i + 1] ?? ''
    for (const [probe, path] of [
      [daemon?.livenessProbe, '/healthz'],
      [daemon?.readinessProbe, '/readyz']
    ] as const) {
      assert.deepEqual(probe?.httpGet, { host: addr.split(':')[0], port: Number(addr.split(':')[1]), path })
    }
  })
})
