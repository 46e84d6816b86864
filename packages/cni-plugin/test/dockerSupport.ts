/**
 * Test support of the Docker-mode tests: what the state directory shared by `isthmus serve` and
 * the CNI plugin holds, read from its files (store-fs layout v1).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

interface LeaseFile {
  readonly data?: { readonly address?: string; readonly owner?: { readonly kind?: string } }
}

/** The addresses held in `stateDir` under a /24 `a.b.c` (or everywhere), the pools' own gateway leases left out. */
export const leasesIn = async (stateDir: string, subnet24?: string): Promise<string[]> => {
  const dir = join(stateDir, 'v1', 'leases')
  if (!existsSync(dir)) return []
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.json') && !f.split('/').some((p) => p.startsWith('.')))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as LeaseFile)
    .filter((l) => l.data?.owner?.kind !== 'gateway')
    .map((l) => l.data?.address ?? '')
    .filter((a) => subnet24 === undefined || a.startsWith(`${subnet24}.`))
    .sort()
}

/** The endpoint records in `stateDir`. */
export const endpointRecords = (stateDir: string): string[] => {
  const dir = join(stateDir, 'v1', 'endpoints')
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json') && !f.startsWith('.')) : []
}
