/**
 * `isthmus cni install`: the installed set is what the flags say. The native client always goes
 * to `<bin-dir>/isthmus`; `--fallback` adds the Node plugin as `<bin-dir>/isthmus-node`, and an
 * install without it removes one an earlier install left. Files stand in for the built programs
 * here (cni-plugin's package.test.ts installs and runs the real ones).
 */
import { strict as assert } from 'node:assert'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { builtClient, builtPlugin, cniInstall, FALLBACK_FILE, type CniInstallArgs } from '../src/commands/cni.js'

const dir = mkdtempSync(join(tmpdir(), 'isthmus-cli-cni-install-'))
const client = join(dir, 'client')
const plugin = join(dir, 'plugin')
writeFileSync(client, 'the client')
writeFileSync(plugin, 'the node plugin')

const install = (over: Partial<CniInstallArgs> = {}): { code: number; lines: string[]; bin: string; conf: string } => {
  const lines: string[] = []
  const a: CniInstallArgs = {
    binDir: join(dir, 'bin'),
    confDir: join(dir, 'net.d'),
    name: 'isthmus',
    subnet: '10.22.0.0/16',
    bridge: 'isthmus0',
    force: false,
    fallback: false,
    built: { client, fallback: plugin },
    out: (l) => lines.push(l),
    ...over
  }
  return { code: cniInstall(a), lines, bin: a.binDir, conf: a.confDir }
}

describe('isthmus cni install', () => {
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('installs from the built packages: the native client and the Node single-executable application', () => {
    assert.match(builtClient(), /packages\/cni-native\/dist\/isthmus$/)
    assert.match(builtPlugin(), /packages\/cni-plugin\/dist\/sea\/isthmus$/)
  })

  it('installs the native client alone, executable, and the example conflist', () => {
    const r = install()
    assert.equal(r.code, 0, r.lines.join('\n'))
    assert.deepEqual(readdirSync(r.bin), ['isthmus'])
    assert.equal(readFileSync(join(r.bin, 'isthmus'), 'utf8'), 'the client')
    assert.equal(statSync(join(r.bin, 'isthmus')).mode & 0o777, 0o755)
    assert.deepEqual(readdirSync(r.conf), ['10-isthmus.conflist'])
  })

  it('--fallback adds the Node plugin as isthmus-node; an install without it removes it again', () => {
    const withFallback = install({ fallback: true })
    assert.equal(withFallback.code, 0)
    assert.deepEqual(readdirSync(withFallback.bin).sort(), ['isthmus', FALLBACK_FILE])
    assert.equal(FALLBACK_FILE, 'isthmus-node')
    assert.equal(readFileSync(join(withFallback.bin, FALLBACK_FILE), 'utf8'), 'the node plugin')
    assert.equal(statSync(join(withFallback.bin, FALLBACK_FILE)).mode & 0o777, 0o755)
    const without = install()
    assert.equal(without.code, 0)
    assert.deepEqual(readdirSync(without.bin), ['isthmus'])
    assert.ok(
      without.lines.some((l) => l.startsWith(`removed ${join(without.bin, FALLBACK_FILE)}`)),
      without.lines.join('\n')
    )
  })

  it('says to run `pnpm build` when a program it needs is not built, and installs nothing', () => {
    const bin = join(dir, 'empty-bin')
    const noClient = install({ binDir: bin, built: { client: join(dir, 'missing'), fallback: plugin } })
    assert.equal(noClient.code, 1)
    assert.deepEqual(noClient.lines, [`isthmus: ${join(dir, 'missing')} is not built; run \`pnpm build\` first`])
    const noPlugin = install({ binDir: bin, fallback: true, built: { client, fallback: join(dir, 'missing') } })
    assert.equal(noPlugin.code, 1)
    assert.match(noPlugin.lines.join('\n'), /missing is not built; run `pnpm build` first/)
    assert.ok(!existsSync(bin), 'nothing installed')
    // Without --fallback the Node plugin is not needed.
    assert.equal(install({ binDir: bin, built: { client, fallback: join(dir, 'missing') } }).code, 0)
  })
})
