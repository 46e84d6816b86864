/**
 * The Windows transport, as far as Linux can check it: the PowerShell helper ships in the
 * package, the command line is the one documented, and the helper protocol (method and path as
 * arguments, request on stdin, envelope on stdout, a sentence on stderr) works end to end with a
 * stand-in helper run as a real child process. HNSCall itself is not exercised here.
 */
import { strict as assert } from 'node:assert'
import { existsSync, readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { left, right } from '@isthmus/core/testing'
import { HNSCALL_SCRIPT, hnsCallCommand, hnsCallHelper, hnsClient, windowsHnsTransport } from '../src/index.js'

const pkgDir = new URL('../', import.meta.url).pathname

describe('windowsHnsTransport', () => {
  it('ships hnscall.ps1, which P/Invokes vmcompute.dll!HNSCall, in the package files', () => {
    assert.equal(HNSCALL_SCRIPT, `${pkgDir}src/windows/hnscall.ps1`)
    assert.ok(existsSync(HNSCALL_SCRIPT))
    const script = readFileSync(HNSCALL_SCRIPT, 'utf8')
    assert.match(script, /DllImport\("vmcompute\.dll"/)
    assert.match(script, /HNSCall\(string method, string path, string request, out IntPtr response\)/)
    assert.match(script, /FreeCoTaskMem/)
    const manifest = JSON.parse(readFileSync(`${pkgDir}package.json`, 'utf8')) as { files: string[] }
    assert.ok(manifest.files.includes('src'), 'src/ (and so src/windows/) is published')
  })

  it('builds the PowerShell command line: the helper, then the method and path', () => {
    assert.deepEqual(hnsCallCommand('GET', '/networks/'), [
      'powershell.exe',
      '-NoProfile',
      '-NonInteractive',
      '-ExecutionPolicy',
      'Bypass',
      '-File',
      HNSCALL_SCRIPT,
      'GET',
      '/networks/'
    ])
    assert.deepEqual(hnsCallCommand('DELETE', '/endpoints/E1', hnsCallHelper('C:\\isthmus\\hnscall.ps1', 'pwsh')), [
      'pwsh',
      '-NoProfile',
      '-NonInteractive',
      '-ExecutionPolicy',
      'Bypass',
      '-File',
      'C:\\isthmus\\hnscall.ps1',
      'DELETE',
      '/endpoints/E1'
    ])
  })

  it('runs a helper with the request on stdin and decodes the envelope it prints; its stderr is the error', async () => {
    // A stand-in for hnscall.ps1 that answers GET /networks/<id> with what it was given.
    const standIn = [
      process.execPath,
      '-e',
      `let body = ''
       process.stdin.on('data', (c) => (body += c))
       process.stdin.on('end', () => {
         const [method, path] = process.argv.slice(1)
         if (path === '/fail') { process.stderr.write('HNSCall GET /fail failed with HRESULT 0x80070005'); process.exit(1) }
         process.stdout.write(JSON.stringify({ Success: true, Output: { ID: 'N1', Name: method + ' ' + path + ' ' + body, Type: 'transparent' } }))
       })`
    ]
    const hns = hnsClient(windowsHnsTransport({ helper: standIn, timeoutMs: 10_000 }))
    const n = await right(hns.getNetwork('N1')())
    assert.equal(n.Name, 'GET /networks/N1 ')
    const created = await right(hns.createNetwork({ Name: 'x', Type: 'transparent' })())
    assert.equal(created.Name, 'POST /networks/ {"Name":"x","Type":"transparent"}')
    const failed = await left(windowsHnsTransport({ helper: standIn }).call('GET', '/fail', '')())
    assert.equal(failed._tag, 'Io')
    assert.match(JSON.stringify(failed), /HRESULT 0x80070005/)
    const none = await left(windowsHnsTransport({ helper: [] }).call('GET', '/networks/', '')())
    assert.match(JSON.stringify(none), /no helper program/)
  })
})
