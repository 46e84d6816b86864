/**
 * The values of a cluster's keys: hosts, cluster networks, their VXLAN ids and blocks, each in
 * its envelope, and how a set of keys read at one revision becomes a `ClusterView`. A value that
 * does not decode (or sits under another record's key) is left out and logged once; it is never
 * moved: a block's key keeps its range taken whatever its value, and the cluster's records belong
 * to every host, so no single reader decides to set them aside.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as t from 'io-ts'
import { Block, ClusterNetwork, ClusterNetworkName, HostRecord, type ClusterView, type Logger } from '@isthmus/core'
import { decode, reasonOf, type ValueKind } from './envelope.js'
import type { ClusterKeys } from './keys.js'
import type { Kv } from './kv.js'

/** Which cluster network holds a VXLAN id. @category codecs */
export const VniOwner = t.type({ vni: t.number, network: ClusterNetworkName }, 'VniOwner')
/** @category model */
export type VniOwner = t.TypeOf<typeof VniOwner>

/** How errors name cluster records. @category utils */
export const hostObject = (name: string): string => `host ${name}`
/** @category utils */
export const networkObject = (name: string): string => `cluster network ${name}`
/** @category utils */
export const blockObject = (network: string, cidr: string): string => `block ${cidr} of cluster network ${network}`

/** A kind of cluster record: its codec, its key, and its name in words. @category model */
export interface RecordType<A> {
  readonly kind: ValueKind
  readonly codec: t.Type<A, unknown>
  readonly keyOf: (keys: ClusterKeys, a: A) => string
  readonly object: (a: A) => string
}

/** @category constants */
export const HOST: RecordType<HostRecord> = {
  kind: 'host',
  codec: HostRecord,
  keyOf: (keys, h) => keys.host(h.name),
  object: (h) => hostObject(h.name)
}
/** @category constants */
export const NETWORK: RecordType<ClusterNetwork> = {
  kind: 'cluster-network',
  codec: ClusterNetwork,
  keyOf: (keys, n) => keys.network(n.name),
  object: (n) => networkObject(n.name)
}
/** @category constants */
export const BLOCK: RecordType<Block> = {
  kind: 'block',
  codec: Block,
  keyOf: (keys, b) => keys.block(b.network, b.cidr),
  object: (b) => blockObject(b.network, b.cidr)
}

/** Decode the records of `kvs`, leaving out (and logging once) any that does not belong. @category model */
export type Reader = <A>(type: RecordType<A>, kvs: ReadonlyArray<Kv>) => ReadonlyArray<A>

// Values already reported, by key and revision: a watch rebuilds its view on every change.
const REPORTED_MAX = 1024

/** @category constructors */
export const recordReader = (keys: ClusterKeys, log: Logger): Reader => {
  const reported = new Set<string>()
  return <A>(type: RecordType<A>, kvs: ReadonlyArray<Kv>): ReadonlyArray<A> => {
    const out: A[] = []
    for (const k of kvs) {
      const judged = pipe(
        decode(type.kind, type.codec)(`the ${type.kind} record under ${k.key}`, k.value),
        E.mapLeft(reasonOf),
        E.chain((a) =>
          type.keyOf(keys, a) === k.key ? E.right(a) : E.left(`holds the ${type.object(a)}, not the record of this key`)
        )
      )
      if (E.isRight(judged)) {
        out.push(judged.right)
        continue
      }
      const seen = `${k.key}@${k.modRevision}`
      if (!reported.has(seen)) {
        if (reported.size >= REPORTED_MAX) reported.clear()
        reported.add(seen)
        log.warn('left out an unreadable cluster record', { key: k.key, reason: judged.left })
      }
    }
    return out
  }
}

/** The view of every key of the cluster at `revision`. @category utils */
export const viewOf = (keys: ClusterKeys, read: Reader, revision: string, kvs: ReadonlyArray<Kv>): ClusterView => {
  const under = (prefix: string) => kvs.filter((k) => k.key.startsWith(prefix))
  return {
    revision,
    hosts: read(HOST, under(keys.hosts)),
    networks: read(NETWORK, under(keys.networks)),
    blocks: read(BLOCK, under(keys.blocks))
  }
}
