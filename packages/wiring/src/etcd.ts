/**
 * The etcd adapter, loaded when first used: only a cluster daemon (or `isthmus hosts`) talks to
 * etcd, and the etcd3 client reads its gRPC definitions from disk as it loads, which the CNI
 * executable (one bundled file, which never opens etcd) must not do at each start.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import { causeText, type CoreError } from '@isthmus/core'
import type * as StoreEtcd from '@isthmus/store-etcd'

/** The module @isthmus/store-etcd. @category model */
export type EtcdAdapter = typeof StoreEtcd

let loaded: Promise<EtcdAdapter> | undefined

/** @isthmus/store-etcd, imported once. @category utils */
export const loadEtcd = (): TE.TaskEither<CoreError, EtcdAdapter> =>
  TE.tryCatch(
    () => (loaded ??= import('@isthmus/store-etcd')),
    (e): CoreError => ({ _tag: 'Io', op: 'load the etcd adapter (@isthmus/store-etcd)', cause: causeText(e) })
  )
