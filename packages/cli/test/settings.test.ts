/**
 * Where settings come from: flag > ISTHMUS_* variable > JSON config file > default, checked for
 * several flags of `serve` (a real daemon reports what it runs with on /IpamDriver.Configuration)
 * and of `cni install` (the files it writes); bad values from each source refused with exit code 2,
 * naming the source; exit codes 0, 1, 2 of every command; the README's table of variables.
 */
import { strict as assert } from 'node:assert'
import { execFile, spawn } from 'node:child_process'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { linuxDataplane } from '@isthmus/dataplane-linux'
import { pluginCall, uniquePrefix, waitUntil } from '@isthmus/testkit'
import { buildClient } from '../../cni-native/test/support.js'
import { buildCli, commandFlags } from '../src/cli.js'
import { envVarOf, UsageError } from '../src/settings.js'

const exec = promisify(execFile)
const root = new URL('../../../', import.meta.url).pathname
const BIN = ['--import', 'tsx', '--conditions=@isthmus/source', 'packages/cli/src/bin/isthmus.ts']

type Env = Record<string, string | undefined>

const isthmus = (args: ReadonlyArray<string>, env: Env = {}) =>
  exec(process.execPath, [...BIN, ...args], { cwd: root, env: { ...process.env, ...env } }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr })
  )

/** Parse in this process; the usage error's sentence, or undefined when the parse went through. */
const usageError = async (argv: ReadonlyArray<string>, env: Env = {}): Promise<string | undefined> => {
  try {
    await buildCli(argv, env).parseAsync()
    return undefined
  } catch (e) {
    if (e instanceof UsageError) return e.message
    throw e
  } finally {
    process.exitCode = undefined
  }
}

const prefix = uniquePrefix('ist-set')
let dir = ''
const file = (name: string, doc: unknown): string => {
  const f = join(dir, name)
  writeFileSync(f, typeof doc === 'string' ? doc : JSON.stringify(doc))
  return f
}

describe('isthmus settings: flags, ISTHMUS_* variables, a config file', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), `${prefix}-`))
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('serve: a flag wins over a variable, a variable over the config file, the file over the default', async () => {
    const socket = join(dir, 'serve.sock')
    const stateEnv = join(dir, 'state-env')
    const chainPrefix = `IS${prefix.slice(-6)}`
    const config = file('serve.json', {
      socket: join(dir, 'from-file.sock'), // a flag gives it
      'state-dir': join(dir, 'state-file'), // a variable gives it
      'log-level': 'warn', // a variable gives it
      'chain-prefix': chainPrefix, // only the file gives it
      'cni-socket': join(dir, 'cni.sock'),
      'metrics-addr': '127.0.0.1:0',
      // a key of another command's flag: left alone by serve
      'bin-dir': '/nowhere'
    })
    const child = spawn(process.execPath, [...BIN, 'serve', '--socket', socket], {
      cwd: root,
      env: {
        ...process.env,
        ISTHMUS_CONFIG: config,
        ISTHMUS_SOCKET: join(dir, 'from-env.sock'),
        ISTHMUS_STATE_DIR: stateEnv,
        ISTHMUS_LOG_LEVEL: 'debug',
        // variables of no serve flag: ignored, not "unknown arguments"
        ISTHMUS_ETCD_PASSWORD: 'secret',
        ISTHMUS_CNI_FALLBACK: '1'
      },
      stdio: ['ignore', 'ignore', 'pipe']
    })
    let log = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => (log += d))
    try {
      await waitUntil(
        'the daemon to answer',
        () => {
          if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${log}`)
          return pluginCall(socket, '/Plugin.Activate').then(
            (r) => r.status === 200,
            () => false
          )
        },
        30_000
      )
      const { body } = await pluginCall(socket, '/IpamDriver.Configuration')
      const c = body as Record<string, unknown>
      assert.deepEqual(
        [c['socket'], c['stateDir'], c['logLevel'], c['chainPrefix'], c['metricsAddr'], c['dataplane']],
        [socket, stateEnv, 'debug', chainPrefix, '127.0.0.1:0', { kind: 'linux' }]
      )
      assert.ok(existsSync(join(dir, 'cni.sock')), 'the hand-off socket of the file')
      assert.match(log, /"level":"debug"/, 'debug lines: the variable won over the file')
    } finally {
      child.kill('SIGTERM')
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)))
      await linuxDataplane({ chainPrefix }).removeFirewall()()
    }
  })

  it('cni install: the same order, for the directories, the subnet, the name and --force', async () => {
    buildClient() // incremental: a no-op after `pnpm build`
    const binFile = join(dir, 'bin-file')
    const confEnv = join(dir, 'conf-env')
    const config = file('cni.json', {
      'bin-dir': binFile,
      'conf-dir': join(dir, 'conf-file'),
      subnet: '10.1.0.0/16',
      name: 'from-file',
      force: false,
      // a key of serve's flag: left alone by cni install
      'log-level': 'debug'
    })
    const env = { ISTHMUS_CONF_DIR: confEnv, ISTHMUS_SUBNET: '10.2.0.0/16', ISTHMUS_FORCE: 'true' }
    assert.equal(await usageError(['cni', 'install', '--config', config, '--subnet', '10.3.0.0/16'], env), undefined)
    assert.ok(existsSync(join(binFile, 'isthmus')), 'bin-dir of the file')
    const conf = JSON.parse(readFileSync(join(confEnv, '10-isthmus.conflist'), 'utf8')) as {
      name: string
      plugins: Array<{ ipam: { ranges: Array<Array<{ subnet: string }>> } }>
    }
    assert.deepEqual([conf.name, conf.plugins[0]?.ipam.ranges[0]?.[0]?.subnet], ['from-file', '10.3.0.0/16'])
    // --force from the variable over the file's false: the conflist is replaced
    writeFileSync(join(confEnv, '10-isthmus.conflist'), 'old')
    assert.equal(await usageError(['cni', 'install', '--config', config], env), undefined)
    assert.match(readFileSync(join(confEnv, '10-isthmus.conflist'), 'utf8'), /"10\.2\.0\.0\/16"/)
    // and --no-force on the command line over the variable: kept
    writeFileSync(join(confEnv, '10-isthmus.conflist'), 'old')
    assert.equal(await usageError(['cni', 'install', '--config', config, '--no-force'], env), undefined)
    assert.equal(readFileSync(join(confEnv, '10-isthmus.conflist'), 'utf8'), 'old')
  })

  it('a bad value is refused from each source, the message naming it; a flag given hides a bad variable', async () => {
    const sock = ['--socket', '/nonexistent/isthmus-test.sock']
    const cases: Array<[string[], Env, RegExp]> = [
      [['serve', ...sock, '--max-connections', '0'], {}, /^--max-connections: a number of at least 1/],
      [
        ['serve', ...sock],
        { ISTHMUS_MAX_CONNECTIONS: 'many' },
        /^ISTHMUS_MAX_CONNECTIONS: --max-connections takes a number \(got "many"\)/
      ],
      [
        ['serve', ...sock, '--config', file('bad-mc.json', { 'max-connections': 'many' })],
        {},
        /^config file .*bad-mc\.json: --max-connections takes a number/
      ],
      [['serve', ...sock, '--chain-prefix', 'has-dash'], {}, /^--chain-prefix: letters, digits and _.*"has-dash"\)$/],
      [['serve', ...sock], { ISTHMUS_CHAIN_PREFIX: 'has-dash' }, /^--chain-prefix: .* \(from ISTHMUS_CHAIN_PREFIX\)$/],
      [
        ['serve', ...sock],
        { ISTHMUS_CONFIG: file('bad-cp.json', { 'chain-prefix': 'has-dash' }) },
        /\(from config file .*bad-cp\.json\)$/
      ],
      [
        ['serve', ...sock],
        { ISTHMUS_LOG_LEVEL: 'loud' },
        /^ISTHMUS_LOG_LEVEL: --log-level takes one of "error", "warn", "info", "debug"/
      ],
      [['serve', ...sock, '--log-level', 'loud'], {}, /Argument: log-level, Given: "loud"/],
      [
        ['serve', ...sock],
        { ISTHMUS_METRICS_ADDR: '0.0.0.0:9323' },
        /is not a loopback address.*\(from ISTHMUS_METRICS_ADDR\)$/
      ],
      [['cni', 'install'], { ISTHMUS_FORCE: 'maybe' }, /^ISTHMUS_FORCE: --force takes true or false \(got "maybe"\)/],
      [
        ['cni', 'install', '--config', file('bad-force.json', { force: 'maybe' })],
        {},
        /^config file .*: --force takes true or false/
      ],
      [
        ['cni', 'install', '--config', file('typo.json', { 'bin-dri': '/x' })],
        {},
        /^config file .*typo\.json: "bin-dri" is no flag of isthmus/
      ],
      [['status', '--config', join(dir, 'none.json')], {}, /^config file .*none\.json: cannot read it \(ENOENT\)/],
      [['status', '--config', file('notjson.json', '{"json": tru')], {}, /^config file .*: not JSON/],
      [['status', '--config', file('array.json', [1])], {}, /^config file .*: expected a JSON object/],
      [['leases'], { ISTHMUS_STORE: 'nowhere' }, /^ISTHMUS_STORE: --store takes one of "file", "etcd"/]
    ]
    for (const [argv, env, want] of cases) {
      const msg = await usageError(argv, env)
      assert.match(msg ?? '(no error)', want, `${argv.join(' ')} ${JSON.stringify(env)}`)
    }
    // an empty variable is unset (dockerd passes a managed plugin's every Env entry)
    assert.equal(await usageError(['leases', '--state-dir', '/nonexistent/d'], { ISTHMUS_STORE: '' }), undefined)
    // the flag is what counts: a bad variable or file value under it is never read
    const status = [
      'status',
      '--socket',
      '/nonexistent/s',
      '--cni-socket',
      '',
      '--state-dir',
      '/nonexistent/d',
      '--json'
    ]
    assert.equal(await usageError([...status, '--timeout', '1'], { ISTHMUS_TIMEOUT: 'soon' }), undefined)
    // a variable of the command's flag in the bin: exit code 2 and the sentence on stderr
    const bin = await isthmus(['status'], { ISTHMUS_TIMEOUT: 'soon' })
    assert.equal(bin.code, 2)
    assert.match(bin.stderr, /^isthmus: ISTHMUS_TIMEOUT: --timeout takes a number \(got "soon"\)$/m)
  })

  it('usage errors exit 2 on every command, run-time failures 1, success 0', async () => {
    const every = [
      'serve',
      'cni install',
      'leases',
      'networks',
      'quarantine',
      'quarantine drop x',
      'hosts',
      'hosts rm x',
      'status'
    ]
    for (const cmd of every) {
      const msg = await usageError([...cmd.split(' '), '--bogus-flag'])
      assert.match(msg ?? '', /^Unknown arguments?: bogus-flag/, cmd)
    }
    for (const [argv, want] of [
      [['frobnicate'], /Unknown argument: frobnicate/],
      [[], /Name a command/],
      [['cni'], /Not enough non-option arguments/],
      [['quarantine', 'drop'], /Not enough non-option arguments/],
      [['hosts', 'rm'], /Not enough non-option arguments/],
      [['hosts'], /name the cluster: --cluster <name>/],
      [['leases', '--etcd-ca', '/x'], /--etcd-ca: only with --store etcd/],
      [['status', '--timeout', '0'], /--timeout: a number of seconds above 0/]
    ] as const) {
      assert.match((await usageError(argv)) ?? '(no error)', want, argv.join(' '))
    }
    // through the bin: its exit codes
    const codes = await Promise.all([
      isthmus(['leases', '--bogus']),
      isthmus(['serve', '--socket', '/nonexistent/x.sock', '--idle-timeout', 'soon']),
      isthmus(['leases', '--state-dir', join(dir, 'no-such-state')]),
      isthmus(['--version'])
    ])
    assert.deepEqual(
      codes.map((r) => r.code),
      [2, 2, 1, 0],
      codes.map((r) => r.stderr).join('\n')
    )
    assert.match(codes[0].stderr, /^isthmus: Unknown argument: bogus\nSee isthmus --help/)
    assert.match(codes[2].stderr, /no state directory at/)
  })

  it("the managed plugin's settable variables are serve's flags (and the etcd password), empty by default", () => {
    const config = JSON.parse(
      readFileSync(new URL('../../cnm-server/plugin/config.json', import.meta.url), 'utf8')
    ) as { Env: Array<{ Name: string; Settable: string[]; Value: string }> }
    const serveVars = new Set([...(commandFlags().get('serve') ?? [])].map(envVarOf))
    for (const v of config.Env) {
      assert.ok(serveVars.has(v.Name) || v.Name === 'ISTHMUS_ETCD_PASSWORD', `${v.Name} is a serve flag's`)
      assert.deepEqual([v.Settable, v.Value], [['value'], ''], v.Name)
    }
    assert.ok(config.Env.some((v) => v.Name === 'ISTHMUS_LOG_LEVEL'))
  })

  it("the README's table of variables lists every flag of every command, and nothing else", () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    const documented = new Map(
      [...readme.matchAll(/^\| `(ISTHMUS_[A-Z0-9_]+)` \| `--([a-z0-9-]+)` \| ([^|]+) \|$/gm)].map((m) => [
        m[2]!,
        { variable: m[1]!, commands: m[3]!.trim() }
      ])
    )
    const byFlag = new Map<string, string[]>()
    for (const [cmd, flags] of commandFlags()) for (const f of flags) byFlag.set(f, [...(byFlag.get(f) ?? []), cmd])
    assert.deepEqual(
      [...documented.keys()].sort(),
      [...byFlag.keys()].sort(),
      'README rows (generate them from commandFlags())'
    )
    for (const [flag, cmds] of byFlag) {
      assert.deepEqual(documented.get(flag), { variable: envVarOf(flag), commands: cmds.join(', ') }, flag)
    }
  })
})
