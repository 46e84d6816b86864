/**
 * Locks across every process that uses the same prefix: the key `locks/<name>` created only if
 * absent, attached to this store's session lease (TTL `lockTtlSeconds`, kept alive by the etcd3
 * client while the process lives), holding a token of this holder. A holder that dies stops its
 * keep-alives, so etcd deletes its locks when the lease expires; a live holder deletes its key
 * only while the key still holds its token. In front of that, an in-process queue per name, so
 * one process's callers wait in turn instead of polling etcd against each other.
 *
 * Waiting polls (with jitter) and is bounded: after `lockTimeoutMs` the caller gets `Transient`.
 * A lock found gone at release (the lease expired during an outage longer than its TTL) fails a
 * task that succeeded with `Transient`: another process may have run under the same lock.
 */
import { randomBytes } from 'node:crypto'
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { EtcdLeaseInvalidError, type Lease as EtcdLease } from 'etcd3'
import { io, transient, type CoreError, type LockScope } from '@isthmus/core'
import type { Etcd } from './client.js'
import type { StoreKeys } from './keys.js'
import { absent, deleteOp, holds, putOp, type KvOps } from './kv.js'

/** @category model */
export interface Locks {
  readonly withLock: <A>(
    name: string,
    task: TE.TaskEither<CoreError, A>,
    scope?: LockScope
  ) => TE.TaskEither<CoreError, A>
  /** Release every lock held now (revoke the session lease) and refuse new ones. */
  readonly close: () => Promise<void>
}

interface Session {
  readonly id: string
  readonly lease: EtcdLease
  /** Given up: its locks are gone or going; the next lock takes a new session. */
  dead: boolean
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** @category constructors */
export const etcdLocks = (etcd: Etcd, kv: KvOps, keys: StoreKeys): Locks => {
  const { lockTtlSeconds, lockTimeoutMs } = etcd.settings
  const queues = new Map<string, Promise<void>>()
  const holder = randomBytes(8).toString('hex')
  let seq = 0
  let closed = false
  let session: Promise<E.Either<CoreError, Session>> | undefined

  // Stop keeping the session alive without revoking it: etcd deletes its locks after the TTL.
  const abandon = (s: Session): void => {
    s.dead = true
    s.lease.release()
  }

  const grant = async (): Promise<E.Either<CoreError, Session>> => {
    const lease = etcd.client.lease(lockTtlSeconds)
    const got = await etcd.call('granting the lease of a lock', () => lease.grant())()
    if (E.isLeft(got)) {
      lease.release()
      return got
    }
    const s: Session = { id: got.right, lease, dead: false }
    // Lost: the keep-alives failed for longer than the TTL. The locks under it are gone already.
    lease.on('lost', () => abandon(s))
    return E.right(s)
  }

  const sessionNow = (): TE.TaskEither<CoreError, Session> => () => {
    const pending = (session ??= grant())
    return pending.then((s) => {
      const usable = E.isRight(s) && !s.right.dead
      if (!usable && session === pending) session = undefined
      return E.isRight(s) && s.right.dead ? sessionNow()() : s
    })
  }

  // Take the lock under session `s`: `expired` when etcd no longer knows its lease.
  const take = (name: string, key: string, token: Buffer, s: Session) =>
    etcd.call(`taking lock "${name}"`, (o) =>
      etcd.client.kv.txn({ compare: [absent(key)], success: [putOp(key, token, s.id)], failure: [] }, o).then(
        (res) => (res.succeeded ? ('taken' as const) : ('busy' as const)),
        (e: unknown) => {
          if (e instanceof EtcdLeaseInvalidError) return 'expired' as const
          throw e
        }
      )
    )

  const acquire = (name: string, key: string, token: Buffer): TE.TaskEither<CoreError, Session> => {
    const until = Date.now() + lockTimeoutMs
    let pause = 5
    const attempt = (): TE.TaskEither<CoreError, Session> =>
      pipe(
        sessionNow(),
        TE.chain((s) =>
          pipe(
            take(name, key, token, s),
            TE.map((outcome) => [s, outcome] as const)
          )
        ),
        TE.chain(([s, outcome]) => {
          if (outcome === 'taken') return TE.right(s)
          // etcd let the session's lease go (an outage longer than its TTL): the next try starts a new one
          if (outcome === 'expired') abandon(s)
          if (closed) return TE.left(io(`lock "${name}"`, 'the store is closed'))
          if (outcome === 'expired' && Date.now() < until) return attempt()
          if (Date.now() >= until) {
            return TE.left(
              transient(
                `lock "${name}" is held by another process (waited ${lockTimeoutMs} ms; ` +
                  `a dead holder's lock expires after ${lockTtlSeconds} s)`
              )
            )
          }
          // Jitter keeps many short-lived CNI processes from retrying in step.
          const wait = Math.min(pause, Math.max(1, until - Date.now())) * (0.5 + Math.random())
          pause = Math.min(pause * 2, 100)
          return pipe(
            TE.fromTask(() => sleep(wait)),
            TE.chain(attempt)
          )
        })
      )
    return attempt()
  }

  const exclusive = async <A>(name: string, task: TE.TaskEither<CoreError, A>): Promise<E.Either<CoreError, A>> => {
    if (closed) return E.left(io(`lock "${name}"`, 'the store is closed'))
    const key = keys.lock(name)
    const token = Buffer.from(`${holder}/${seq++}`)
    const got = await acquire(name, key, token)()
    if (E.isLeft(got)) return got
    let out: E.Either<CoreError, A>
    try {
      out = await task()
    } catch (e) {
      // A TaskEither never rejects; this only keeps a broken task from leaking the lock.
      out = E.left(io(`task under lock "${name}"`, e))
    }
    const released = await kv.txn(`releasing lock "${name}"`, [holds(key, token)], [deleteOp(key)])()
    if (E.isLeft(released)) {
      // etcd cannot be told now: stop keeping the lock alive, so it expires by itself.
      abandon(got.right)
      return out
    }
    if (!released.right.succeeded && E.isRight(out)) {
      return E.left(
        transient(
          `lock "${name}" was lost while held (etcd was unreachable for longer than its ${lockTtlSeconds} s lease); ` +
            'another process may have run at the same time'
        )
      )
    }
    return out
  }

  return {
    withLock:
      (name, task, scope = 'host') =>
      () => {
        const before = queues.get(name) ?? Promise.resolve()
        const result = before.then(() =>
          scope === 'process'
            ? task().catch((e: unknown) => E.left<CoreError>(io(`task under lock "${name}"`, e)))
            : exclusive(name, task)
        )
        const tail = result.then(() => undefined)
        queues.set(name, tail)
        void tail.then(() => {
          if (queues.get(name) === tail) queues.delete(name)
        })
        return result
      },
    close: async () => {
      closed = true
      const pending = session
      session = undefined
      const s = pending === undefined ? undefined : await pending
      if (s !== undefined && E.isRight(s)) {
        // Revoking deletes every lock of the session at once; if etcd cannot be told, they expire.
        await etcd.call('revoking the lease of the locks', () => s.right.lease.revoke())()
        s.right.lease.release()
      }
    }
  }
}
