/**
 * The optional metrics listener (`isthmus serve --metrics-addr 127.0.0.1:9323`): `/metrics`
 * (Prometheus text), `/healthz` (liveness: the process answers) and `/readyz` (the store
 * answers its ping). A TCP port apart from the plugin socket, because the socket belongs to
 * dockerd and Prometheus scrapes TCP. It has no authentication, so it listens on loopback unless
 * the operator allows other hosts explicitly (`--metrics-allow-remote`).
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import * as E from 'fp-ts/lib/Either.js'
import express, { type Request, type Response } from 'express'
import type { Registry } from 'prom-client'
import { causeText, contains, describe, IpAddress, type Store, type Subnet } from '@isthmus/core'

/** Where the metrics listener listens. @category model */
export interface MetricsAddress {
  readonly host: string
  readonly port: number
}

const LOOPBACK_V4 = '127.0.0.0/8' as Subnet

const isLoopback = (host: string): boolean => {
  const a = IpAddress.decode(host)
  return E.isRight(a) && (a.right === '::1' || (!a.right.includes(':') && contains(LOOPBACK_V4, a.right)))
}

/**
 * `HOST:PORT` or `[V6]:PORT`, HOST an IP address or `localhost` (127.0.0.1); port 0 picks a free
 * one. HOST must be a loopback address (127.0.0.0/8, ::1) unless `allowRemote`: the listener has
 * no authentication, so serving other hosts (any other address, or 0.0.0.0 / [::] for all of
 * them) is the operator's explicit choice (`--metrics-allow-remote`). Left is the sentence to show.
 *
 * @category utils
 */
export const parseMetricsAddr = (
  text: string,
  { allowRemote = false }: { readonly allowRemote?: boolean } = {}
): E.Either<string, MetricsAddress> => {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text)
  const port = Number(m?.[3])
  if (m === null || !(port >= 0 && port <= 65535)) {
    return E.left(`--metrics-addr ${text}: expected HOST:PORT, such as 127.0.0.1:9323 or [::1]:9323`)
  }
  const named = m[1] ?? m[2] ?? ''
  const host = named === 'localhost' ? '127.0.0.1' : named
  if (isLoopback(host)) return E.right({ host, port })
  if (!E.isRight(IpAddress.decode(host)) && host !== '::') {
    return E.left(`--metrics-addr ${text}: ${named} is not an IP address (give one, such as 127.0.0.1 or 0.0.0.0)`)
  }
  return allowRemote
    ? E.right({ host, port })
    : E.left(
        `--metrics-addr ${text}: ${named} is not a loopback address; the metrics listener has no authentication, so it serves only 127.0.0.0/8 or [::1] unless --metrics-allow-remote is given`
      )
}

/** Whether the address is reachable from other hosts (a warning at start). @category utils */
export const isRemoteMetricsAddress = (at: MetricsAddress): boolean => !isLoopback(at.host)

/** @category model */
export interface MetricsServer {
  readonly server: Server
  /** The address it listens on, `host:port` with the port it got. */
  readonly address: string
  readonly close: () => Promise<void>
}

/** The metrics app: `/metrics`, `/healthz`, `/readyz`. @category constructors */
export const metricsApp = (registry: Registry, store: Pick<Store, 'ping'>): express.Express => {
  const app = express()
  app.disable('x-powered-by')
  app.get('/metrics', (_req: Request, res: Response) => {
    registry.metrics().then(
      (text) => res.status(200).type(registry.contentType).send(text),
      (e: unknown) =>
        res
          .status(500)
          .type('text/plain')
          .send(`${causeText(e)}\n`)
    )
  })
  app.get('/healthz', (_req: Request, res: Response) => {
    res.status(200).type('text/plain').send('ok\n')
  })
  app.get('/readyz', (_req: Request, res: Response) => {
    void store
      .ping()()
      .then((r) =>
        E.isRight(r)
          ? res.status(200).type('text/plain').send('ok\n')
          : res
              .status(503)
              .type('text/plain')
              .send(`store unavailable: ${describe(r.left)}\n`)
      )
  })
  app.use((req: Request, res: Response) => {
    res.status(404).type('text/plain').send(`${req.method} ${req.path}: not found (try /metrics, /healthz, /readyz)\n`)
  })
  return app
}

/** Listen with the metrics app. Rejects with the listen error (address in use, …). */
export const listenMetrics = async (
  at: MetricsAddress,
  registry: Registry,
  store: Pick<Store, 'ping'>
): Promise<MetricsServer> => {
  const app = metricsApp(registry, store)
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(at.port, at.host)
    s.once('listening', () => resolve(s))
    s.once('error', reject)
  })
  const bound = server.address() as AddressInfo
  return {
    server,
    address: bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeIdleConnections()
      })
  }
}
