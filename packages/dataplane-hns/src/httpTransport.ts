/**
 * An HnsTransport over HTTP: each HNSCall becomes a request with the HNS method and path (`POST
 * /networks/`, `DELETE /endpoints/<id>`) and the request JSON as body; the answer's body is the
 * HNS envelope. The HNS simulator server of `@isthmus/dataplane-hns/testing` speaks it; so could a
 * relay on a Windows host. TCP (`baseUrl`) or a unix socket (`socketPath`).
 */
import { request as httpRequest } from 'node:http'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { io } from '@isthmus/core'
import type { HnsMethod, HnsTransport } from './client.js'

/** @category model */
export type HttpHnsTransportOptions =
  | { readonly baseUrl: string; readonly timeoutMs?: number }
  | { readonly socketPath: string; readonly timeoutMs?: number }

// The promise edge: one HTTP exchange, resolved with the body of a 200 answer.
const exchange = (o: HttpHnsTransportOptions, method: HnsMethod, path: string, body: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const target =
      'socketPath' in o
        ? { socketPath: o.socketPath, path }
        : (() => {
            const u = new URL(path, o.baseUrl)
            return { host: u.hostname, port: u.port, path: u.pathname }
          })()
    const req = httpRequest(
      {
        ...target,
        method,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: o.timeoutMs ?? 60_000
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          if (res.statusCode === 200) resolve(text)
          else reject(new Error(`HTTP ${res.statusCode ?? '?'}: ${text.slice(0, 200)}`))
        })
      }
    )
    req.on('timeout', () => req.destroy(new Error(`no answer within ${o.timeoutMs ?? 60_000} ms`)))
    req.on('error', reject)
    req.end(body)
  })

/** @category constructors */
export const httpHnsTransport = (o: HttpHnsTransportOptions): HnsTransport => ({
  call: (method, path, request) =>
    TE.tryCatch(
      () => exchange(o, method, path, request),
      (e) => io(`HNSCall ${method} ${path}`, e)
    )
})
