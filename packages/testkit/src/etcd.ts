/**
 * A real etcd (Debian's etcd-server) of a test's own: on a loopback port, or inside a network
 * namespace on an address there, with a fresh data directory; stopped by its PID, killed (SIGKILL)
 * and started again on the same data for outage tests. Never listens outside what the test made.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stopChild, waitUntil } from './proc.js'

export const ETCD = '/usr/bin/etcd'

export interface EtcdOptions {
  /** Listen on this address (default 127.0.0.1); inside `netns` when given. */
  readonly host?: string
  /** Run inside this named network namespace (`ip netns exec`). */
  readonly netns?: string
  readonly clientPort?: number
  readonly peerPort?: number
}

export interface TestEtcd {
  /** `http://<host>:<port>`, for the client. */
  readonly endpoint: string
  readonly dataDir: string
  readonly pid: () => number | undefined
  /** SIGKILL, as a crash: the data directory stays. */
  readonly kill: () => Promise<void>
  /** Start again on the same data directory and ports; resolves once it answers. */
  readonly restart: () => Promise<void>
  /** Stop (SIGTERM) and remove the data directory. */
  readonly stop: () => Promise<void>
}

/** A free TCP port on loopback (a port the test then hands to etcd). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      const port = typeof a === 'object' && a !== null ? a.port : 0
      s.close(() => resolve(port))
    })
  })

const healthy = async (endpoint: string, netns: string | undefined): Promise<boolean> => {
  if (netns !== undefined) {
    // the test process may be outside the namespace: ask from inside it
    const { run } = await import('./proc.js')
    const r = await run(['ip', 'netns', 'exec', netns, 'etcdctl', '--endpoints', endpoint, 'endpoint', 'health'], {
      timeoutMs: 5_000,
      env: { ...process.env, ETCDCTL_API: '3' }
    })
    return r.code === 0
  }
  try {
    const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(2_000) })
    return res.ok
  } catch {
    return false
  }
}

/** Start an etcd of the test's own; resolves once it answers. */
export const startEtcd = async (opts: EtcdOptions = {}): Promise<TestEtcd> => {
  const host = opts.host ?? '127.0.0.1'
  const clientPort = opts.clientPort ?? (opts.netns === undefined ? await freePort() : 2379)
  const peerPort = opts.peerPort ?? (opts.netns === undefined ? await freePort() : 2380)
  const dataDir = await mkdtemp(join(tmpdir(), 'isthmus-etcd-'))
  const endpoint = `http://${host}:${clientPort}`
  const peer = `http://${host}:${peerPort}`
  const argv = [
    ETCD,
    '--name',
    'e1',
    '--data-dir',
    dataDir,
    '--listen-client-urls',
    endpoint,
    '--advertise-client-urls',
    endpoint,
    '--listen-peer-urls',
    peer,
    '--initial-advertise-peer-urls',
    peer,
    '--initial-cluster',
    `e1=${peer}`,
    '--log-level',
    'error'
  ]
  const full = opts.netns === undefined ? argv : ['ip', 'netns', 'exec', opts.netns, ...argv]
  let child: ChildProcess | undefined
  let log = ''
  const launch = async (): Promise<void> => {
    log = ''
    const c = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
    c.stdout?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)))
    c.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)))
    child = c
    try {
      await waitUntil(
        `etcd at ${endpoint}`,
        async () => {
          if (c.exitCode !== null) throw new Error(`etcd exited ${c.exitCode}: ${log}`)
          return healthy(endpoint, opts.netns)
        },
        30_000,
        100
      )
    } catch (e) {
      await stopChild(c, 'SIGKILL')
      throw e
    }
  }
  await launch()
  return {
    endpoint,
    dataDir,
    pid: () => child?.pid,
    kill: async () => {
      if (child !== undefined) await stopChild(child, 'SIGKILL')
    },
    restart: async () => {
      if (child !== undefined) await stopChild(child, 'SIGKILL')
      await launch()
    },
    stop: async () => {
      if (child !== undefined) await stopChild(child, 'SIGTERM', 5_000)
      await rm(dataDir, { recursive: true, force: true })
    }
  }
}
