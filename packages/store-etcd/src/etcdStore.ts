/**
 * The Store port on etcd v3: a host's records, leases, cursors, locks and quarantine under one
 * prefix (README.md, "Key layout"), so several hosts, clusters or tests share one etcd.
 */
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import {
  Endpoint,
  Network,
  Pool,
  contains,
  quarantineHolder,
  silentLogger,
  type CoreError,
  type EndpointId,
  type NetworkId,
  type PoolId,
  type Store
} from '@isthmus/core'
import { connect, type Etcd } from './client.js'
import { etcdCollection } from './collection.js'
import { storeKeys, type StoreKeys } from './keys.js'
import { kvOps } from './kv.js'
import { etcdLeases } from './leases.js'
import { etcdLocks } from './locks.js'
import { etcdQuarantine } from './quarantine.js'
import { resolveSettings, type EtcdOptions } from './settings.js'

/**
 * Open a Store on etcd. Nothing is asked of etcd yet (a CNI call pays for no extra round trip):
 * bad settings fail here (`DecodeFailure`, `InvalidConfig`: TLS files that cannot be read), an
 * unreachable etcd fails the first call with `Transient` within the deadline.
 *
 * @category constructors
 */
export const etcdStore = (options: EtcdOptions): TE.TaskEither<CoreError, Store> =>
  pipe(
    TE.fromEither(resolveSettings(settingsOnly(options))),
    TE.chain(connect),
    TE.map((etcd) => build(etcd, storeKeys(etcd.settings.prefix), options.log ?? silentLogger))
  )

// The codec's fields only: the logger is not a setting.
const settingsOnly = ({ log: _log, ...settings }: EtcdOptions): unknown => settings

const build = (etcd: Etcd, keys: StoreKeys, log: NonNullable<EtcdOptions['log']>): Store => {
  const kv = kvOps(etcd)
  const quarantine = etcdQuarantine(kv, keys, log)
  const common = { kv, keys, quarantine }
  const pools = etcdCollection({ ...common, kind: 'pool', dir: 'pools', codec: Pool, keyOf: (p): PoolId => p.id })
  const leases = etcdLeases({
    ...common,
    poolOf: (space, address) =>
      pipe(
        pools.list(),
        TE.map((all) => O.fromNullable(all.find((p) => p.addressSpace === space && contains(p.subnet, address))?.id))
      )
  })
  const locks = etcdLocks(etcd, kv, keys)
  return {
    networks: etcdCollection({
      ...common,
      kind: 'network',
      dir: 'networks',
      codec: Network,
      keyOf: (n): NetworkId => n.id
    }),
    endpoints: etcdCollection({
      ...common,
      kind: 'endpoint',
      dir: 'endpoints',
      codec: Endpoint,
      keyOf: (e): EndpointId => e.id
    }),
    pools,
    leases,
    quarantine: quarantine.port((id, holds) => leases.release(holds.addressSpace, holds.address, quarantineHolder(id))),
    withLock: locks.withLock,
    // Usable: etcd answers a read of the prefix, with this user's rights, within the deadline.
    ping: () =>
      pipe(
        kv.count('reading the store', keys.prefix),
        TE.map(() => undefined)
      ),
    close: async () => {
      await locks.close()
      etcd.close()
    }
  }
}
