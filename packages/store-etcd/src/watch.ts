/**
 * The cluster's watch: read every key of the cluster at one revision, send that view, then watch
 * the prefix from the next revision and send a fresh view after each batch of changes (changes
 * that arrive together give one view). Nothing is missed between the read and the watch.
 *
 * When the stream breaks (etcd down, a partition found by gRPC keep-alives, a compacted revision)
 * the outage is reported once through `onError`, and the watch reads everything again, with
 * backoff, until etcd answers: then a fresh full view, and a new stream from its revision.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type { IDuplexStream, IWatchRequest, IWatchResponse } from 'etcd3'
import { causeText, type Closable, type ClusterView, type CoreError } from '@isthmus/core'
import type { Etcd } from './client.js'
import type { ClusterKeys } from './keys.js'
import { rangeEnd } from './keys.js'
import type { Kv, KvOps, Snapshot } from './kv.js'

/** The first and the longest pause between two attempts to read the cluster again. @category constants */
export const RESYNC_BACKOFF_MS = { first: 200, most: 2_000 } as const

type Stream = IDuplexStream<IWatchRequest, IWatchResponse>

/** @category model */
export interface WatchSpec {
  readonly etcd: Etcd
  readonly kv: KvOps
  readonly keys: ClusterKeys
  readonly viewOf: (revision: string, kvs: ReadonlyArray<Kv>) => ClusterView
}

/** @category constructors */
export const watchCluster =
  ({ etcd, kv, keys, viewOf }: WatchSpec) =>
  (onView: (view: ClusterView) => void, onError: (e: CoreError) => void): TE.TaskEither<CoreError, Closable> => {
    const readAll = () => kv.list('reading the cluster', keys.prefix)
    return pipe(
      readAll(),
      TE.map((first) => {
        const entries = new Map<string, Kv>()
        let revision = '0'
        let closed = false
        let stream: Stream | undefined
        // Set while an outage is on: it is reported once, when it starts.
        let down = false
        let scheduled = false
        let retry: ReturnType<typeof setTimeout> | undefined
        let pause: number = RESYNC_BACKOFF_MS.first

        const send = (): void => {
          scheduled = false
          if (closed || down) return
          const kvs = [...entries.keys()].sort().map((k) => entries.get(k) as Kv)
          onView(viewOf(revision, kvs))
        }
        const schedule = (): void => {
          if (scheduled) return
          scheduled = true
          setImmediate(send)
        }

        const load = (snap: Snapshot): void => {
          entries.clear()
          for (const k of snap.kvs) entries.set(k.key, k)
          revision = snap.revision
        }

        const lost = (s: Stream, cause: string): void => {
          if (closed || s !== stream) return
          stream = undefined
          try {
            s.cancel()
          } catch {
            // already over
          }
          if (!down) {
            down = true
            onError(etcd.outage(`the watch of the cluster broke (${cause})`))
          }
          resyncLater()
        }

        const open = (from: string): void => {
          void etcd
            .call('watching the cluster', () => etcd.client.watchClient.watch())()
            .then((r) => {
              if (closed) {
                if (E.isRight(r)) r.right.cancel()
                return
              }
              if (E.isLeft(r)) {
                if (!down) {
                  down = true
                  onError(r.left)
                }
                resyncLater()
                return
              }
              const s = r.right
              stream = s
              s.on('data', (res: IWatchResponse) => {
                if (s !== stream) return
                if (res.canceled) {
                  lost(s, `etcd cancelled it: ${res.cancel_reason || `revision ${from} is compacted`}`)
                  return
                }
                if (res.events.length === 0) return
                for (const ev of res.events) {
                  const key = ev.kv.key.toString('utf8')
                  if (ev.type === 'Delete') {
                    entries.delete(key)
                  } else {
                    entries.set(key, {
                      key,
                      value: ev.kv.value,
                      modRevision: ev.kv.mod_revision,
                      createRevision: ev.kv.create_revision
                    })
                  }
                }
                revision = res.header.revision
                schedule()
              })
              s.on('error', (e: Error) => lost(s, causeText(e)))
              s.on('end', () => lost(s, 'etcd ended the stream'))
              const prefix = Buffer.from(keys.prefix, 'utf8')
              s.write({ create_request: { key: prefix, range_end: rangeEnd(prefix), start_revision: from } })
            })
        }

        const start = (snap: Snapshot): void => {
          load(snap)
          down = false
          pause = RESYNC_BACKOFF_MS.first
          schedule()
          open((BigInt(snap.revision) + 1n).toString())
        }

        const resync = (): void => {
          retry = undefined
          if (closed) return
          void readAll()().then((r) => {
            if (closed) return
            if (E.isLeft(r)) {
              if (!down) {
                down = true
                onError(r.left)
              }
              resyncLater()
              return
            }
            start(r.right)
          })
        }

        const resyncLater = (): void => {
          if (closed || retry !== undefined) return
          retry = setTimeout(resync, pause)
          pause = Math.min(pause * 2, RESYNC_BACKOFF_MS.most)
        }

        start(first)
        return {
          close: () => {
            closed = true
            if (retry !== undefined) clearTimeout(retry)
            const s = stream
            stream = undefined
            try {
              s?.cancel()
            } catch {
              // already over
            }
            return Promise.resolve()
          }
        }
      })
    )
  }
