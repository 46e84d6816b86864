/**
 * The file store: the Store port over a state directory, for one long-running daemon and many
 * short CNI processes at once. Opening creates the layout (layout.ts) and sweeps crash litter.
 */
import { isAbsolute, join } from 'node:path'
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import {
  DEFAULT_STATE_DIR,
  Endpoint,
  Network,
  Pool,
  contains,
  invalidConfig,
  quarantineHolder,
  silentLogger,
  type CoreError,
  type Logger,
  type EndpointId,
  type NetworkId,
  type PoolId,
  type Store
} from '@isthmus/core'
import { fileCollection, type CollectionSpec } from './collection.js'
import { mkdirp, readNames, removeFile, useSpares, writeTemp } from './fsio.js'
import { fileLeases } from './leases.js'
import { layout, type CollectionDir, type Layout } from './layout.js'
import { makeLocks } from './locks.js'
import { fileQuarantine } from './quarantine.js'
import { makeSpares } from './spares.js'
import { sweepDir, sweepLocks } from './sweep.js'

/** @category model */
export interface FileStoreOptions {
  /** Absolute path of the state directory; default `/var/lib/isthmus`. */
  readonly stateDir?: string
  /** A lock not refreshed for this long belongs to a dead process and is taken over (default 10 s, at least 2 s). */
  readonly lockStaleMs?: number
  /** How long `withLock`, `release` and `transfer` wait for a lock before `Transient` (default 15 s). */
  readonly lockTimeoutMs?: number
  /** Temp files older than this are crash litter and removed (default 60 s). */
  readonly tempMaxAgeMs?: number
  /** Sweep every directory when opening (default true); listing sweeps what it reads anyway. */
  readonly sweepOnOpen?: boolean
  /**
   * Empty files kept ready per directory written to (spares.ts), so that a record write or a lock
   * makes no file; for a long-running process (the daemon). Default 0: none.
   */
  readonly spareFiles?: number
  /**
   * Where the store says what it did on its own: each record it quarantined (one line each, with
   * its file), a record it could not quarantine. Default: nowhere.
   */
  readonly log?: Logger
}

/** The options with their defaults filled in. @category model */
export interface FileStoreSettings {
  readonly stateDir: string
  readonly lockStaleMs: number
  readonly lockTimeoutMs: number
  readonly tempMaxAgeMs: number
  readonly sweepOnOpen: boolean
  readonly spareFiles: number
  readonly log: Logger
}

const COLLECTIONS: ReadonlyArray<CollectionDir> = ['networks', 'endpoints', 'pools']

/** @category utils */
export const settingsOf = (o: FileStoreOptions = {}): TE.TaskEither<CoreError, FileStoreSettings> => {
  const s: FileStoreSettings = {
    stateDir: o.stateDir ?? DEFAULT_STATE_DIR,
    lockStaleMs: Math.max(o.lockStaleMs ?? 10_000, 2_000),
    lockTimeoutMs: o.lockTimeoutMs ?? 15_000,
    tempMaxAgeMs: o.tempMaxAgeMs ?? 60_000,
    sweepOnOpen: o.sweepOnOpen ?? true,
    spareFiles: Math.max(0, Math.floor(o.spareFiles ?? 0)),
    log: o.log ?? silentLogger
  }
  // A CNI plugin runs with whatever working directory the runtime had: a relative state directory
  // would name a different place in each caller.
  if (!isAbsolute(s.stateDir)) return TE.left(invalidConfig(`stateDir must be an absolute path, got "${s.stateDir}"`))
  if (!(s.lockTimeoutMs >= 0) || !(s.tempMaxAgeMs >= 0)) {
    return TE.left(invalidConfig('lockTimeoutMs and tempMaxAgeMs must be numbers of milliseconds, 0 or more'))
  }
  return TE.right(s)
}

// Every directory of the layout, with the words errors name it by.
const directories = (L: Layout): ReadonlyArray<readonly [string, string]> => [
  ['the state directory', L.root],
  ...COLLECTIONS.map((c) => [`the ${c}`, L.collection(c)] as const),
  ['the leases', L.leaseSpaces],
  ['the cursors', L.cursors],
  ['the lock directories', L.locks],
  ['the quarantine', L.quarantine]
]

// Every temp file and stale lock left by crashed processes, in every directory of the layout.
const sweep = (L: Layout, s: FileStoreSettings): TE.TaskEither<CoreError, void> =>
  pipe(
    readNames('the leases', L.leaseSpaces),
    TE.map((spaces) => [
      ...directories(L),
      ...spaces.filter((n) => !n.startsWith('.')).map((n) => ['the leases', join(L.leaseSpaces, n)] as const)
    ]),
    TE.chain(TE.traverseSeqArray(([what, dir]) => sweepDir(what, dir, s.tempMaxAgeMs))),
    TE.chain(() => sweepLocks(L.locks, Math.max(10 * s.lockStaleMs, 10 * 60_000)))
  )

/**
 * Open the store in `options.stateDir`, creating its directories. Fails with `Io` if the
 * directory cannot be created or is not a directory, `InvalidConfig` for bad options.
 *
 * @category constructors
 */
export const fileStore = (options: FileStoreOptions = {}): TE.TaskEither<CoreError, Store> =>
  pipe(
    settingsOf(options),
    TE.bindTo('s'),
    TE.let('L', ({ s }) => layout(s.stateDir)),
    TE.chainFirst(({ L }) =>
      TE.traverseSeqArray(([what, dir]: readonly [string, string]) => mkdirp(what, dir))(directories(L))
    ),
    TE.chainFirst(({ s, L }) => (s.sweepOnOpen ? sweep(L, s) : TE.right(undefined))),
    TE.map(({ s, L }) => build(s, L))
  )

const build = (s: FileStoreSettings, L: Layout): Store => {
  const locks = makeLocks({ staleMs: s.lockStaleMs, timeoutMs: s.lockTimeoutMs })
  // Spares young enough that no sweep with this store's settings takes them for litter.
  const spares = s.spareFiles > 0 ? makeSpares(L.root, s.spareFiles, s.tempMaxAgeMs / 3) : undefined
  const stopSpares = spares === undefined ? () => undefined : useSpares(spares)
  const quarantine = fileQuarantine(L.quarantine, s.log)
  const common = { tempMaxAgeMs: s.tempMaxAgeMs, quarantine }
  // One collection per directory of the layout, its records keyed by `keyOf`.
  const collection = <K extends string, A, Out>(
    kind: CollectionSpec<K, A, Out>['kind'],
    dir: CollectionDir,
    codec: CollectionSpec<K, A, Out>['codec'],
    keyOf: (a: A) => K
  ) => fileCollection({ ...common, kind, codec, keyOf, dir: L.collection(dir), pathOf: (key: K) => L.record(dir, key) })
  const pools = collection('pool', 'pools', Pool, (p): PoolId => p.id)
  const leases = fileLeases({
    layout: L,
    locks,
    ...common,
    poolOf: (space, address) =>
      pipe(
        pools.list(),
        TE.map((all) => O.fromNullable(all.find((p) => p.addressSpace === space && contains(p.subnet, address))?.id))
      )
  })
  return {
    networks: collection('network', 'networks', Network, (n): NetworkId => n.id),
    endpoints: collection('endpoint', 'endpoints', Endpoint, (e): EndpointId => e.id),
    pools,
    leases,
    quarantine: quarantine.port((id, holds) => leases.release(holds.addressSpace, holds.address, quarantineHolder(id))),
    withLock: (name, task, scope) => locks.withLock(L.namedLock(name), `"${name}"`, task, scope === 'process'),
    // Usable means: the directories are there, readable, and a file can be written in the root.
    ping: () =>
      pipe(
        TE.traverseSeqArray(([what, dir]: readonly [string, string]) => readNames(what, dir))(directories(L)),
        TE.chain(() => writeTemp('the state directory', L.root, 'ping\n', false)),
        TE.chain((temp) => removeFile('the state directory', temp))
      ),
    close: async () => {
      // The cursors set last, which wait for the call that set them to answer.
      await leases.flush()
      await locks.close()
      stopSpares()
      await spares?.close()
    }
  }
}
