/**
 * The spawner's own `ip` (spawner/ipbuiltin.go: the `ip -batch` lines of a CNI ADD and DEL served
 * over netlink) against the real `ip`, side by side on the real kernel: the same batches, each
 * side in a namespace and on a bridge of its own, must print the same stdout, the same stderr
 * (names mapped), exit with the same code, and leave the same links, addresses and routes. Also:
 * failures (a missing device in each kind of line, "File exists", the kernel's own message, an
 * argument `ip` refuses with 255), `-force` going on after a failure and a plain batch stopping at
 * it, the nsenter form, and the calls it does not serve going to the next `Exec`.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import { execFileExec, spawnerExec, type Exec, type ExecOutput, type KeptSpawner } from '../src/index.js'
import { buildSpawner, requireRoot, Scope, sh } from './helpers.js'

const scope = new Scope()
const real = execFileExec()

interface Side {
  readonly tag: string
  readonly exec: Exec
  readonly ns: { readonly name: string; readonly path: string }
  readonly bridge: string
  readonly host: string
  readonly peer: string
}

let spawner: KeptSpawner | undefined
const declined: string[] = []
const sides: Side[] = []

const makeSide = (tag: string, exec: Exec): Side => {
  const bridge = scope.bridge(tag)
  sh('ip', ['link', 'add', bridge, 'type', 'bridge'])
  sh('ip', ['link', 'set', bridge, 'up'])
  return {
    tag,
    exec,
    ns: scope.addNetns(tag),
    bridge,
    host: scope.track(`ist${scope.id}${tag}h`),
    peer: `ist${scope.id}${tag}p`
  }
}

/** A batch line with the side's names in place of BR, H, P, NS (path) and NSNAME. */
const fill = (s: Side, line: string): string =>
  line
    .replace(/\bBR\b/g, s.bridge)
    .replace(/\bNSPATH\b/g, s.ns.path)
    .replace(/\bNSNAME\b/g, s.ns.name)
    .replace(/\bH\b/g, s.host)
    .replace(/\bP\b/g, s.peer)

/** What the side printed, with its names put back to the placeholders. */
const unfill = (s: Side, text: string): string =>
  text
    .split(s.bridge)
    .join('BR')
    .split(s.ns.path)
    .join('NSPATH')
    .split(s.ns.name)
    .join('NSNAME')
    .split(s.host)
    .join('H')
    .split(s.peer)
    .join('P')

const runOn = async (s: Side, args: ReadonlyArray<string>, lines: ReadonlyArray<string>): Promise<ExecOutput> => {
  const file = args[0] === 'nsenter' ? 'nsenter' : 'ip'
  const argv = (args[0] === 'nsenter' ? args.slice(1) : args).map((a) => fill(s, a))
  const r = await s.exec(file, argv, lines.map((l) => fill(s, l)).join('\n') + '\n')()
  if (E.isLeft(r)) assert.fail(`${s.tag}: ${JSON.stringify(r.left)}`)
  return r.right
}

// The keys isthmus reads from `ip -json link show` (iproute.ts), and ifindex-free ones around them.
const LINK_KEYS = ['ifname', 'flags', 'mtu', 'address', 'operstate', 'master', 'ifalias', 'link_netnsid', 'link_type']
const linkView = (l: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(
    LINK_KEYS.filter((k) => k in l).map((k) => [
      k,
      // `M-DOWN` (the peer is down) is not printed by the spawner's ip; isthmus reads only `UP`.
      k === 'flags' ? (l[k] as string[]).filter((f) => f !== 'M-DOWN') : l[k]
    ])
  )
const stdoutView = (s: Side, stdout: string): unknown =>
  unfill(s, stdout)
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => (JSON.parse(l) as Array<Record<string, unknown>>).map(linkView))

/** Run the same batch on every side and require the same outcome; returns it. */
const same = async (args: ReadonlyArray<string>, lines: ReadonlyArray<string>) => {
  const seen = []
  for (const s of sides) {
    const o = await runOn(s, args, lines)
    seen.push({ exitCode: o.exitCode, stderr: unfill(s, o.stderr), stdout: stdoutView(s, o.stdout) })
  }
  const [want, got] = seen
  assert.deepEqual(got, want, `spawner's ip (second) against ip (first) for ${args.join(' ')}: ${lines.join(' | ')}`)
  return want as NonNullable<typeof want>
}

/** What the kernel holds for a side: the host end, the sandbox's links, addresses and routes. */
const state = (s: Side): unknown => {
  const json = (ns: string | undefined, args: string[]): Array<Record<string, unknown>> =>
    JSON.parse(sh('ip', [...(ns === undefined ? [] : ['-n', ns]), '-json', ...args]) || '[]') as Array<
      Record<string, unknown>
    >
  const hostEnd = json(undefined, ['-details', 'link', 'show']).filter((l) => l['ifname'] === s.host)
  return unfill(
    s,
    JSON.stringify({
      // The host end's MAC is the kernel's pick, and a namespace id is per namespace.
      host: hostEnd.map((l) => ({
        ...linkView(l),
        address: typeof l['address'],
        link_netnsid: typeof l['link_netnsid'],
        hairpin: (l['linkinfo'] as { info_slave_data?: { hairpin?: boolean } } | undefined)?.info_slave_data?.hairpin
      })),
      links: json(s.ns.name, ['addr', 'show']).map((l) => ({
        ...linkView(l),
        addrs: (l['addr_info'] as Array<Record<string, unknown>>)
          .filter((a) => !String(a['local']).startsWith('fe80'))
          .map((a) => `${String(a['local'])}/${String(a['prefixlen'])}${a['nodad'] === true ? ' nodad' : ''}`)
      })),
      routes: [4, 6].flatMap((f) =>
        json(s.ns.name, [`-${f}`, 'route', 'show'])
          .filter((r) => !String(r['dst']).startsWith('fe80'))
          .map((r) => [r['dst'], r['gateway'], r['dev'], r['protocol'], r['scope']].join(' '))
      )
    })
  )
}
const sameState = (): void => {
  const [want, got] = sides.map(state)
  assert.deepEqual(JSON.parse(String(got)), JSON.parse(String(want)), "the spawner's ip left what ip left")
}

describe("the spawner's ip over netlink against iproute2 (real kernel)", () => {
  before(() => {
    requireRoot()
    buildSpawner()
    spawner = spawnerExec({ netlink: { ip: 'ip', nsenter: 'nsenter' } })
    const next: Exec = (file, args, input) => {
      declined.push([file, ...args].join(' '))
      return real(file, args, input)
    }
    sides.push(makeSide('r', real), makeSide('b', spawner.netlinkFirst(next)))
  })
  after(async () => {
    await spawner?.close()
    await scope.cleanup()
  })

  it('makes the pair: on the bridge, up, MTU, MAC, alias, hairpin, its end made in the sandbox', async () => {
    const r = await same(
      ['-batch', '-'],
      [
        'link add name H mtu 1400 master BR up type veth peer name P mtu 1400 address 02:42:0a:f1:00:02 netns NSPATH',
        'link set dev H alias ist-e-netlink-test',
        'link set dev H type bridge_slave hairpin on'
      ]
    )
    assert.deepEqual(r, { exitCode: 0, stderr: '', stdout: [] })
    sameState()
    assert.match(String(state(sides[1] as Side)), /"master":"BR".*"ifalias":"ist-e-netlink-test".*"hairpin":true/)
  })

  it('answers as ip does when the pair exists, and when the bridge does not (255, no line number)', async () => {
    const exists = await same(['-batch', '-'], ['link add name H master BR up type veth peer name P netns NSPATH'])
    assert.deepEqual(exists, {
      exitCode: 1,
      stderr: 'RTNETLINK answers: File exists\nCommand failed -:1\n',
      stdout: []
    })
    const noBridge = await same(['-batch', '-'], ['link add name Hx master nobridge0 up type veth peer name Px'])
    assert.equal(noBridge.exitCode, 255)
    assert.match(noBridge.stderr, /argument "nobridge0" is wrong: Device does not exist/)
  })

  it('renames, addresses (v4, v6 nodad), brings up and routes the end inside the sandbox, and shows it', async () => {
    const r = await same(
      ['-n', 'NSNAME', '-json', '-batch', '-'],
      [
        'link set dev P name eth0',
        'addr replace 10.241.0.2/24 dev eth0',
        'addr replace fd00:241::2/64 dev eth0 nodad',
        'link set dev eth0 up',
        'route replace default via 10.241.0.1 dev eth0',
        'route add 10.99.0.0/16 via 10.241.0.1 dev eth0',
        'route replace default via fd00:241::1 dev eth0',
        'link show dev eth0'
      ]
    )
    assert.equal(r.exitCode, 0)
    assert.deepEqual(
      (r.stdout as Array<Array<Record<string, unknown>>>).flat().map((l) => [l['ifname'], l['address'], l['mtu']]),
      [['eth0', '02:42:0a:f1:00:02', 1400]]
    )
    sameState()
  })

  it('with -force: every failing line says why, as ip does, and the rest still run', async () => {
    const r = await same(
      ['-n', 'NSNAME', '-json', '-force', '-batch', '-'],
      [
        'route add default via 10.241.0.1 dev eth0',
        'route add 10.98.0.0/16 via 10.1.2.3 dev eth0',
        'link show dev nope0',
        'link set dev nope0 up',
        'addr replace 10.1.1.1/24 dev nope0',
        'route replace default via 10.241.0.1 dev nope0',
        'link del dev nope0',
        '',
        'link set dev eth0 alias still-ran',
        'link show dev eth0'
      ]
    )
    assert.equal(r.exitCode, 1)
    assert.deepEqual(r.stderr.split('\n'), [
      'RTNETLINK answers: File exists',
      'Command failed -:1',
      'Error: Nexthop has invalid gateway.',
      'Command failed -:2',
      'Device "nope0" does not exist.',
      'Command failed -:3',
      'Cannot find device "nope0"',
      'Command failed -:4',
      'Cannot find device "nope0"',
      'Command failed -:5',
      'Cannot find device "nope0"',
      'Command failed -:6',
      'Cannot find device "nope0"',
      'Command failed -:7',
      ''
    ])
    assert.equal((r.stdout as Array<Array<Record<string, unknown>>>).flat()[0]?.['ifalias'], 'still-ran')
    sameState()
  })

  it('without -force: stops at the first failing line', async () => {
    const r = await same(['-n', 'NSNAME', '-batch', '-'], ['link set dev nope0 up', 'link set dev eth0 alias never'])
    assert.deepEqual(r, { exitCode: 1, stderr: 'Cannot find device "nope0"\nCommand failed -:1\n', stdout: [] })
    sameState()
  })

  it('serves the nsenter form (a namespace by path, as containerd passes it)', async () => {
    const r = await same(['nsenter', '--net=NSPATH', 'ip', '-json', '-batch', '-'], ['link show dev eth0'])
    assert.equal(r.exitCode, 0)
  })

  it('hands every call it does not serve to the next Exec, which answers as ip', async () => {
    const before = declined.length
    // Not in its lines; a namespace that does not exist; a show it does not print.
    await same(['-n', 'NSNAME', '-batch', '-'], ['neigh show dev eth0'])
    const missing = await same(['-n', `nope-${scope.id}`, '-batch', '-'], ['link set dev eth0 up'])
    assert.notEqual(missing.exitCode, 0)
    await same(['-n', 'NSNAME', '-json', '-batch', '-'], ['addr show dev eth0'])
    assert.equal(declined.length - before, 3, declined.slice(before).join('\n'))
  })

  it('deletes the pair from the host end, and says a missing one is missing', async () => {
    const r = await same(['-force', '-batch', '-'], ['link del dev H', 'link del dev H'])
    assert.deepEqual(r, { exitCode: 1, stderr: 'Cannot find device "H"\nCommand failed -:2\n', stdout: [] })
    sameState()
    assert.deepEqual(JSON.parse(String(state(sides[1] as Side))), {
      host: [],
      links: [
        {
          ifname: 'lo',
          flags: ['LOOPBACK'],
          mtu: 65536,
          operstate: 'DOWN',
          link_type: 'loopback',
          address: '00:00:00:00:00:00',
          addrs: []
        }
      ],
      routes: []
    })
  })

  it('served every other call itself', () => {
    assert.equal(declined.length, 3, declined.join('\n'))
  })
})
