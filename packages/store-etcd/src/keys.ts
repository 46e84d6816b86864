/**
 * The key layout (README.md, "Key layout"). Keys are strings under the settings' prefix; each
 * segment that may hold a `/` (a pool id, a CIDR) has `%` and `/` escaped, so
 * that one collection's prefix never matches another's keys.
 */

/** `%` and `/` escaped, everything else as it is (readable in `etcdctl get --prefix`). @category utils */
export const segment = (s: string): string => s.replace(/[%/]/g, (c) => (c === '%' ? '%25' : '%2F'))

/** A segment back to its text; undefined when it is not one `segment` made. @category utils */
export const unsegment = (s: string): string | undefined => {
  if (s.includes('/')) return undefined
  try {
    const text = decodeURIComponent(s)
    return segment(text) === s ? text : undefined
  } catch {
    return undefined
  }
}

/** The first key after every key that starts with `prefix`: the end of a prefix range. @category utils */
export const rangeEnd = (prefix: Buffer): Buffer => {
  const end = Buffer.from(prefix)
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1
      return end.subarray(0, i + 1)
    }
  }
  return Buffer.from([0])
}

/** The collections of records of a host's Store. @category model */
export type RecordDir = 'networks' | 'endpoints' | 'pools'

/** Where a Store keeps each thing, under `prefix`. @category model */
export interface StoreKeys {
  readonly prefix: string
  readonly collection: (dir: RecordDir) => string
  readonly record: (dir: RecordDir, key: string) => string
  /** The leases of one address space: `leases/<space>/`. */
  readonly leaseSpace: (space: string) => string
  readonly lease: (space: string, address: string) => string
  readonly cursor: (pool: string) => string
  readonly lock: (name: string) => string
  readonly quarantine: string
  readonly quarantineEntry: (id: string) => string
}

/** @category constructors */
export const storeKeys = (prefix: string): StoreKeys => ({
  prefix,
  collection: (dir) => `${prefix}${dir}/`,
  record: (dir, key) => `${prefix}${dir}/${segment(key)}`,
  leaseSpace: (space) => `${prefix}leases/${segment(space)}/`,
  lease: (space, address) => `${prefix}leases/${segment(space)}/${segment(address)}`,
  cursor: (pool) => `${prefix}cursors/${segment(pool)}`,
  lock: (name) => `${prefix}locks/${segment(name)}`,
  quarantine: `${prefix}quarantine/`,
  quarantineEntry: (id) => `${prefix}quarantine/${id}`
})

/** Where a Cluster keeps each thing, under `prefix`. @category model */
export interface ClusterKeys {
  readonly prefix: string
  readonly hosts: string
  readonly host: (name: string) => string
  readonly networks: string
  readonly network: (name: string) => string
  readonly vni: (vni: number) => string
  readonly blocks: string
  readonly blocksOf: (network: string) => string
  readonly block: (network: string, cidr: string) => string
}

/** @category constructors */
export const clusterKeys = (prefix: string): ClusterKeys => ({
  prefix,
  hosts: `${prefix}hosts/`,
  host: (name) => `${prefix}hosts/${segment(name)}`,
  networks: `${prefix}networks/`,
  network: (name) => `${prefix}networks/${segment(name)}`,
  vni: (vni) => `${prefix}vnis/${vni}`,
  blocks: `${prefix}blocks/`,
  blocksOf: (network) => `${prefix}blocks/${segment(network)}/`,
  block: (network, cidr) => `${prefix}blocks/${segment(network)}/${segment(cidr)}`
})
