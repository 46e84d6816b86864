/**
 * Packaging: `pnpm --silent isthmus cni install` puts ONE executable file in the bin dir (a Node
 * SEA: an ELF binary with the bundle inside, no node_modules, no `node` on PATH needed) and the
 * example conflist in the conf dir; the installed file then serves VERSION, ADD, an error and DEL
 * under `env -i PATH=/usr/bin`, printing exactly one JSON document on stdout each time.
 */
import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import { openSync, readFileSync, readSync, closeSync, readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { addresses, execPlugin, pings, requireRoot, Scope } from './support.js'

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..')
const scope = new Scope()
const dir = scope.tmpDir('install')
const binDir = join(dir, 'bin')
const confDir = join(dir, 'net.d')
const plugin = join(binDir, 'isthmus')
const stateDir = scope.tmpDir('state')
const logFile = join(stateDir, 'cni.log')

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
  ipam: { ranges: [[{ subnet: '10.231.30.0/24' }]] }
}

describe('packaging: isthmus cni install', () => {
  before(() => {
    requireRoot()
    // Incremental: a no-op when `pnpm build` made it already (CI builds before testing).
    execFileSync(process.execPath, [join(root, 'packages/cni-plugin/scripts/build.mjs')], { stdio: 'ignore' })
    execFileSync('pnpm', ['--silent', 'isthmus', 'cni', 'install', '--bin-dir', binDir, '--conf-dir', confDir], {
      cwd: root,
      stdio: 'ignore'
    })
  })
  after(() => scope.cleanup())

  it('installs one executable ELF file and the example conflist', () => {
    assert.deepEqual(readdirSync(binDir), ['isthmus'])
    const st = statSync(plugin)
    assert.ok(st.isFile() && (st.mode & 0o111) === 0o111, 'executable by everyone')
    const head = Buffer.alloc(4)
    const fd = openSync(plugin, 'r')
    readSync(fd, head, 0, 4, 0)
    closeSync(fd)
    assert.deepEqual([...head], [0x7f, 0x45, 0x4c, 0x46], 'an ELF binary, not a script needing an interpreter')
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

  it('answers VERSION under env -i PATH=/usr/bin', async () => {
    const out = await execPlugin(plugin, minimal({ CNI_COMMAND: 'VERSION' }), '')
    assert.equal(out.exitCode, 0, out.stderr)
    assert.equal(out.stdout, '{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n')
    assert.equal(out.stderr, '', 'no experimental-SEA warning')
  })

  it('ADD, an error and DEL under env -i PATH=/usr/bin: one JSON document on stdout each, logs only in logFile', async () => {
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
})
