/**
 * The store's faults against the real daemon (`isthmus serve` from source) over its real socket:
 *
 * - A truncated endpoint record and a network record full of garbage in a live daemon's state
 *   directory: DeleteEndpoint of it succeeds, DeleteNetwork of another network works,
 *   /IpamDriver.Networks and /IpamDriver.Leases answer; both files are in the quarantine,
 *   `isthmus quarantine` lists them, `isthmus_store_quarantined_records` counts them, and the log
 *   has one line for each.
 * - The state directory on its own small tmpfs, filled to ENOSPC, then remounted read-only: every
 *   call that must write answers `{"Err"}` within seconds naming no path, reads still answer, the
 *   daemon lives on, and once space or write access is back the same calls succeed and every
 *   record file on disk decodes.
 */
import { strict as assert } from 'node:assert'
import { createHash, randomBytes } from 'node:crypto'
import { readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { hostIfName, type EndpointId } from '@isthmus/core'
import { layout } from '@isthmus/store-fs'
import {
  fillFileSystem,
  httpGet,
  linkExists,
  mountTmpfs,
  pluginCall,
  remount,
  run,
  startPlugin,
  unmountTmpfs,
  type PluginProcess
} from '@isthmus/testkit'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const BIN = join(root, 'packages/cli/src/bin/isthmus.ts')
const isthmus = (...args: string[]) =>
  run([process.execPath, '--import', 'tsx', '--conditions=@isthmus/source', BIN, ...args])

const dockerId = (seed: string): string =>
  createHash('sha256')
    .update(`${seed}-${randomBytes(8).toString('hex')}`)
    .digest('hex')
const SPACE = 'isthmus-local'

interface LogLine {
  readonly message?: string
  readonly [field: string]: unknown
}
const logLines = (p: PluginProcess): ReadonlyArray<LogLine> =>
  p
    .logs()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine)

// Docker's calls for one network on isthmus IPAM: pool, gateway, network. The subnet's pool id.
const createNetwork = async (socket: string, networkId: string, subnet: string) => {
  const pool = await pluginCall(socket, '/IpamDriver.RequestPool', {
    AddressSpace: SPACE,
    Pool: subnet,
    SubPool: '',
    Options: {},
    V6: false
  })
  const PoolID = (pool.body as { PoolID: string }).PoolID
  const gw = await pluginCall(socket, '/IpamDriver.RequestAddress', {
    PoolID,
    Address: '',
    Options: { RequestAddressType: 'com.docker.network.gateway' }
  })
  const Gateway = (gw.body as { Address: string }).Address
  const created = await pluginCall(socket, '/NetworkDriver.CreateNetwork', {
    NetworkID: networkId,
    Options: { 'com.docker.network.generic': {} },
    IPv4Data: [{ AddressSpace: SPACE, Gateway, Pool: subnet }]
  })
  return { PoolID, statuses: [pool.status, gw.status, created.status] }
}
const requestAddress = async (socket: string, PoolID: string) =>
  pluginCall(socket, '/IpamDriver.RequestAddress', { PoolID, Address: '', Options: null })
const createEndpoint = (socket: string, NetworkID: string, EndpointID: string, Address: string) =>
  pluginCall(socket, '/NetworkDriver.CreateEndpoint', { NetworkID, EndpointID, Interface: { Address, MacAddress: '' } })

// The host links a run may leave: bridges of networks whose records it corrupted, veths of
// endpoints whose records it corrupted. Removed by name in finally.
const removeLinks = async (names: Iterable<string>) => {
  for (const name of names) if (await linkExists(name)) await run(['ip', 'link', 'del', 'dev', name])
}
const bridgeOf = async (stateDir: string, networkId: string): Promise<string | undefined> => {
  const text = await readFile(layout(stateDir).record('networks', networkId), 'utf8').catch(() => undefined)
  return text === undefined ? undefined : (JSON.parse(text) as { data: { bridge?: string } }).data.bridge
}

// Every file of a state directory but locks, quarantine, cursors (hints) and temp files, with its
// bytes: what "no record added, none cut" compares.
const snapshot = async (stateDir: string): Promise<Map<string, string>> => {
  const v1 = layout(stateDir).root
  const out = new Map<string, string>()
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, e.name)
      const rel = relative(v1, path)
      if (['locks', 'quarantine', 'cursors'].includes(rel) || e.name.startsWith('.')) continue
      if (e.isDirectory()) await walk(path)
      else out.set(rel, await readFile(path, 'utf8'))
    }
  }
  await walk(v1)
  return out
}

// Every record of the state directory decodes: the CLI reads them all (a store quarantines what
// it cannot decode), and the quarantine stays empty.
const allRecordsDecode = async (stateDir: string) => {
  for (const cmd of ['networks', 'leases']) {
    const r = await isthmus(cmd, '--json', '--state-dir', stateDir)
    assert.equal(r.code, 0, r.stderr)
  }
  assert.deepEqual(JSON.parse((await isthmus('quarantine', '--json', '--state-dir', stateDir)).stdout), { records: [] })
}

describe('a truncated record in a live daemon', () => {
  it('is quarantined, listed, counted and logged once, and blocks nothing else', async () => {
    const plugin = await startPlugin(`isthmus-q${randomBytes(3).toString('hex')}`, ['--metrics-addr', '127.0.0.1:0'])
    const links = new Set<string>()
    const [A, B, C] = ['a', 'b', 'c'].map(dockerId) as [string, string, string]
    const [e1, e2] = ['e1', 'e2'].map(dockerId) as [string, string]
    try {
      const s = plugin.socket
      const call = (path: string, body?: unknown) => pluginCall(s, path, body)
      const a = await createNetwork(s, A, '10.246.11.0/24')
      for (const [id, subnet] of [
        [B, '10.246.12.0/24'],
        [C, '10.246.13.0/24']
      ] as const) {
        assert.deepEqual((await createNetwork(s, id, subnet)).statuses, [200, 200, 200])
      }
      assert.deepEqual(a.statuses, [200, 200, 200])
      for (const id of [A, B, C]) links.add((await bridgeOf(plugin.stateDir, id))!)
      for (const e of [e1, e2]) {
        links.add(hostIfName(e as EndpointId))
        const addr = (await requestAddress(s, a.PoolID)).body as { Address: string }
        assert.equal((await createEndpoint(s, A, e, addr.Address)).status, 200)
      }

      const L = layout(plugin.stateDir)
      const endpointFile = L.record('endpoints', e1)
      const networkFile = L.record('networks', B)
      const endpointBytes = await readFile(endpointFile)
      await truncate(endpointFile, Math.floor(endpointBytes.length / 2))
      await writeFile(networkFile, Buffer.from([0, 159, 146, 150, 0x7b, 0x22]))

      // another network goes, with both bad files in the directories it must read
      assert.deepEqual(await call('/NetworkDriver.DeleteNetwork', { NetworkID: C }), { status: 200, body: {} })
      const nets = await call('/IpamDriver.Networks')
      assert.equal(nets.status, 200, JSON.stringify(nets.body))
      assert.deepEqual((nets.body as { networks: Array<{ id: string }> }).networks.map((n) => n.id).sort(), [A].sort())
      const leases = await call('/IpamDriver.Leases')
      assert.equal(leases.status, 200, JSON.stringify(leases.body))
      assert.deepEqual(
        (leases.body as { attachments: Array<{ endpointId: string }> }).attachments.map((x) => x.endpointId),
        [e2]
      )
      // the truncated endpoint's own delete answers success (it is gone as far as isthmus can tell)
      assert.deepEqual(await call('/NetworkDriver.DeleteEndpoint', { NetworkID: A, EndpointID: e1 }), {
        status: 200,
        body: {}
      })
      assert.deepEqual(await call('/NetworkDriver.DeleteEndpoint', { NetworkID: A, EndpointID: e2 }), {
        status: 200,
        body: {}
      })
      assert.deepEqual(await call('/NetworkDriver.DeleteNetwork', { NetworkID: A }), { status: 200, body: {} })

      // in the quarantine, with its bytes, and listed by the CLI
      const listed = await isthmus('quarantine', '--json', '--state-dir', plugin.stateDir)
      assert.equal(listed.code, 0, listed.stderr)
      const records = (JSON.parse(listed.stdout) as { records: Array<Record<string, string>> }).records
      assert.deepEqual(records.map((r) => [r['kind'], r['key'], r['object'], r['formerLocation']]).sort(), [
        ['endpoint', e1, `endpoint ${e1}`, endpointFile],
        ['network', B, `network ${B}`, networkFile]
      ])
      const ep = records.find((r) => r['kind'] === 'endpoint')!
      assert.match(ep['reason']!, /^not JSON/)
      assert.deepEqual(await readFile(ep['location']!), endpointBytes.subarray(0, Math.floor(endpointBytes.length / 2)))
      const plain = await isthmus('quarantine', '--state-dir', plugin.stateDir)
      assert.equal(plain.code, 0, plain.stderr)
      for (const r of records) {
        for (const f of ['id', 'object', 'at', 'location']) {
          assert.ok(plain.stdout.includes(r[f]!), `${f} in:\n${plain.stdout}`)
        }
      }

      // counted
      const address = logLines(plugin).find((l) => l.message === 'metrics')?.['address'] as string
      const [host, port] = [
        address.slice(0, address.lastIndexOf(':')),
        Number(address.slice(address.lastIndexOf(':') + 1))
      ]
      const metrics = await httpGet(host, port, '/metrics')
      assert.ok(metrics.ok, JSON.stringify(metrics))
      assert.match(metrics.text, /^isthmus_store_quarantined_records\{kind="endpoint"\} 1$/m)
      assert.match(metrics.text, /^isthmus_store_quarantined_records\{kind="network"\} 1$/m)
      assert.match(metrics.text, /^isthmus_store_quarantined_records\{kind="lease"\} 0$/m)

      // logged once each, with the file
      const lines = logLines(plugin).filter((l) => l.message === 'quarantined an unreadable record')
      assert.deepEqual(lines.map((l) => [l['object'], l['file']]).sort(), [
        [`endpoint ${e1}`, endpointFile],
        [`network ${B}`, networkFile]
      ])
      // and nothing answered with the state directory in a sentence
      assert.ok(!plugin.logs().includes(`"error":"invalid ${plugin.stateDir}`), 'no path in an error')

      // dropped by the operator: gone
      const dropped = await isthmus(
        'quarantine',
        'drop',
        ...records.map((r) => r['id']!),
        '--state-dir',
        plugin.stateDir
      )
      assert.equal(dropped.code, 0, dropped.stderr)
      assert.deepEqual(JSON.parse((await isthmus('quarantine', '--json', '--state-dir', plugin.stateDir)).stdout), {
        records: []
      })
    } finally {
      await plugin.dispose()
      await removeLinks(links)
    }
  })
})

// ---------------------------------------------------------------------------------------------

const PROMPT_MS = 5000

describe('a daemon whose state directory fills up, then turns read-only', () => {
  it('answers {"Err"} at once while it cannot write, lives on, and works again once it can; no record is cut', async () => {
    const mnt = await mountTmpfs('2m')
    const stateDir = join(mnt, 'state')
    const links = new Set<string>()
    let plugin: PluginProcess | undefined
    let ro = false
    try {
      plugin = await startPlugin(`isthmus-f${randomBytes(3).toString('hex')}`, [], { stateDir })
      const s = plugin.socket
      const N1 = dockerId('n1')
      const N2 = dockerId('n2')
      const [e1, e2] = ['e1', 'e2'].map(dockerId) as [string, string]
      for (const e of [e1, e2]) links.add(hostIfName(e as EndpointId))
      const n1 = await createNetwork(s, N1, '10.246.21.0/24')
      assert.deepEqual(n1.statuses, [200, 200, 200])
      links.add((await bridgeOf(stateDir, N1))!)
      const addr1 = ((await requestAddress(s, n1.PoolID)).body as { Address: string }).Address

      // Each call that must write: a prompt {"Err"} naming the fault, and never the path.
      const refused = async (what: string, p: Promise<{ status: number; body: unknown }>, code: string) => {
        const t0 = Date.now()
        const r = await p
        const ms = Date.now() - t0
        assert.ok(ms < PROMPT_MS, `${what}: answered in ${ms} ms`)
        assert.equal(r.status, 500, `${what}: ${JSON.stringify(r.body)}`)
        const err = String((r.body as { Err?: unknown }).Err)
        assert.ok(err.includes(code), `${what}: ${err}`)
        assert.ok(!err.includes(mnt), `${what}: no path in ${err}`)
      }
      const alive = async () => {
        const r = await pluginCall(s, '/IpamDriver.Leases')
        assert.equal(r.status, 200, JSON.stringify(r.body))
        assert.ok(plugin!.pid() > 0 && process.kill(plugin!.pid(), 0))
      }

      // -- full ------------------------------------------------------------------------------
      const before = await snapshot(stateDir)
      const filler = join(mnt, 'filler')
      fillFileSystem(filler)
      await refused(
        'RequestPool',
        pluginCall(s, '/IpamDriver.RequestPool', {
          AddressSpace: SPACE,
          Pool: '10.246.22.0/24',
          SubPool: '',
          Options: {},
          V6: false
        }),
        'ENOSPC'
      )
      await refused('RequestAddress', requestAddress(s, n1.PoolID), 'ENOSPC')
      await refused('CreateEndpoint', createEndpoint(s, N1, e1, addr1), 'ENOSPC')
      await refused(
        'CreateNetwork',
        pluginCall(s, '/NetworkDriver.CreateNetwork', {
          NetworkID: N2,
          Options: { 'com.docker.network.generic': {} },
          IPv4Data: [{ AddressSpace: SPACE, Gateway: '10.246.23.1/24', Pool: '10.246.23.0/24' }]
        }),
        'ENOSPC'
      )
      await alive()
      assert.deepEqual(await snapshot(stateDir), before, 'no record added, none cut')

      await rm(filler)
      const n2 = await createNetwork(s, N2, '10.246.22.0/24')
      assert.deepEqual(n2.statuses, [200, 200, 200])
      links.add((await bridgeOf(stateDir, N2))!)
      assert.equal((await createEndpoint(s, N1, e1, addr1)).status, 200)
      const r2 = await requestAddress(s, n1.PoolID)
      assert.equal(r2.status, 200)
      const addr2 = (r2.body as { Address: string }).Address

      // -- read-only -------------------------------------------------------------------------
      remount(mnt, 'ro')
      ro = true
      await refused('RequestAddress', requestAddress(s, n2.PoolID), 'EROFS')
      await refused('CreateEndpoint', createEndpoint(s, N1, e2, addr2), 'EROFS')
      await refused(
        'ReleaseAddress',
        pluginCall(s, '/IpamDriver.ReleaseAddress', { PoolID: n1.PoolID, Address: addr2.split('/')[0] }),
        'EROFS'
      )
      await refused(
        'RequestPool',
        pluginCall(s, '/IpamDriver.RequestPool', {
          AddressSpace: SPACE,
          Pool: '10.246.24.0/24',
          SubPool: '',
          Options: {},
          V6: false
        }),
        'EROFS'
      )
      await alive()
      const nets = await pluginCall(s, '/IpamDriver.Networks')
      assert.equal(nets.status, 200)
      assert.equal((nets.body as { networks: unknown[] }).networks.length, 2)

      remount(mnt, 'rw')
      ro = false
      assert.equal((await createEndpoint(s, N1, e2, addr2)).status, 200)
      for (const e of [e1, e2]) {
        assert.deepEqual(await pluginCall(s, '/NetworkDriver.DeleteEndpoint', { NetworkID: N1, EndpointID: e }), {
          status: 200,
          body: {}
        })
      }
      for (const n of [N1, N2]) {
        assert.deepEqual(await pluginCall(s, '/NetworkDriver.DeleteNetwork', { NetworkID: n }), {
          status: 200,
          body: {}
        })
      }
      for (const p of [n1.PoolID, n2.PoolID]) {
        assert.equal((await pluginCall(s, '/IpamDriver.ReleasePool', { PoolID: p })).status, 200)
      }

      // every record on disk decodes, nothing was quarantined, the daemon never crashed
      await allRecordsDecode(stateDir)
      assert.ok(!/uncaught|unhandled/i.test(plugin.logs()), plugin.logs())
      await alive()
    } finally {
      if (ro) remount(mnt, 'rw')
      await plugin?.dispose()
      await removeLinks(links)
      await unmountTmpfs(mnt)
    }
  })
})
