/**
 * `isthmus status` against a real `isthmus serve` (and with it stopped), and the daemon's
 * `/metrics` after CNI calls the native client handed to it: the calls counted by command and
 * outcome, the build info, Node's process metrics under their standard names.
 */
import { strict as assert } from 'node:assert'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { httpGet, startPlugin, uniquePrefix, waitUntil, type PluginProcess } from '@isthmus/testkit'
import { cniEnv, requireRoot, Scope } from '../../cni-plugin/test/support.js'
import { buildClient, CLIENT, run as runClient } from '../../cni-native/test/support.js'
import type { StatusReport } from '../src/commands/status.js'

const exec = promisify(execFile)
const root = new URL('../../../', import.meta.url).pathname

const isthmus = (args: ReadonlyArray<string>): Promise<{ code: number; stdout: string; stderr: string }> =>
  exec(
    process.execPath,
    ['--import', 'tsx', '--conditions=@isthmus/source', 'packages/cli/src/bin/isthmus.ts', ...args],
    {
      cwd: root
    }
  ).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr })
  )

/** The value of one sample of a Prometheus text, by name and labels as written. */
const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe('isthmus status, and the metrics of handed-off CNI calls', () => {
  const scope = new Scope()
  const bridge = scope.bridge('s')
  let plugin: PluginProcess | undefined
  let metrics = ''
  const statusArgs = (p: PluginProcess) => [
    'status',
    '--socket',
    p.socket,
    '--cni-socket',
    p.cniSocket,
    '--state-dir',
    p.stateDir
  ]

  before(async () => {
    requireRoot()
    buildClient() // incremental: a no-op after `pnpm build`
    plugin = await startPlugin(uniquePrefix('ist-status'), ['--metrics-addr', '127.0.0.1:0'])
    await waitUntil('the metrics listener', () => Promise.resolve(/"message":"metrics"/.test(plugin!.logs())), 10_000)
    const line = plugin
      .logs()
      .split('\n')
      .find((l) => /"message":"metrics"/.test(l))
    metrics = (JSON.parse(line!) as { address: string }).address
  })
  after(async () => {
    await plugin?.dispose()
    await scope.cleanup()
  })

  const scrape = async (): Promise<string> => {
    const [host, port] = metrics.split(':')
    const r = await httpGet(host!, Number(port), '/metrics')
    assert.ok(r.ok, JSON.stringify(r))
    return r.text
  }

  it('counts the CNI calls the native client hands to the daemon, by command and outcome, in /metrics', async () => {
    const p = plugin!
    const ns = scope.addNetns('s')
    const conf = {
      cniVersion: '1.0.0',
      name: `status-${scope.id}`,
      type: 'isthmus',
      bridge,
      isGateway: true,
      // the daemon's own state and chains: the call runs in its session
      stateDir: p.stateDir,
      chainPrefix: p.chainPrefix,
      daemon: p.cniSocket,
      ipam: { ranges: [[{ subnet: '10.231.91.0/24' }]] }
    }
    const e = { ...cniEnv('ADD', { cid: 'st1', netns: ns.path, ifName: 'eth0' }), PATH: '' }
    const add = await runClient(CLIENT, e, JSON.stringify(conf))
    assert.equal(add.exitCode, 0, add.stdout + add.stderr)
    // a call that fails: no such namespace (a CNI error the daemon answers)
    const bad = await runClient(
      CLIENT,
      { ...cniEnv('ADD', { cid: 'st2', netns: '/var/run/netns/none-of-ours', ifName: 'eth0' }), PATH: '' },
      JSON.stringify(conf)
    )
    assert.notEqual(bad.exitCode, 0, bad.stdout)

    const text = await scrape()
    assert.equal(sample(text, 'isthmus_cni_requests_total{command="ADD",outcome="ok"}'), 1, text)
    assert.equal(sample(text, 'isthmus_cni_requests_total{command="ADD",outcome="error"}'), 1, text)
    assert.equal(sample(text, 'isthmus_cni_request_duration_seconds_count{command="ADD",outcome="ok"}'), 1)
    assert.ok((sample(text, 'isthmus_cni_request_duration_seconds_sum{command="ADD",outcome="ok"}') ?? 0) > 0)
    assert.match(text, /^isthmus_build_info\{version="\d+\.\d+\.\d+[^"]*",node="v\d+[^"]*",arch="[^"]+"\} 1$/m)
    // Node's process metrics under their standard names, not under isthmus_
    assert.ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 0, 'process_resident_memory_bytes')
    assert.match(text, /^nodejs_eventloop_lag_seconds \d/m)
    assert.doesNotMatch(text, /^isthmus_process_|^isthmus_nodejs_/m)
    // the isthmus metrics keep their prefix
    assert.ok(sample(text, 'isthmus_store_up') === 1)
  })

  it('status: exit 0 with the sockets answering, the store readable and the networks listed; text and --json', async () => {
    const p = plugin!
    const json = await isthmus([...statusArgs(p), '--json'])
    assert.equal(json.code, 0, json.stdout + json.stderr)
    const r = JSON.parse(json.stdout) as StatusReport
    assert.deepEqual([r.ok, r.daemon.ok, r.cni?.ok, r.store.ok], [true, true, true, true])
    assert.match(r.daemon.detail, /NetworkDriver/)
    assert.equal(r.store.quarantined, 0)
    assert.equal(r.store.endpoints, 1, 'the CNI attachment of the test before')
    const net = r.networks.find((n) => n.name === `status-${scope.id}`)
    assert.deepEqual([net?.subnets, net?.bridge, net?.endpoints], [['10.231.91.0/24'], bridge, 1])
    // the VERSION call status handed over is counted too
    assert.ok((sample(await scrape(), 'isthmus_cni_requests_total{command="VERSION",outcome="ok"}') ?? 0) >= 1)

    const text = await isthmus(statusArgs(p))
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /^daemon +ok .*answers/m)
    assert.match(text.stdout, /^cni socket +ok /m)
    assert.match(text.stdout, /^store +ok .*1 endpoints, \d+ leases, 0 quarantined/m)
    assert.match(text.stdout, new RegExp(`^status-${scope.id} +\\S+ +10\\.231\\.91\\.0/24 +${bridge} +1$`, 'm'))
  })

  it('status: exit 1 naming what failed when the store is not there, and when the daemon is stopped', async () => {
    const p = plugin!
    const empty = mkdtempSync(join(tmpdir(), `${uniquePrefix('ist-status')}-`))
    rmSync(empty, { recursive: true })
    const noStore = await isthmus([
      'status',
      '--socket',
      p.socket,
      '--cni-socket',
      p.cniSocket,
      '--state-dir',
      empty,
      '--json'
    ])
    assert.equal(noStore.code, 1)
    const r = JSON.parse(noStore.stdout) as StatusReport
    assert.deepEqual([r.ok, r.daemon.ok, r.store.ok], [false, true, false])
    assert.match(r.store.detail, /no state directory/)

    await p.kill('SIGTERM')
    const stopped = await isthmus(statusArgs(p))
    assert.equal(stopped.code, 1)
    assert.match(stopped.stdout, /^daemon +FAILED /m)
    assert.match(stopped.stdout, /^cni socket +FAILED /m)
    assert.match(stopped.stdout, /^store +ok /m, 'the store is still readable without the daemon')
    assert.match(stopped.stdout, /isthmus is not healthy/)
  })
})
