/**
 * A host's registration: its record under `hosts/<name>`, attached to an etcd lease of its own
 * that the etcd3 client keeps alive. The record goes when the registration is closed (the lease
 * is revoked) or when its process dies (the lease expires after its TTL). A registration whose
 * lease was lost while etcd could not be reached for longer than the TTL registers again, once a
 * second, until etcd answers: the host was only gone while it could not say it was alive.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type { Lease as EtcdLease } from 'etcd3'
import { describe, invalidConfig, type Closable, type CoreError, type HostRecord, type Logger } from '@isthmus/core'
import type { Etcd } from './client.js'
import { HOST } from './clusterRecords.js'
import { storable } from './envelope.js'
import type { ClusterKeys } from './keys.js'
import type { KvOps } from './kv.js'

/** How long a lost registration waits between attempts to register again. @category constants */
export const RENEW_EVERY_MS = 1_000

/** A registration as the cluster tracks it: `stop` lets it expire unrevoked (the cluster closes). @category model */
export interface Registration extends Closable {
  readonly stop: () => void
}

/** @category model */
export interface RegistrationSpec {
  readonly etcd: Etcd
  readonly kv: KvOps
  readonly keys: ClusterKeys
  readonly log: Logger
}

/** @category constructors */
export const register = (
  { etcd, kv, keys, log }: RegistrationSpec,
  host: HostRecord,
  ttlSeconds: number
): TE.TaskEither<CoreError, Registration> => {
  const key = keys.host(host.name)
  const what = `host ${host.name}`

  // One lease and the record under it; the lease is let go again if the record cannot be written.
  const attach = (bytes: Buffer, ttl: number): TE.TaskEither<CoreError, EtcdLease> => {
    const lease = etcd.client.lease(ttl)
    // A failed grant is reported through the call below; 'lost' must have a listener meanwhile.
    lease.on('lost', () => undefined)
    return pipe(
      etcd.call(`registering ${what}`, () => lease.grant()),
      TE.chain((id) => kv.put(`registering ${what}`, key, bytes, id)),
      TE.map(() => lease),
      TE.orElseFirst(() =>
        TE.fromIO(() => {
          lease.release()
        })
      )
    )
  }

  return pipe(
    Number.isFinite(ttlSeconds) && ttlSeconds >= 1
      ? TE.right(Math.ceil(ttlSeconds))
      : TE.left(invalidConfig(`the TTL of a host registration must be at least 1 second, got ${ttlSeconds}`)),
    TE.bindTo('ttl'),
    TE.bind('bytes', () => TE.fromEither(storable(HOST.kind, HOST.codec)(what, host))),
    TE.bind('first', ({ ttl, bytes }) => attach(bytes, ttl)),
    TE.map(({ ttl, bytes, first }): Registration => {
      let lease = first
      let stopped = false
      let timer: ReturnType<typeof setTimeout> | undefined

      const renew = (): void => {
        timer = undefined
        if (stopped) return
        void attach(bytes, ttl)().then((r) => {
          if (stopped) {
            if (E.isRight(r)) void r.right.revoke().catch(() => undefined)
            return
          }
          if (E.isLeft(r)) {
            timer = setTimeout(renew, RENEW_EVERY_MS)
            return
          }
          lease = r.right
          watchLoss(lease)
          log.info('registered the host again after losing its lease', { host: host.name })
        })
      }

      const watchLoss = (l: EtcdLease): void => {
        l.on('lost', (e: Error) => {
          if (stopped || l !== lease) return
          log.warn('the host registration lost its lease; registering again', {
            host: host.name,
            cause: describe(etcd.outage(e.message))
          })
          timer ??= setTimeout(renew, 0)
        })
      }
      watchLoss(first)

      const stop = (): void => {
        stopped = true
        if (timer !== undefined) clearTimeout(timer)
        lease.release()
      }
      return {
        stop,
        close: async () => {
          if (stopped) return
          stop()
          // Revoking deletes the record now; if etcd cannot be told, it expires after the TTL.
          await etcd.call(`unregistering ${what}`, () => lease.revoke())()
        }
      }
    })
  )
}
