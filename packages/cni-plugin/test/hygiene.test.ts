/**
 * Error hygiene through the built executable (the Node SEA), run in its own process (`daemon:
 * false`) and handed to a real daemon (`isthmus serve` from testkit): input that can never
 * succeed (deep nesting, huge values, names the kernel or iptables would read otherwise) gets the
 * same precise error document on both paths, never a stack trace and never code 11; a bug is
 * code 999 with one short sentence; nothing is made on the host.
 */
import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { recordingLogger } from '@isthmus/core/testing'
import { pluginCall, startPlugin, type PluginProcess } from '@isthmus/testkit'
import type { HandoffServer } from '@isthmus/handoff'
import { cniHandoffServer } from '@isthmus/wiring'
import { runSkel } from '@isthmus/cni-exec'
import {
  cniEnv,
  errorDoc,
  execPlugin,
  fakeRuntime,
  hasStackTrace,
  linkNames,
  requireRoot,
  Scope,
  type Outcome
} from './support.js'

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..')
const sea = join(root, 'packages/cni-plugin/dist/sea/isthmus')
const scope = new Scope()
const stateDir = scope.tmpDir('state')
const bridge = scope.bridge('y')
const NAME = `hyg-${scope.id}`

const conf = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  cniVersion: '1.0.0',
  name: NAME,
  type: 'isthmus',
  bridge,
  stateDir,
  chainPrefix: scope.chainPrefix,
  ipam: { ranges: [[{ subnet: '10.231.44.0/24' }]] },
  ...over
})

// `{"a": [[[ … ]]]}` as text: JSON.stringify itself cannot build it.
const deep = (levels: number): string => `${'['.repeat(levels)}${']'.repeat(levels)}`
// A netconf (as text) with `key` set to raw JSON `value`, and its hand-off socket.
const withRaw = (key: string, value: string, daemon: string | false): string => {
  const base = JSON.stringify({ ...conf(), daemon })
  return `${base.slice(0, -1)},${JSON.stringify(key)}:${value}}`
}

interface Case {
  readonly what: string
  readonly env: (netns: string) => Record<string, string | undefined>
  /** stdin for a given `daemon` value. */
  readonly stdin: (daemon: string | false) => string
  readonly code: number
  readonly msg: string
  /** details must contain this. */
  readonly details?: string
  /** The call goes to the daemon (false: the plugin keeps stdin over the limit, and answers it itself). */
  readonly handedOff: boolean
}

const ENV = (netns: string) => ({ cid: `c${scope.id}`, netns, ifName: 'eth0' })
const cases: ReadonlyArray<Case> = [
  {
    what: 'a 20,000-deep `name`',
    env: (ns) => cniEnv('ADD', ENV(ns)),
    stdin: (d) => withRaw('name', deep(20_000), d).replace(`"name":"${NAME}",`, ''),
    code: 6,
    msg: 'error unmarshall network config: nested deeper than 64 levels',
    handedOff: true
  },
  {
    what: 'a deep unknown key',
    env: (ns) => cniEnv('ADD', ENV(ns)),
    stdin: (d) => withRaw('x', deep(5_000), d),
    code: 6,
    msg: 'error unmarshall network config: nested deeper than 64 levels',
    handedOff: true
  },
  {
    what: 'a deep prevResult on DEL',
    env: (ns) => cniEnv('DEL', ENV(ns)),
    stdin: (d) => withRaw('prevResult', `{"ips":${deep(1_000)}}`, d),
    code: 6,
    msg: 'error unmarshall network config: nested deeper than 64 levels',
    handedOff: true
  },
  {
    what: 'a netconf of 1.2 MB (600,000 two-byte characters)',
    env: (ns) => cniEnv('ADD', ENV(ns)),
    stdin: (d) => JSON.stringify({ ...conf(), daemon: d, pad: 'é'.repeat(600_000) }),
    code: 6,
    msg: 'error unmarshall network config: more than 1048576 bytes',
    handedOff: false
  },
  {
    what: 'a netconf of 3 MB',
    env: (ns) => cniEnv('ADD', ENV(ns)),
    stdin: (d) => JSON.stringify({ ...conf(), daemon: d, pad: 'x'.repeat(3_000_000) }),
    code: 6,
    msg: 'error unmarshall network config: more than 1048576 bytes',
    handedOff: false
  },
  {
    what: 'CNI_IFNAME=+',
    env: (ns) => cniEnv('ADD', { ...ENV(ns), ifName: '+' }),
    stdin: (d) => JSON.stringify({ ...conf(), daemon: d }),
    code: 4,
    msg: 'invalid interface name',
    details: '"+": letters, digits, _ . and - only',
    handedOff: true
  },
  {
    what: 'CNI_IFNAME=-x',
    env: (ns) => cniEnv('ADD', { ...ENV(ns), ifName: '-x' }),
    stdin: (d) => JSON.stringify({ ...conf(), daemon: d }),
    code: 4,
    msg: 'invalid interface name',
    handedOff: true
  },
  {
    what: 'a 100 KiB CNI_CONTAINERID',
    env: (ns) => cniEnv('ADD', { ...ENV(ns), cid: 'a'.repeat(100 * 1024) }),
    stdin: (d) => JSON.stringify({ ...conf(), daemon: d }),
    code: 4,
    msg: 'containerID is too long',
    details: 'at most 256 characters, got 102400',
    handedOff: true
  },
  {
    what: 'a 5,000-character CNI_NETNS',
    env: () => cniEnv('ADD', { ...ENV(`/${'n'.repeat(5_000)}`) }),
    stdin: (d) => JSON.stringify({ ...conf(), daemon: d }),
    code: 4,
    msg: 'CNI_NETNS is too long',
    handedOff: true
  },
  {
    what: 'a netconf `bridge` of zz+',
    env: (ns) => cniEnv('ADD', ENV(ns)),
    stdin: (d) => JSON.stringify({ ...conf({ bridge: 'zz+' }), daemon: d }),
    code: 7,
    msg: 'invalid network config',
    details: 'bridge: expected an interface name',
    handedOff: true
  },
  {
    what: 'a 200-character network name',
    env: (ns) => cniEnv('ADD', ENV(ns)),
    stdin: (d) => JSON.stringify({ ...conf({ name: 'n'.repeat(200) }), daemon: d }),
    code: 7,
    msg: 'network name is too long',
    handedOff: true
  },
  {
    what: 'a 200,000-character cniVersion',
    env: (ns) => cniEnv('ADD', ENV(ns)),
    stdin: (d) => JSON.stringify({ ...conf({ cniVersion: '9'.repeat(200_000) }), daemon: d }),
    code: 1,
    msg: 'incompatible CNI versions',
    handedOff: true
  }
]

const cniLines = (p: PluginProcess): number =>
  p
    .logs()
    .split('\n')
    .filter((l) => l.includes('"message":"cni"')).length

after(() => scope.cleanup())

describe('CNI error hygiene: the same precise error in the process and through the daemon', () => {
  let plugin: PluginProcess | undefined
  let netns = ''
  let nsName = ''
  before(async () => {
    requireRoot()
    execFileSync(process.execPath, [join(root, 'packages/cni-plugin/scripts/build.mjs')], { stdio: 'ignore' })
    const ns = scope.addNetns('h')
    netns = ns.path
    nsName = ns.name
    plugin = await startPlugin(`isthmus-hy-${scope.id}`)
  })
  after(async () => {
    await plugin?.dispose()
  })

  for (const c of cases) {
    it(`${c.what}: code ${c.code}, ${c.msg}`, async () => {
      const local = await execPlugin(sea, c.env(netns), c.stdin(false))
      const before = cniLines(plugin!)
      const handed = await execPlugin(sea, c.env(netns), c.stdin(plugin!.cniSocket))
      const check = (o: Outcome, path: string) => {
        const d = errorDoc(o)
        assert.deepEqual([d.code, d.msg], [c.code, c.msg], `${path}: ${o.stdout.slice(0, 300)}`)
        if (c.details !== undefined) assert.ok((d.details ?? '').includes(c.details), `${path} details: ${d.details}`)
        assert.ok(
          o.stdout.length < 2048,
          `${path}: a short document, not an echo of the input (${o.stdout.length} bytes)`
        )
        assert.ok(!hasStackTrace(o.stderr), `${path}: no stack on stderr either: ${o.stderr.slice(0, 300)}`)
        return d
      }
      assert.deepEqual(check(handed, 'handed off'), check(local, 'in the process'), 'both paths answer alike')
      assert.equal(cniLines(plugin!) - before, c.handedOff ? 1 : 0, 'the daemon ran the handed-off call')
    })
  }

  it('afterwards: the daemon answers, and nothing was made on the host', async () => {
    assert.equal((await pluginCall(plugin!.socket, '/Plugin.Activate')).status, 200)
    assert.deepEqual(linkNames(nsName), ['lo'], 'no link in the sandbox')
    assert.ok(!linkNames().includes(bridge) && !linkNames().includes('zz+'), 'no bridge')
    assert.deepEqual(
      readdirSync(stateDir)
        .filter((f) => !f.startsWith('.'))
        .flatMap((d) => readdirSync(join(stateDir, d))),
      [],
      'no record in the state directory'
    )
  })
})

describe('a bug is code 999 with a short sentence, never a stack trace or a try-again', () => {
  const dir = scope.tmpDir('bug')
  let daemon: HandoffServer | undefined
  const log = recordingLogger()
  after(async () => {
    await daemon?.close()
  })

  it("in the envelope: the stack goes to the call's log, stdout has one sentence", async () => {
    const f = fakeRuntime()
    const runtime = {
      ...f.runtime,
      open: () => TE.fromTask<never>(() => Promise.reject(new TypeError('cannot read x of undefined')))
    }
    const out = await runSkel(runtime)(
      cniEnv('ADD', { cid: 'b1', netns: '/var/run/netns/none', ifName: 'eth0' }),
      JSON.stringify(conf())
    )
    const d = errorDoc({ ...out, doc: JSON.parse(out.stdout) as Record<string, unknown> })
    assert.deepEqual(
      [d.code, d.msg, d.details, d.cniVersion],
      [999, 'internal error in the isthmus plugin (see its log)', 'TypeError: cannot read x of undefined', '1.0.0']
    )
    assert.ok(
      f.log.state.entries.some((e) => e.level === 'error' && hasStackTrace(String(e.fields?.['stack']))),
      'the stack is in the log'
    )
  })

  it('through a daemon whose call throws: the plugin prints 999, not code 11', async () => {
    requireRoot()
    const socket = join(dir, 'cni.sock')
    daemon = await cniHandoffServer({
      socket,
      runtime: () => {
        throw new RangeError('Maximum call stack size exceeded')
      },
      log: log.port
    })
    const out = await execPlugin(sea, cniEnv('ADD', { cid: 'b2', netns: '/var/run/netns/none', ifName: 'eth0' }), {
      ...conf(),
      daemon: socket
    })
    const d = errorDoc(out)
    assert.deepEqual([d.code, d.details, d.cniVersion], [999, 'RangeError: Maximum call stack size exceeded', '1.1.0'])
    assert.ok(
      log.state.entries.some((e) => e.level === 'error' && hasStackTrace(String(e.fields?.['stack']))),
      "the stack is in the daemon's log"
    )
  })
})
