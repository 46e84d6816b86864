/**
 * A real etcd (Debian's etcd-server) of a test's own: on a loopback port, or inside a network
 * namespace on an address there, with a fresh data directory; stopped by its PID, killed (SIGKILL)
 * and started again on the same data for outage tests. Never listens outside what the test made.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mustRun, run, stopChild, waitUntil } from './proc.js'

export const ETCD = '/usr/bin/etcd'

export interface EtcdOptions {
  /** Listen on this address (default 127.0.0.1); inside `netns` when given. */
  readonly host?: string
  /** Run inside this named network namespace (`ip netns exec`). */
  readonly netns?: string
  readonly clientPort?: number
  readonly peerPort?: number
  /** Serve clients over TLS (the endpoint is then `https://`); see `makeEtcdCerts`. */
  readonly tls?: EtcdTls
  /** More etcd flags, after the ones made here. */
  readonly extraArgs?: ReadonlyArray<string>
}

/** TLS of a test etcd's client port. */
export interface EtcdTls {
  /** The CA that signed the server's certificate (and, with `client`, the clients'). */
  readonly caFile: string
  readonly certFile: string
  readonly keyFile: string
  /** Require client certificates signed by `caFile`; this one is what the health check shows. */
  readonly client?: { readonly certFile: string; readonly keyFile: string }
}

/** Certificates of a test CA, made by `makeEtcdCerts`. */
export interface EtcdCerts {
  readonly dir: string
  readonly caFile: string
  /** The server's, for `host`. */
  readonly server: { readonly certFile: string; readonly keyFile: string }
  /** A client's, signed by the CA. */
  readonly client: { readonly certFile: string; readonly keyFile: string }
  /** A client's signed by another CA, which the server must refuse. */
  readonly stranger: { readonly certFile: string; readonly keyFile: string }
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

/**
 * A CA, a server certificate for `host` (an IP address) and client certificates, with openssl, in
 * `dir` (which the caller made and removes). EC keys: quick to make.
 */
export const makeEtcdCerts = async (dir: string, host = '127.0.0.1'): Promise<EtcdCerts> => {
  const p = (name: string) => join(dir, name)
  const ssl = (...args: string[]) => mustRun(['openssl', ...args], { timeoutMs: 30_000 })
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  const ca = async (name: string) =>
    ssl(
      'req',
      '-x509',
      ...key,
      '-keyout',
      p(`${name}.key`),
      '-out',
      p(`${name}.crt`),
      '-days',
      '2',
      '-subj',
      `/CN=${name}`
    )
  const leaf = async (name: string, signer: string, ext: string) => {
    await writeFile(p(`${name}.ext`), `${ext}\n`)
    await ssl('req', ...key, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${name}`)
    await ssl(
      'x509',
      '-req',
      '-in',
      p(`${name}.csr`),
      '-CA',
      p(`${signer}.crt`),
      '-CAkey',
      p(`${signer}.key`),
      '-CAcreateserial',
      '-out',
      p(`${name}.crt`),
      '-days',
      '2',
      '-extfile',
      p(`${name}.ext`)
    )
    return { certFile: p(`${name}.crt`), keyFile: p(`${name}.key`) }
  }
  await ca('test-ca')
  await ca('other-ca')
  return {
    dir,
    caFile: p('test-ca.crt'),
    server: await leaf('server', 'test-ca', `subjectAltName=IP:${host}\nextendedKeyUsage=serverAuth`),
    client: await leaf('client', 'test-ca', 'extendedKeyUsage=clientAuth'),
    stranger: await leaf('stranger', 'other-ca', 'extendedKeyUsage=clientAuth')
  }
}

const healthy = async (endpoint: string, netns: string | undefined, tls: EtcdTls | undefined): Promise<boolean> => {
  if (netns !== undefined || tls !== undefined) {
    // from inside the namespace (the test process may be outside it), with the TLS files
    const ctl = [
      'etcdctl',
      '--endpoints',
      endpoint,
      ...(tls === undefined ? [] : ['--cacert', tls.caFile]),
      ...(tls?.client === undefined ? [] : ['--cert', tls.client.certFile, '--key', tls.client.keyFile]),
      'endpoint',
      'health'
    ]
    const r = await run(netns === undefined ? ctl : ['ip', 'netns', 'exec', netns, ...ctl], {
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
  const endpoint = `${opts.tls === undefined ? 'http' : 'https'}://${host}:${clientPort}`
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
    'error',
    ...(opts.tls === undefined
      ? []
      : [
          '--cert-file',
          opts.tls.certFile,
          '--key-file',
          opts.tls.keyFile,
          ...(opts.tls.client === undefined ? [] : ['--client-cert-auth', '--trusted-ca-file', opts.tls.caFile])
        ]),
    ...(opts.extraArgs ?? [])
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
          return healthy(endpoint, opts.netns, opts.tls)
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
