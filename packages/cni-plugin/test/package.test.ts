/**
 * Packaging: `pnpm --silent isthmus cni install` puts ONE executable file in the bin dir, the
 * native client (packages/cni-native: a static ELF program of a few MB that needs nothing on
 * PATH), and the example conflist in the conf dir; with no daemon and no fallback a call is code
 * 11. `--fallback` adds the Node plugin beside it (`isthmus-node`, a Node SEA), which then serves
 * ADD, an error and DEL under `env -i PATH=/usr/bin`, printing exactly one JSON document on stdout
 * each time; an install without `--fallback` removes it again.
 */
import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import { openSync, readFileSync, readSync, closeSync, readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { buildClient, buildSea, programHeaderTypes, PT_DYNAMIC, PT_INTERP } from '../../cni-native/test/support.js'
import { addresses, errorDoc, execPlugin, pings, requireRoot, Scope } from './support.js'

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..')
const scope = new Scope()
const dir = scope.tmpDir('install')
const binDir = join(dir, 'bin')
const confDir = join(dir, 'net.d')
const plugin = join(binDir, 'isthmus')
const stateDir = scope.tmpDir('state')
const logFile = join(stateDir, 'cni.log')
// No daemon listens here (the default socket is not this test's to use).
const noDaemon = join(dir, 'none.sock')

// What a runtime with a minimal environment passes: no node on PATH, no HOME, nothing else.
const minimal = (vars: Record<string, string>) => ({ PATH: '/usr/bin', ...vars })
const conf = {
  cniVersion: '1.0.0',
  name: `pkg-${scope.id}`,
  type: 'isthmus',
  bridge: scope.bridge('p'),
  stateDir,
  chainPrefix: scope.chainPrefix,
  logFile,
  daemon: noDaemon,
  ipam: { ranges: [[{ subnet: '10.231.30.0/24' }]] }
}
const install = (...flags: string[]) =>
  execFileSync(
    'pnpm',
    ['--silent', 'isthmus', 'cni', 'install', '--bin-dir', binDir, '--conf-dir', confDir, ...flags],
    { cwd: root, stdio: 'ignore' }
  )
const isElf = (file: string): boolean => {
  const head = Buffer.alloc(4)
  const fd = openSync(file, 'r')
  readSync(fd, head, 0, 4, 0)
  closeSync(fd)
  return head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))
}

describe('packaging: isthmus cni install', () => {
  before(() => {
    requireRoot()
    // Incremental: no-ops when `pnpm build` made them already (CI builds before testing).
    buildClient()
    buildSea()
    install()
  })
  after(() => scope.cleanup())

  it('installs one file, the native client: a static ELF program under 5 MB; and the example conflist', () => {
    assert.deepEqual(readdirSync(binDir), ['isthmus'])
    const st = statSync(plugin)
    assert.ok(st.isFile() && (st.mode & 0o111) === 0o111, 'executable by everyone')
    assert.ok(st.size < 5 << 20, `${st.size} bytes`)
    const types = programHeaderTypes(plugin)
    assert.ok(!types.includes(PT_INTERP) && !types.includes(PT_DYNAMIC), 'static: no interpreter, no shared library')
    assert.deepEqual(readdirSync(confDir), ['10-isthmus.conflist'])
    const list = JSON.parse(readFileSync(join(confDir, '10-isthmus.conflist'), 'utf8')) as {
      cniVersion: string
      name: string
      plugins: Array<{ type: string }>
    }
    assert.equal(list.cniVersion, '1.0.0')
    assert.deepEqual(
      list.plugins.map((p) => p.type),
      ['isthmus']
    )
  })

  it('answers VERSION with nothing in its environment, not even PATH', async () => {
    for (const env of [{ CNI_COMMAND: 'VERSION' }, { CNI_COMMAND: 'VERSION', PATH: '' }]) {
      const out = await execPlugin(plugin, env, '')
      assert.equal(out.exitCode, 0, out.stderr)
      assert.equal(out.stdout, '{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n')
      assert.equal(out.stderr, '')
    }
  })

  it('with no daemon and no fallback, a call is code 11 naming the socket', async () => {
    const ns = scope.addNetns('n')
    const env = minimal({
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'pkg0',
      CNI_NETNS: ns.path,
      CNI_IFNAME: 'eth0',
      CNI_PATH: binDir
    })
    const doc = errorDoc(await execPlugin(plugin, env, conf))
    assert.deepEqual([doc.code, doc.msg], [11, 'isthmus daemon not reachable'])
    assert.ok(doc.details?.includes(noDaemon), doc.details)
  })

  it('--fallback adds the Node plugin: ADD, an error and DEL under env -i PATH=/usr/bin run there, logs only in logFile', async () => {
    install('--fallback')
    assert.deepEqual(readdirSync(binDir).sort(), ['isthmus', 'isthmus-node'])
    assert.ok(isElf(join(binDir, 'isthmus-node')), 'the Node SEA, an ELF binary')
    assert.ok((statSync(join(binDir, 'isthmus-node')).mode & 0o111) === 0o111)
    const ns = scope.addNetns('p')
    const env = minimal({
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'pkg1',
      CNI_NETNS: ns.path,
      CNI_IFNAME: 'eth0',
      CNI_PATH: binDir
    })
    const add = await execPlugin(plugin, env, conf)
    assert.equal(add.exitCode, 0, add.stdout + add.stderr)
    assert.ok(add.doc !== undefined, 'stdout is exactly one JSON document')
    assert.deepEqual(addresses('eth0', ns.name), ['10.231.30.2/24'])
    assert.ok(pings(ns.name, '10.231.30.1'))
    assert.equal(add.stderr, '')
    const bad = await execPlugin(plugin, { ...env, CNI_IFNAME: 'way-too-long-ifname' }, conf)
    assert.deepEqual([bad.exitCode, bad.doc?.['code']], [1, 4])
    const del = await execPlugin(plugin, { ...env, CNI_COMMAND: 'DEL' }, conf)
    assert.deepEqual([del.exitCode, del.stdout], [0, ''])
    assert.deepEqual(addresses('eth0', ns.name), [])
    const log = readFileSync(logFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    assert.deepEqual(
      log.map((l) => [l['op'], l['message']]),
      [
        ['ADD', 'done'],
        ['DEL', 'done']
      ]
    )
  })

  it('an install without --fallback removes the Node plugin again', () => {
    install()
    assert.deepEqual(readdirSync(binDir), ['isthmus'])
  })
})
