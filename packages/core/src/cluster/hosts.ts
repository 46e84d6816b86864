/**
 * The hosts of a cluster for an operator (`isthmus hosts`, `isthmus hosts rm`): who is registered,
 * who holds which blocks, and the removal of a host that is gone, whose blocks would otherwise stay
 * claimed for ever (a block is never taken back on a timeout: a host cut off from etcd may still
 * be serving its containers).
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { invalidConfig, type CoreError } from '../errors.js'
import type { IpAddress, MacAddress, Subnet } from '../model/Address.js'
import type { Block, HostName } from '../model/Cluster.js'
import type { Cluster } from '../ports/Cluster.js'

/** One host as `isthmus hosts` shows it. @category model */
export interface HostReport {
  readonly name: HostName
  /** Registered now (its daemon runs and reaches the cluster store). */
  readonly live: boolean
  /** From its registration: absent for a host that is gone but still holds blocks. */
  readonly underlay?: IpAddress
  readonly vtepMac?: MacAddress
  readonly since?: string
  readonly version?: string
  /** The blocks it holds, per cluster network. */
  readonly blocks: Readonly<Record<string, ReadonlyArray<Subnet>>>
}

/**
 * Every live host and every host holding blocks, by name.
 *
 * @category flows
 */
export const hostsReport = (cluster: Cluster): TE.TaskEither<CoreError, ReadonlyArray<HostReport>> =>
  pipe(
    TE.Do,
    TE.apS('hosts', cluster.hosts.list()),
    TE.apS('blocks', cluster.blocks.list()),
    TE.map(({ hosts, blocks }) => {
      const names = [...new Set<HostName>([...hosts.map((h) => h.name), ...blocks.map((b) => b.host)])].sort()
      return names.map((name): HostReport => {
        const reg = hosts.find((h) => h.name === name)
        const held: Record<string, Subnet[]> = {}
        for (const b of blocks.filter((x) => x.host === name)) (held[b.network] ??= []).push(b.cidr)
        for (const list of Object.values(held)) list.sort()
        return {
          name,
          live: reg !== undefined,
          ...(reg === undefined
            ? {}
            : {
                underlay: reg.underlay,
                vtepMac: reg.vtepMac,
                since: reg.since,
                ...(reg.version === undefined ? {} : { version: reg.version })
              }),
          blocks: held
        }
      })
    })
  )

/** @category model */
export interface RemoveHostOptions {
  /** Remove a host that is registered now too (its daemon runs: its containers may clash). */
  readonly force: boolean
}

/**
 * Give back every block `name` holds, so that other hosts may claim them: for a host that is gone
 * for good. A live host is refused unless forced: its containers keep their addresses, which
 * another host could then hand out again. A host with no blocks succeeds with none.
 *
 * @category flows
 */
export const removeHost = (
  cluster: Cluster,
  name: HostName,
  options: RemoveHostOptions
): TE.TaskEither<CoreError, { readonly blocks: ReadonlyArray<Block> }> =>
  pipe(
    cluster.hosts.list(),
    TE.chain((hosts) => {
      const live = hosts.find((h) => h.name === name)
      return live === undefined || options.force
        ? TE.right(undefined)
        : TE.left(
            invalidConfig(
              `host ${name} is alive (registered since ${live.since}, underlay ${live.underlay}): stop isthmus there first, ` +
                `or force the removal, knowing that its containers' addresses may then be handed out again`
            )
          )
    }),
    TE.chain(() => cluster.blocks.list()),
    TE.map((blocks) => blocks.filter((b) => b.host === name)),
    TE.chainFirst((mine) =>
      pipe(
        mine,
        TE.traverseSeqArray((b) => cluster.blocks.release(b.network, b.cidr, name))
      )
    ),
    TE.map((blocks) => ({ blocks }))
  )
