/**
 * Where each thing lives under the state directory. The `v1` level lets a later layout sit beside
 * this one during an upgrade instead of rewriting it in place.
 *
 *   <stateDir>/v1/networks/<id>.json
 *   <stateDir>/v1/endpoints/<id>.json
 *   <stateDir>/v1/pools/<encoded pool id>.json
 *   <stateDir>/v1/leases/<space>/<encoded address>.json
 *   <stateDir>/v1/cursors/<encoded pool id>.json
 *   <stateDir>/v1/locks/<n-|a-><encoded name>.lock/      (directories: proper-lockfile)
 *   <stateDir>/v1/quarantine/<entry>.record  <entry>.json  (an unreadable record's bytes, and
 *                                                         what, when and why: quarantine.ts)
 *
 * Temporary files start with '.tmp-' (being written) or '.tomb-' (being removed); records never
 * start with '.', see names.ts.
 */
import { join } from 'node:path'
import { encodeName } from './names.js'

/** The layout version directory. @category constants */
export const LAYOUT_DIR = 'v1'

/** The suffix of every record file. @category constants */
export const RECORD_SUFFIX = '.json'

/** Prefixes of files that are never records. @category constants */
export const TEMP_PREFIX = '.tmp-'
/** @category constants */
export const TOMB_PREFIX = '.tomb-'

/** The directories of the record collections, by kind. @category model */
export type CollectionDir = 'networks' | 'endpoints' | 'pools'

/** Every path of one state directory. @category model */
export interface Layout {
  readonly root: string
  readonly collection: (dir: CollectionDir) => string
  readonly record: (dir: CollectionDir, key: string) => string
  readonly leaseSpaces: string
  readonly leaseDir: (space: string) => string
  readonly lease: (space: string, address: string) => string
  readonly cursors: string
  readonly cursor: (pool: string) => string
  readonly locks: string
  /** Where unreadable records are moved aside. */
  readonly quarantine: string
  /** The file a named lock guards; proper-lockfile makes `<file>.lock` beside it. */
  readonly namedLock: (name: string) => string
  readonly addressLock: (space: string, address: string) => string
}

/** @category constructors */
export const layout = (stateDir: string): Layout => {
  const root = join(stateDir, LAYOUT_DIR)
  const leaseSpaces = join(root, 'leases')
  const cursors = join(root, 'cursors')
  const locks = join(root, 'locks')
  const leaseDir = (space: string) => join(leaseSpaces, encodeName(space))
  return {
    root,
    collection: (dir) => join(root, dir),
    record: (dir, key) => join(root, dir, `${encodeName(key)}${RECORD_SUFFIX}`),
    leaseSpaces,
    leaseDir,
    lease: (space, address) => join(leaseDir(space), `${encodeName(address)}${RECORD_SUFFIX}`),
    cursors,
    cursor: (pool) => join(cursors, `${encodeName(pool)}${RECORD_SUFFIX}`),
    locks,
    quarantine: join(root, 'quarantine'),
    // Two prefixes keep caller-named locks and per-address locks apart whatever the names are;
    // an address space never holds '/', so "space/address" is unambiguous.
    namedLock: (name) => join(locks, `n-${encodeName(name)}`),
    addressLock: (space, address) => join(locks, `a-${encodeName(`${space}/${address}`)}`)
  }
}

/** Whether a directory entry is a record (not a temporary file, not a stray). @category utils */
export const isRecordName = (name: string): boolean => !name.startsWith('.') && name.endsWith(RECORD_SUFFIX)

/** Whether a directory entry is one of our temporary files. @category utils */
export const isTempName = (name: string): boolean => name.startsWith(TEMP_PREFIX) || name.startsWith(TOMB_PREFIX)
