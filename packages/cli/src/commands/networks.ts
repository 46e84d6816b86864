/**
 * `isthmus networks`: every network with its subnets, pools and how full they are, read from the
 * host's store itself (the state directory, or etcd with `--store etcd`; with or without a
 * running daemon). A table by default; with `--json`,
 * the document `/IpamDriver.Networks` answers, alone on stdout.
 */
import type { Argv } from 'yargs'
import { inspectNetworks, type NetworksView, type PoolUsage } from '@isthmus/core'
import { networksAnswer } from '@isthmus/cnm-server'
import { Inspect } from '@isthmus/cnm-server/protocol'
import { storeArgsOf, storeFlags, type StoreArgs } from './clusterOptions.js'
import { json, processOutput, queryStore, table, type Output } from './leases.js'

const usage = (p: PoolUsage): string => `${p.poolId} ${p.used}/${p.size}`

/** The readable form of a view. */
export const networksTable = (v: NetworksView): string => {
  const networks = table(
    ['NAME', 'ID', 'SUBNETS', 'GATEWAYS', 'BRIDGE', 'INTERNAL', 'MASQUERADE', 'ENDPOINTS', 'POOLS (used/size)'],
    v.networks.map((n) => [
      n.name,
      n.id.slice(0, 12),
      n.subnets.map((s) => s.subnet).join(',') || '-',
      n.subnets.flatMap((s) => (s.gateway === undefined ? [] : [s.gateway])).join(',') || '-',
      n.bridge ?? '-',
      String(n.internal),
      String(n.ipMasquerade),
      String(n.endpoints),
      n.pools.map(usage).join(', ') || '-'
    ])
  )
  if (v.otherPools.length === 0) return networks
  const pools = table(
    ['POOL', 'SUBNET', 'GATEWAY', 'USED', 'SIZE', 'FREE'],
    v.otherPools.map((p) => [p.poolId, p.subnet, p.gateway ?? '-', String(p.used), String(p.size), String(p.free)])
  )
  return `${networks}\nPools of no isthmus network (another driver on isthmus IPAM):\n${pools}`
}

export interface NetworksArgs extends StoreArgs {
  readonly json: boolean
}

export const networks = (a: NetworksArgs, o: Output = processOutput): Promise<number> =>
  queryStore(
    a,
    inspectNetworks,
    (v) => o.out(a.json ? json(Inspect.NetworksResponse.encode(networksAnswer(v))) : networksTable(v)),
    o
  )

export const networksCommand = (y: Argv): Argv =>
  y.command(
    'networks',
    "List the networks with their subnets, pools and usage, from the host's store",
    (c) =>
      storeFlags(c).option('json', {
        type: 'boolean',
        default: false,
        describe: 'print the /IpamDriver.Networks JSON document instead of a table'
      }),
    async (a) => {
      process.exitCode = await networks({ ...storeArgsOf(a), json: a.json })
    }
  )
