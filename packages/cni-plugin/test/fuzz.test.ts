/**
 * Fuzzing the CNI side (fast-check): generated environments (CNI_COMMAND among the six and
 * garbage; CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH missing, empty, huge or
 * odd) and netconfs (valid-shaped with mutated fields, wrong types, deep nesting, huge strings,
 * not JSON) run through the BUILT executable, each in its own process (`daemon: false`) and
 * handed to a real daemon (`isthmus serve`, testkit). For every call: no signal, no hang, exit 0
 * or 1; stdout empty, one result or one error document with a numeric code; no stack trace; no
 * bug (code 999); an error the envelope gives from the input alone is the same on both paths.
 * Afterwards the daemon still answers, and once the test removed what was added (DEL, GC, the
 * networks) nothing is left: no record or lease in its state directory, no link on the host.
 *
 * Host safety: every netconf names this test's own state directory, chain prefix, bridge and
 * subnet; fields that name host objects (stateDir, logFile, bridge, chainPrefix, the Contrail and
 * Docker sections, `daemon`) are mutated only into values the plugin must refuse; CNI_NETNS is
 * this test's namespace or a path that is not one.
 *
 * FUZZ_SEED and FUZZ_RUNS override the fixed seed and the number of runs.
 */
import { strict as assert } from 'node:assert'
import { execFile, execFileSync } from 'node:child_process'
import { readdirSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import * as E from 'fp-ts/lib/Either.js'
import {
  builtinControlPlane,
  deleteNetwork,
  makeIpam,
  noopAgent,
  silentLogger,
  systemClock,
  type Env
} from '@isthmus/core'
import { linuxDataplane } from '@isthmus/dataplane-linux'
import { fileStore } from '@isthmus/store-fs'
import { pluginCall, startPlugin, waitUntil, type PluginProcess } from '@isthmus/testkit'
import { errorDoc, hasStackTrace, linkNames, requireRoot, Scope, type Outcome } from './support.js'

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..')
const sea = join(root, 'packages/cni-plugin/dist/sea/isthmus')
const SEED = Number(process.env['FUZZ_SEED'] ?? 1313)
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 80)

const scope = new Scope()
const stateDir = scope.tmpDir('state')
const emptyDir = scope.tmpDir('empty')
const notNetns = join(scope.tmpDir('file'), 'not-a-netns')
writeFileSync(notNetns, '')
const bridge = scope.bridge('f')
const NAME = `fz-${scope.id}`
const SUBNET = '10.231.46.0/24'

// -------------------------------------------------------------------------------------
// generators
// -------------------------------------------------------------------------------------

// Stand-ins, expanded when a call is built, so that a counterexample prints short: a 2,000-deep
// array (JSON.stringify cannot build one) and huge strings.
const EXPAND: Readonly<Record<string, string>> = {
  '<deep>': `${'['.repeat(2_000)}${']'.repeat(2_000)}`,
  '<100k x>': JSON.stringify('x'.repeat(100_000)),
  '<40k é>': JSON.stringify('é'.repeat(40_000))
}
const expand = (text: string): string =>
  text.replace(/"<(deep|100k x|40k é)>"/g, (m) => EXPAND[JSON.parse(m) as string] ?? m)
const ENV_EXPAND: Readonly<Record<string, string>> = {
  '<100k cid>': 'a'.repeat(100 * 1024),
  '<100k args>': `K8S_POD_NAME=${'p'.repeat(100_000)}`,
  '<5k netns>': `/${'n'.repeat(5_000)}`
}

// Environment values cannot hold NUL.
const odd = fc.string({ unit: 'binary', maxLength: 40 }).map((s) => s.replace(/\0/g, ''))
const weird: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 1, arbitrary: fc.constantFrom('<deep>', '<100k x>', '<40k é>') },
  { weight: 1, arbitrary: odd }
)
// A value the plugin must refuse for a key that names something on the host.
const refusedPath = fc.oneof(
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constant('relative/dir'),
  fc.constant('<deep>'),
  fc.constant([])
)

const MUTATIONS: Readonly<Record<string, fc.Arbitrary<unknown>>> = {
  cniVersion: fc.oneof(fc.constantFrom('0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0', '0.1.0', '9.9.9', ''), weird),
  name: fc.oneof(fc.constantFrom('', 'bad/name', 'n'.repeat(200), `${NAME}-b`), weird),
  type: fc.oneof(fc.constantFrom('isthmus', 'bridge', ''), weird),
  bridge: fc.oneof(fc.constantFrom('zz+', '-x', '.a', 'a'.repeat(16), 'a!b', 'a b', '<deep>'), fc.integer()),
  mtu: fc.oneof(fc.constantFrom(1400, 0, -1, 1e9, 1.5, '1400'), weird),
  ipMasq: fc.oneof(fc.boolean(), weird),
  isGateway: fc.oneof(fc.boolean(), weird),
  isDefaultGateway: fc.oneof(fc.boolean(), weird),
  ipam: fc.oneof(
    fc.constantFrom(
      { ranges: [] },
      { ranges: [[{ subnet: 'x' }]] },
      { type: 'no-such-ipam-plugin' },
      { ranges: [[{ subnet: SUBNET, gateway: '10.231.46.300' }]] }
    ),
    weird.map((routes) => ({ ranges: [[{ subnet: SUBNET }]], routes })),
    weird.map((exclude) => ({ ranges: [[{ subnet: SUBNET }]], exclude })),
    weird
  ),
  dns: weird,
  runtimeConfig: fc.oneof(
    fc.constantFrom(
      { ips: ['10.231.46.99'] },
      { ips: ['x'] },
      { mac: 'zz' },
      { portMappings: [{ hostPort: 0, containerPort: 80 }] },
      { portMappings: [{ hostPort: 18_746, containerPort: 80, protocol: 'tcp' }] }
    ),
    weird
  ),
  args: fc.oneof(fc.constant({ cni: { ips: ['10.231.46.98'] } }), weird),
  prevResult: weird,
  capabilities: weird,
  'cni.dev/valid-attachments': fc.oneof(fc.constant([]), weird),
  stateDir: refusedPath,
  logFile: refusedPath,
  logLevel: fc.oneof(fc.constantFrom('debug', 'bogus'), fc.integer()),
  chainPrefix: fc.constantFrom(5, 'a-b', '', 'x'.repeat(17), 'a+'),
  contrail: refusedPath,
  dockerConnect: fc.oneof(refusedPath, fc.constant({ network: 5 })),
  dockerNetwork: fc.oneof(refusedPath, fc.constant({ network: '' })),
  'zz-unknown': weird
}
const KEYS = Object.keys(MUTATIONS)

const netconfBase = (cniVersion: string): Record<string, unknown> => ({
  cniVersion,
  name: NAME,
  type: 'isthmus',
  bridge,
  stateDir,
  chainPrefix: scope.chainPrefix,
  ipam: { ranges: [[{ subnet: SUBNET }]] }
})

/** What goes on stdin, as data (a counterexample prints it). */
type StdinCase =
  | {
      readonly kind: 'netconf'
      readonly version: string
      readonly set: Readonly<Record<string, unknown>>
      readonly drop: ReadonlyArray<string>
      readonly cut: boolean
    }
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'over the limit' }

const stdinArb: fc.Arbitrary<StdinCase> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      kind: fc.constant('netconf' as const),
      version: fc.constantFrom('1.0.0', '1.1.0', '0.4.0'),
      // about half the netconfs are valid: those get through the envelope to the host
      set: fc.oneof(
        fc.constant({}),
        fc
          .uniqueArray(fc.constantFrom(...KEYS), { minLength: 1, maxLength: 3 })
          .chain((ks) => fc.record(Object.fromEntries(ks.map((k) => [k, MUTATIONS[k]!]))))
      ),
      drop: fc.oneof(
        { weight: 4, arbitrary: fc.constant([]) },
        { weight: 1, arbitrary: fc.constantFrom(...Object.keys(netconfBase('1.0.0'))).map((k) => [k]) }
      ),
      cut: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) })
    })
  },
  {
    weight: 2,
    arbitrary: fc
      .oneof(odd, fc.constantFrom('', 'null', '[]', '"x"', '{}'))
      .map((text) => ({ kind: 'text' as const, text }))
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'over the limit' as const }) }
)

const stdinOf = (c: StdinCase, daemon: string | false): string => {
  switch (c.kind) {
    case 'text':
      return c.text
    case 'over the limit':
      return JSON.stringify({ ...netconfBase('1.0.0'), daemon, pad: 'x'.repeat(2_000_000) })
    case 'netconf': {
      // A cut netconf is not JSON, so never handed off: the same text on both paths.
      const doc: Record<string, unknown> = { ...netconfBase(c.version), daemon: c.cut ? false : daemon, ...c.set }
      for (const k of c.drop) delete doc[k]
      const text = expand(JSON.stringify(doc))
      return c.cut ? text.slice(0, Math.ceil(text.length / 2)) : text
    }
  }
}

const envVar = (
  valid: fc.Arbitrary<string>,
  ...others: Array<fc.Arbitrary<string>>
): fc.Arbitrary<string | undefined> =>
  fc.oneof(
    { weight: 3, arbitrary: valid },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constant('') },
    ...others.map((a) => ({ weight: 1, arbitrary: a }))
  )

const CID = fc.stringMatching(/^[a-f0-9]{1,12}$/)
const IFNAME = fc.stringMatching(/^(eth|net)[0-9]$/)
const COMMAND = fc.oneof(
  { weight: 4, arbitrary: fc.constant('ADD') },
  { weight: 2, arbitrary: fc.constant('DEL') },
  { weight: 1, arbitrary: fc.constantFrom('CHECK', 'GC', 'STATUS', 'VERSION') }
)

/** The CNI variables of a call, as data; `<netns>` is this test's namespace. Valid in about half the cases. */
const envArb = fc.oneof(
  fc.record({
    CNI_COMMAND: COMMAND,
    CNI_CONTAINERID: CID,
    CNI_NETNS: fc.constant('<netns>'),
    CNI_IFNAME: IFNAME,
    CNI_ARGS: fc.constantFrom('', 'IgnoreUnknown=1', 'K8S_POD_NAME=p;K8S_POD_NAMESPACE=n'),
    CNI_PATH: fc.constant('/usr/lib/cni')
  }) as fc.Arbitrary<Record<string, string | undefined>>,
  fc.record({
    CNI_COMMAND: fc.oneof(
      { weight: 3, arbitrary: COMMAND },
      { weight: 1, arbitrary: fc.oneof(fc.constantFrom('add', 'FOO', ''), odd) }
    ),
    CNI_CONTAINERID: envVar(CID, fc.constantFrom('-x', 'a/b', '<100k cid>'), odd),
    CNI_NETNS: envVar(
      fc.constant('<netns>'),
      fc.constantFrom('/var/run/netns/isthmus-cni-no-such', notNetns, 'relative', '<5k netns>'),
      odd
    ),
    CNI_IFNAME: envVar(IFNAME, fc.constantFrom('+', '-x', '.', '..', 'a'.repeat(16), 'a b', 'e/1', 'é'), odd),
    CNI_ARGS: envVar(
      fc.constantFrom('', 'IgnoreUnknown=1', 'IP=10.231.46.77'),
      fc.constantFrom('FOO=bar', ';;=', 'IP=x', 'MAC=zz', '<100k args>'),
      odd
    ),
    CNI_PATH: envVar(fc.constant('/usr/lib/cni'), fc.constant(emptyDir), odd)
  })
)
type EnvCase = Readonly<Record<string, string | undefined>>

const envOf = (c: EnvCase, netns: string): Record<string, string> => {
  const out: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' }
  for (const [k, v] of Object.entries(c)) if (v !== undefined) out[k] = v === '<netns>' ? netns : (ENV_EXPAND[v] ?? v)
  return out
}

// -------------------------------------------------------------------------------------
// running and judging one call
// -------------------------------------------------------------------------------------

interface Run extends Outcome {
  readonly signal: string | null
  readonly timedOut: boolean
}

const runSea = (env: Record<string, string>, stdin: string): Promise<Run> =>
  new Promise((res) => {
    const child = execFile(sea, [], { env, timeout: 30_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const exitCode = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      let doc: Record<string, unknown> | undefined
      try {
        doc = JSON.parse(String(stdout)) as Record<string, unknown>
      } catch {
        doc = undefined
      }
      res({
        exitCode,
        stdout: String(stdout),
        stderr: String(stderr),
        doc,
        signal: err?.signal ?? null,
        timedOut: err?.killed === true
      })
    })
    child.stdin?.on('error', () => undefined)
    child.stdin?.end(stdin)
  })

// What the envelope decides from the input alone: the same on every path and at every moment.
const inputOnly = (d: { code: number; msg: string }): boolean =>
  [1, 4, 6].includes(d.code) ||
  ['missing network name', 'invalid characters found in network name', 'network name is too long'].includes(d.msg)

const judge = (r: Run, env: Record<string, string>, path: string): { code: number; msg: string } | 'ok' => {
  const what = `${path}: ${env['CNI_COMMAND'] ?? '(none)'} → exit ${r.exitCode}, stdout ${r.stdout.slice(0, 400)} stderr ${r.stderr.slice(0, 400)}`
  assert.equal(r.timedOut, false, `no hang: ${what}`)
  assert.equal(r.signal, null, `no signal: ${what}`)
  assert.ok(r.exitCode === 0 || r.exitCode === 1, `exit 0 or 1: ${what}`)
  assert.ok(!hasStackTrace(r.stdout) && !hasStackTrace(r.stderr), `no stack trace: ${what}`)
  if (r.exitCode === 1) {
    const d = errorDoc(r)
    assert.notEqual(d.code, 999, `no bug: ${what}`)
    return d
  }
  if (r.stdout === '') return 'ok'
  assert.ok(r.doc !== undefined && typeof r.doc['cniVersion'] === 'string', `one document: ${what}`)
  if (env['CNI_COMMAND'] === 'VERSION') assert.ok(Array.isArray(r.doc['supportedVersions']), what)
  else {
    assert.equal(env['CNI_COMMAND'], 'ADD', `only ADD prints a result: ${what}`)
    assert.ok(Array.isArray(r.doc['ips']) || Array.isArray(r.doc['interfaces']), `a result: ${what}`)
  }
  return 'ok'
}

const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((n) => {
    const p = join(dir, n)
    return statSync(p).isDirectory() ? files(p) : [p]
  })

describe(`CNI fuzz (fast-check, seed ${SEED}, ${RUNS} runs; FUZZ_SEED/FUZZ_RUNS to change)`, () => {
  let plugin: PluginProcess | undefined
  let ns = { name: '', path: '' }
  // Every ADD that succeeded, to be deleted afterwards.
  const added: Array<{ env: Record<string, string>; stdin: string }> = []
  const hostLinks = new Set<string>()
  before(async () => {
    requireRoot()
    execFileSync(process.execPath, [join(root, 'packages/cni-plugin/scripts/build.mjs')], { stdio: 'ignore' })
    ns = scope.addNetns('fz')
    plugin = await startPlugin(`isthmus-fz-${scope.id}`)
  })
  after(async () => {
    await plugin?.dispose()
    await scope.cleanup()
  })

  it("every call answers in the protocol's form, alike on both paths", async () => {
    const started = Date.now()
    const details = await fc.check(
      fc.asyncProperty(envArb, stdinArb, async (envCase, stdinCase) => {
        const env = envOf(envCase, ns.path)
        const outcomes: Array<{ code: number; msg: string } | 'ok'> = []
        for (const daemon of [false, plugin!.cniSocket] as const) {
          const r = await runSea(env, stdinOf(stdinCase, daemon))
          outcomes.push(judge(r, env, daemon === false ? 'in the process' : 'handed off'))
          if (r.exitCode === 0 && env['CNI_COMMAND'] === 'ADD' && r.doc !== undefined) {
            added.push({ env, stdin: stdinOf(stdinCase, false) })
            for (const i of (r.doc['interfaces'] as Array<{ name: string; sandbox?: string }> | undefined) ?? []) {
              if (i.sandbox === undefined) hostLinks.add(i.name)
            }
          }
        }
        const [local, handed] = outcomes
        if (local !== 'ok' && local !== undefined && inputOnly(local)) {
          assert.deepEqual(handed, local, 'the same error on both paths')
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true }
    )
    // The seed and the counterexample, and what the failing call printed.
    if (details.failed) assert.fail(`${fc.defaultReportMessage(details) ?? ''}\n${String(details.errorInstance)}`)
    // The test is only worth its time if some calls got through the envelope to the host.
    assert.ok(added.length > 0, 'some ADDs succeeded')
    console.log(`# fuzz: ${RUNS} cases, ${2 * RUNS} calls, ${added.length} ADDs succeeded, ${Date.now() - started} ms`)
  })

  it('afterwards the daemon answers, and nothing is left once DEL, GC and the networks are gone', async () => {
    assert.equal((await pluginCall(plugin!.socket, '/Plugin.Activate')).status, 200)
    const statusConf = { cniVersion: '1.1.0', name: NAME, type: 'isthmus', stateDir, chainPrefix: scope.chainPrefix }
    const before = plugin!
      .logs()
      .split('\n')
      .filter((l) => l.includes('"message":"cni"')).length
    const status = await runSea(
      { PATH: process.env['PATH'] ?? '', CNI_COMMAND: 'STATUS' },
      JSON.stringify({ ...statusConf, daemon: plugin!.cniSocket })
    )
    assert.deepEqual([status.exitCode, status.stdout], [0, ''], status.stderr)
    assert.equal(
      plugin!
        .logs()
        .split('\n')
        .filter((l) => l.includes('"message":"cni"')).length,
      before + 1,
      'the daemon ran it'
    )

    for (const a of added) {
      const del = await runSea({ ...a.env, CNI_COMMAND: 'DEL' }, a.stdin)
      assert.equal(del.exitCode, 0, `DEL of an added attachment: ${del.stdout}`)
    }
    const store = await fileStore({ stateDir })()
    assert.ok(E.isRight(store))
    const networks = await store.right.networks.list()()
    assert.ok(E.isRight(networks))
    for (const n of networks.right) {
      const gc = await runSea(
        { PATH: process.env['PATH'] ?? '', CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' },
        JSON.stringify({ ...statusConf, name: n.id, daemon: false, 'cni.dev/valid-attachments': [] })
      )
      assert.deepEqual([gc.exitCode, gc.stdout], [0, ''], gc.stderr)
      // CNI never deletes a network: the test does, through the core, as Docker's DeleteNetwork would.
      const ipam = makeIpam({ store: store.right, clock: systemClock })
      const env: Env = {
        store: store.right,
        dataplane: linuxDataplane({ chainPrefix: scope.chainPrefix }),
        controlPlane: builtinControlPlane(ipam, store.right),
        agent: noopAgent,
        log: silentLogger,
        clock: systemClock
      }
      const deleted = await deleteNetwork(n.id)(env)()
      assert.ok(E.isRight(deleted), JSON.stringify(deleted))
      if (n.bridge !== undefined) hostLinks.add(n.bridge)
    }
    await store.right.close()
    assert.deepEqual(
      files(stateDir).filter((f) => f.endsWith('.json')),
      [],
      'no record and no lease left in the state directory'
    )
    await waitUntil(
      'the links of the test to be gone',
      async () => linkNames().filter((l) => hostLinks.has(l)).length === 0,
      10_000
    )
    assert.deepEqual(linkNames(ns.name), ['lo'], 'nothing left in the namespace')
  })
})
