/**
 * Typed helpers over etcd's KV service: reads of a key or a prefix, and transactions built from
 * named comparisons, each through `Etcd.call` (deadline, errors).
 */
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type { ICompare, IRequestOp, ITxnResponse, IKeyValue } from 'etcd3'
import type { CoreError } from '@isthmus/core'
import type { Etcd } from './client.js'
import { rangeEnd } from './keys.js'

/** One key as read: its value and the revisions a later transaction compares. @category model */
export interface Kv {
  readonly key: string
  readonly value: Buffer
  readonly modRevision: string
  readonly createRevision: string
}

/** Keys read at one revision of the store. @category model */
export interface Snapshot {
  readonly revision: string
  readonly kvs: ReadonlyArray<Kv>
}

const kvOf = (kv: IKeyValue): Kv => ({
  key: kv.key.toString('utf8'),
  value: kv.value,
  modRevision: kv.mod_revision,
  createRevision: kv.create_revision
})

const b = (key: string): Buffer => Buffer.from(key, 'utf8')

// Keys per answer of a listing.
const PAGE = 1000

// -------------------------------------------------------------------------------------
// comparisons and operations of a transaction
// -------------------------------------------------------------------------------------

/** The key does not exist. @category utils */
export const absent = (key: string): ICompare => ({
  key: b(key),
  target: 'Create',
  result: 'Equal',
  create_revision: 0
})
/** The key exists. @category utils */
export const present = (key: string): ICompare => ({
  key: b(key),
  target: 'Create',
  result: 'Greater',
  create_revision: 0
})
/** The key is as it was read (not changed, deleted or made again since). @category utils */
export const unchanged = (kv: Kv): ICompare => ({
  key: b(kv.key),
  target: 'Mod',
  result: 'Equal',
  mod_revision: kv.modRevision
})
/** The key holds exactly these bytes. @category utils */
export const holds = (key: string, value: Buffer): ICompare => ({
  key: b(key),
  target: 'Value',
  result: 'Equal',
  value
})
/** No key starts with `prefix`. @category utils */
export const noneUnder = (prefix: string): ICompare => ({
  key: b(prefix),
  range_end: rangeEnd(b(prefix)),
  target: 'Create',
  result: 'Equal',
  create_revision: 0
})
/** No key under `prefix` was written after `revision`. @category utils */
export const quietSince = (prefix: string, revision: string): ICompare => ({
  key: b(prefix),
  range_end: rangeEnd(b(prefix)),
  target: 'Mod',
  result: 'Less',
  mod_revision: (BigInt(revision) + 1n).toString()
})

/** @category utils */
export const putOp = (key: string, value: Buffer, lease?: string): IRequestOp => ({
  request_put: { key: b(key), value, ...(lease === undefined ? {} : { lease }) }
})
/** @category utils */
export const deleteOp = (key: string): IRequestOp => ({ request_delete_range: { key: b(key) } })
/** @category utils */
export const getOp = (key: string): IRequestOp => ({ request_range: { key: b(key) } })
/** Every key under `prefix`, read inside a transaction. @category utils */
export const listOp = (prefix: string): IRequestOp => ({
  request_range: { key: b(prefix), range_end: rangeEnd(b(prefix)) }
})

/** The keys a `getOp` of a transaction's answer found, by the op's index. @category utils */
export const rangeAnswer = (res: ITxnResponse, index: number): ReadonlyArray<Kv> =>
  (res.responses[index]?.response_range?.kvs ?? []).map(kvOf)

// -------------------------------------------------------------------------------------
// calls
// -------------------------------------------------------------------------------------

/** @category model */
export interface KvOps {
  readonly get: (op: string, key: string) => TE.TaskEither<CoreError, O.Option<Kv>>
  /** Every key under `prefix`, at one revision. */
  readonly list: (op: string, prefix: string) => TE.TaskEither<CoreError, Snapshot>
  /** Whether a key exists under `prefix` (ping: a read etcd must answer, within the user's rights). */
  readonly count: (op: string, prefix: string) => TE.TaskEither<CoreError, number>
  /** Write `key`; with `lease`, the key lives only as long as that etcd lease. */
  readonly put: (op: string, key: string, value: Buffer, lease?: string) => TE.TaskEither<CoreError, void>
  readonly remove: (op: string, key: string) => TE.TaskEither<CoreError, void>
  readonly txn: (
    op: string,
    compare: ReadonlyArray<ICompare>,
    success: ReadonlyArray<IRequestOp>,
    failure?: ReadonlyArray<IRequestOp>
  ) => TE.TaskEither<CoreError, ITxnResponse>
}

/** @category constructors */
export const kvOps = (etcd: Etcd): KvOps => {
  const kv = etcd.client.kv
  return {
    get: (op, key) =>
      pipe(
        etcd.call(op, (o) => kv.range({ key: b(key) }, o)),
        TE.map((res) => O.map(kvOf)(O.fromNullable(res.kvs[0])))
      ),
    // In pages, all at the revision of the first: one consistent snapshot, and no answer larger
    // than gRPC takes (4 MiB) whatever the number of keys.
    list: (op, prefix) => {
      const end = rangeEnd(b(prefix))
      const page = (
        from: Buffer,
        revision: string | undefined,
        got: ReadonlyArray<Kv>
      ): TE.TaskEither<CoreError, Snapshot> =>
        pipe(
          etcd.call(op, (o) =>
            kv.range({ key: from, range_end: end, limit: PAGE, ...(revision === undefined ? {} : { revision }) }, o)
          ),
          TE.chain((res) => {
            const at = revision ?? res.header.revision
            const all = [...got, ...res.kvs.map(kvOf)]
            const last = res.kvs[res.kvs.length - 1]
            return res.more && last !== undefined
              ? page(Buffer.concat([last.key, Buffer.from([0])]), at, all)
              : TE.right({ revision: at, kvs: all })
          })
        )
      return page(b(prefix), undefined, [])
    },
    count: (op, prefix) =>
      pipe(
        etcd.call(op, (o) =>
          kv.range({ key: b(prefix), range_end: rangeEnd(b(prefix)), count_only: true, limit: 1 }, o)
        ),
        TE.map((res) => Number(res.count))
      ),
    put: (op, key, value, lease) =>
      pipe(
        etcd.call(op, (o) => kv.put({ key: b(key), value, ...(lease === undefined ? {} : { lease }) }, o)),
        TE.map(() => undefined)
      ),
    remove: (op, key) =>
      pipe(
        etcd.call(op, (o) => kv.deleteRange({ key: b(key) }, o)),
        TE.map(() => undefined)
      ),
    txn: (op, compare, success, failure = []) =>
      etcd.call(op, (o) => kv.txn({ compare: [...compare], success: [...success], failure: [...failure] }, o))
  }
}
