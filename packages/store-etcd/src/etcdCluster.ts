/**
 * The Cluster port on etcd v3: what the hosts of one cluster share, under one prefix
 * (README.md, "Key layout"). Every change that must be atomic is one transaction:
 * - `define` puts the network and its VXLAN id only if no network was written since the networks
 *   were read (so no overlapping subnet slipped in) and the id's key is absent;
 * - `claim` puts a block only if its key is absent and its network exists;
 * - `remove` deletes a network and its id only if it has no block; `release` deletes a block only
 *   if it is still the one read (held by that host).
 */
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import {
  Block,
  ClusterNetwork,
  alreadyExists,
  notFound,
  overlaps,
  silentLogger,
  transient,
  type Cluster,
  type CoreError,
  type Logger
} from '@isthmus/core'
import { connect, type Etcd } from './client.js'
import {
  BLOCK,
  HOST,
  NETWORK,
  VniOwner,
  blockObject,
  networkObject,
  recordReader,
  viewOf,
  type Reader
} from './clusterRecords.js'
import { decode, encode, storable } from './envelope.js'
import { clusterKeys, type ClusterKeys } from './keys.js'
import {
  absent,
  deleteOp,
  getOp,
  kvOps,
  noneUnder,
  present,
  putOp,
  quietSince,
  rangeAnswer,
  unchanged,
  type Kv,
  type KvOps
} from './kv.js'
import { register, type Registration } from './registration.js'
import { resolveSettings, type EtcdOptions } from './settings.js'
import { watchCluster } from './watch.js'

// How often a change retries after another change came first (a bound on a livelock).
const RETRIES = 16

/**
 * Open the Cluster on etcd. As `etcdStore`: nothing is asked of etcd until the first call.
 *
 * @category constructors
 */
export const etcdCluster = (options: EtcdOptions): TE.TaskEither<CoreError, Cluster> => {
  const { log, ...settings } = options
  return pipe(
    TE.fromEither(resolveSettings(settings)),
    TE.chain(connect),
    TE.map((etcd) => build(etcd, clusterKeys(etcd.settings.prefix), log ?? silentLogger))
  )
}

const build = (etcd: Etcd, keys: ClusterKeys, log: Logger): Cluster => {
  const kv = kvOps(etcd)
  const read = recordReader(keys, log)
  const registrations = new Set<Registration>()
  const watches = new Set<{ close: () => Promise<void> }>()
  const busy = (what: string) => transient(`${what} kept changing while being changed; try again`)

  return {
    hosts: {
      register: (host, ttlSeconds) =>
        pipe(
          register({ etcd, kv, keys, log }, host, ttlSeconds),
          TE.map((r) => {
            registrations.add(r)
            return {
              close: () => {
                registrations.delete(r)
                return r.close()
              }
            }
          })
        ),
      list: () =>
        pipe(
          kv.list('reading the hosts', keys.hosts),
          TE.map((snap) => read(HOST, snap.kvs))
        )
    },
    networks: {
      define: (network) => define(kv, keys, read, network),
      get: (name) =>
        pipe(
          kv.get(`reading ${networkObject(name)}`, keys.network(name)),
          TE.map(O.chain((k) => O.fromNullable(read(NETWORK, [k])[0])))
        ),
      list: () =>
        pipe(
          kv.list('reading the cluster networks', keys.networks),
          TE.map((snap) => read(NETWORK, snap.kvs))
        ),
      remove: (name) => {
        const attempt = (n: number): TE.TaskEither<CoreError, boolean> =>
          pipe(
            kv.get(`reading ${networkObject(name)}`, keys.network(name)),
            TE.chain(
              O.match(
                () => TE.right(true),
                (k) => {
                  const stored = read(NETWORK, [k])[0]
                  return pipe(
                    kv.txn(
                      `removing ${networkObject(name)}`,
                      [unchanged(k), noneUnder(keys.blocksOf(name))],
                      // define wrote the id with the network; no other network can hold it meanwhile
                      [deleteOp(k.key), ...(stored === undefined ? [] : [deleteOp(keys.vni(stored.vni))])]
                    ),
                    TE.chain((res) =>
                      res.succeeded
                        ? TE.right(true)
                        : pipe(
                            kv.count(`reading the blocks of ${networkObject(name)}`, keys.blocksOf(name)),
                            TE.chain((blocks) =>
                              blocks > 0
                                ? TE.right(false)
                                : n >= RETRIES
                                  ? TE.left(busy(networkObject(name)))
                                  : attempt(n + 1)
                            )
                          )
                    )
                  )
                }
              )
            )
          )
        return attempt(1)
      }
    },
    blocks: {
      claim: (block) => {
        const what = blockObject(block.network, block.cidr)
        const key = keys.block(block.network, block.cidr)
        const network = keys.network(block.network)
        return pipe(
          TE.fromEither(storable(BLOCK.kind, Block)(what, block)),
          TE.chain((bytes) =>
            kv.txn(`claiming ${what}`, [absent(key), present(network)], [putOp(key, bytes)], [getOp(network)])
          ),
          TE.chain((res) =>
            res.succeeded
              ? TE.right(true)
              : rangeAnswer(res, 0).length === 0
                ? TE.left(notFound('network', networkObject(block.network)))
                : TE.right(false)
          )
        )
      },
      release: (network, cidr, host) => {
        const what = blockObject(network, cidr)
        const attempt = (n: number): TE.TaskEither<CoreError, void> =>
          pipe(
            kv.get(`reading ${what}`, keys.block(network, cidr)),
            TE.chain(
              O.match(
                () => TE.right(undefined),
                (k) => {
                  // Another host's block, or one that cannot be read (its holder unknown): left as it is.
                  if (read(BLOCK, [k])[0]?.host !== host) return TE.right(undefined)
                  return pipe(
                    kv.txn(`releasing ${what}`, [unchanged(k)], [deleteOp(k.key)]),
                    TE.chain((res) =>
                      res.succeeded ? TE.right(undefined) : n >= RETRIES ? TE.left(busy(what)) : attempt(n + 1)
                    )
                  )
                }
              )
            )
          )
        return attempt(1)
      },
      list: (network) =>
        pipe(
          kv.list(
            network === undefined ? 'reading the blocks' : `reading the blocks of ${networkObject(network)}`,
            network === undefined ? keys.blocks : keys.blocksOf(network)
          ),
          TE.map((snap) => read(BLOCK, snap.kvs))
        )
    },
    watch: (onView, onError) =>
      pipe(
        watchCluster({ etcd, kv, keys, viewOf: (revision, kvs) => viewOf(keys, read, revision, kvs) })(onView, onError),
        TE.map((w) => {
          watches.add(w)
          return {
            close: () => {
              watches.delete(w)
              return w.close()
            }
          }
        })
      ),
    ping: () =>
      pipe(
        kv.count('reading the cluster', keys.prefix),
        TE.map(() => undefined)
      ),
    // Registrations are let go, not revoked: as when the process dies, they expire after their TTL.
    close: async () => {
      for (const r of registrations) r.stop()
      registrations.clear()
      await Promise.all([...watches].map((w) => w.close()))
      watches.clear()
      etcd.close()
    }
  }
}

// Define a network: answer the stored one of its name, refuse a VXLAN id or a subnet another holds.
const define = (
  kv: KvOps,
  keys: ClusterKeys,
  read: Reader,
  network: ClusterNetwork
): TE.TaskEither<CoreError, ClusterNetwork> => {
  const what = networkObject(network.name)
  const vniKey = keys.vni(network.vni)
  const conflict = (others: ReadonlyArray<ClusterNetwork>): CoreError | undefined => {
    for (const other of others) {
      if (other.vni === network.vni) {
        return alreadyExists(
          'network',
          network.name,
          `VXLAN id ${network.vni} belongs to cluster network ${other.name}`
        )
      }
      if (overlaps(other.subnet, network.subnet)) {
        return alreadyExists(
          'network',
          network.name,
          `subnet ${network.subnet} overlaps cluster network ${other.name} (${other.subnet})`
        )
      }
    }
    return undefined
  }
  const owner = (found: ReadonlyArray<Kv>): string | undefined =>
    pipe(
      O.fromNullable(found[0]),
      O.chain((k) => O.fromEither(decode('vni', VniOwner)(`VXLAN id ${network.vni}`, k.value))),
      O.map((v) => v.network),
      O.getOrElse((): string | undefined => (found.length > 0 ? 'an unreadable record' : undefined))
    )

  const attempt = (bytes: Buffer, n: number): TE.TaskEither<CoreError, ClusterNetwork> =>
    pipe(
      kv.list('reading the cluster networks', keys.networks),
      TE.chain((snap) => {
        const all = read(NETWORK, snap.kvs)
        const stored = all.find((x) => x.name === network.name)
        if (stored !== undefined) return TE.right(stored)
        const refused = conflict(all)
        if (refused !== undefined) return TE.left(refused)
        const vni = encode('vni', VniOwner, { vni: network.vni, network: network.name })
        return pipe(
          kv.txn(
            `defining ${what}`,
            [quietSince(keys.networks, snap.revision), absent(vniKey)],
            [putOp(keys.network(network.name), bytes), putOp(vniKey, vni)],
            [getOp(vniKey)]
          ),
          TE.chain((res): TE.TaskEither<CoreError, ClusterNetwork> => {
            if (res.succeeded) return TE.fromEither(decode(NETWORK.kind, ClusterNetwork)(what, bytes))
            const holder = owner(rangeAnswer(res, 0))
            if (holder !== undefined && holder !== network.name) {
              return TE.left(
                alreadyExists('network', network.name, `VXLAN id ${network.vni} belongs to cluster network ${holder}`)
              )
            }
            return n >= RETRIES
              ? TE.left(transient(`${what} kept changing while being defined; try again`))
              : attempt(bytes, n + 1)
          })
        )
      })
    )

  return pipe(
    TE.fromEither(storable(NETWORK.kind, ClusterNetwork)(what, network)),
    TE.chain((bytes) => attempt(bytes, 1))
  )
}
