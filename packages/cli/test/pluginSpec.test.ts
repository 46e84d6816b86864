/**
 * The Windows listener's discovery file (windows/pluginSpec.ts), on Linux: the spec file's path and
 * address for a given pipe (pure), where it goes by default, writing and removing it in a temp
 * directory standing for %ProgramData%\docker\plugins; and `isthmus serve` writing and removing
 * it around a run whose listener is a unix socket (the pipe itself needs Windows: not run here).
 */
import { strict as assert } from 'node:assert'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pluginCall, startPlugin, uniquePrefix, waitUntil, type PluginProcess } from '@isthmus/testkit'
import { listenOnOf } from '../src/commands/serve.js'
import {
  DEFAULT_PIPE,
  isNamedPipe,
  pluginNameOf,
  pluginSpecAddress,
  pluginSpecDirFor,
  windowsPluginSpecDir,
  writePluginSpec
} from '../src/windows/pluginSpec.js'

describe('the plugin spec file for a Windows named pipe', () => {
  let dir = ''
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), `${uniquePrefix('ist-spec')}-`))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('tells a pipe from a unix socket, and names the driver as dockerd will look it up', () => {
    for (const p of [DEFAULT_PIPE, '//./pipe/isthmus', '\\\\?\\pipe\\isthmus', '\\\\.\\PIPE\\isthmus']) {
      assert.ok(isNamedPipe(p), p)
      assert.equal(pluginNameOf(p), 'isthmus', p)
    }
    for (const p of ['/run/docker/plugins/isthmus.sock', '\\\\server\\pipe\\isthmus', 'C:\\isthmus.sock', 'pipe']) {
      assert.ok(!isNamedPipe(p), p)
    }
    assert.equal(pluginNameOf('/run/docker/plugins/isthmus-b.sock'), 'isthmus-b')
    assert.deepEqual(listenOnOf(DEFAULT_PIPE), { pipe: DEFAULT_PIPE })
    assert.deepEqual(listenOnOf('/run/docker/plugins/isthmus.sock'), { socket: '/run/docker/plugins/isthmus.sock' })
  })

  it('holds npipe:////./pipe/<name> for a pipe (forward slashes, as dockerd dials the URL path), unix:// for a socket', () => {
    assert.equal(pluginSpecAddress('\\\\.\\pipe\\isthmus'), 'npipe:////./pipe/isthmus')
    assert.equal(pluginSpecAddress('//./pipe/isthmus'), 'npipe:////./pipe/isthmus')
    assert.equal(pluginSpecAddress('\\\\.\\pipe\\docker_plugins\\isthmus'), 'npipe:////./pipe/docker_plugins/isthmus')
    assert.equal(pluginSpecAddress('/tmp/x/isthmus.sock'), 'unix:///tmp/x/isthmus.sock')
  })

  it('goes to %ProgramData%\\docker\\plugins on a pipe unless --plugin-spec-dir says otherwise; nowhere for a socket', () => {
    assert.equal(windowsPluginSpecDir({ ProgramData: 'D:\\Data' }), 'D:\\Data\\docker\\plugins')
    assert.equal(windowsPluginSpecDir({ PROGRAMDATA: 'D:\\Data' }), 'D:\\Data\\docker\\plugins')
    assert.equal(windowsPluginSpecDir({}), 'C:\\ProgramData\\docker\\plugins')
    assert.equal(
      pluginSpecDirFor(DEFAULT_PIPE, undefined, { ProgramData: 'C:\\ProgramData' }),
      'C:\\ProgramData\\docker\\plugins'
    )
    assert.equal(pluginSpecDirFor(DEFAULT_PIPE, 'E:\\plugins', {}), 'E:\\plugins')
    assert.equal(pluginSpecDirFor(DEFAULT_PIPE, '', {}), undefined)
    assert.equal(pluginSpecDirFor('/run/docker/plugins/isthmus.sock', undefined, { ProgramData: 'C:\\x' }), undefined)
    assert.equal(pluginSpecDirFor('/tmp/isthmus.sock', '/etc/docker/plugins', {}), '/etc/docker/plugins')
  })

  it('is written whole into a directory it makes, and removed, unless another daemon replaced it meanwhile', async () => {
    const programData = join(dir, 'ProgramData', 'docker', 'plugins')
    const spec = await writePluginSpec(programData, DEFAULT_PIPE)
    assert.equal(spec.path, join(programData, 'isthmus.spec'))
    assert.equal(readFileSync(spec.path, 'utf8'), 'npipe:////./pipe/isthmus\n')
    assert.deepEqual(readdirSync(programData), ['isthmus.spec'], 'nothing aside left')
    await spec.remove()
    assert.ok(!existsSync(spec.path))
    await spec.remove() // gone already: nothing to do

    const again = await writePluginSpec(programData, DEFAULT_PIPE)
    await writeFile(again.path, 'npipe:////./pipe/another-daemons\n')
    await again.remove()
    assert.equal(readFileSync(again.path, 'utf8'), 'npipe:////./pipe/another-daemons\n', 'not ours: kept')
  })
})

describe('isthmus serve with --plugin-spec-dir', () => {
  let p: PluginProcess | undefined
  let dir = ''
  after(async () => {
    await p?.dispose()
    await rm(dir, { recursive: true, force: true })
  })

  it('writes <name>.spec naming its socket once it listens, reports it, and removes it on stop', async () => {
    dir = await mkdtemp(join(tmpdir(), `${uniquePrefix('ist-spec')}-`))
    const specDir = join(dir, 'plugins')
    p = await startPlugin(uniquePrefix('ist-spec'), ['--plugin-spec-dir', specDir])
    const file = join(specDir, `${p.name}.spec`)
    // written right after the listener answers: Plugin.Activate (startPlugin's wait) may come first
    await waitUntil('the spec file', () => Promise.resolve(existsSync(file)), 10_000)
    assert.equal(readFileSync(file, 'utf8'), `unix://${p.socket}\n`)
    const conf = await pluginCall(p.socket, '/IpamDriver.Configuration')
    assert.equal((conf.body as { pluginSpec?: string }).pluginSpec, specDir)
    await p.kill('SIGTERM')
    await waitUntil('the daemon to exit', () => Promise.resolve(p!.exit() !== undefined), 20_000)
    assert.deepEqual(p.exit(), { code: 0, signal: null })
    assert.ok(!existsSync(file), 'removed on stop')
  })
})
