/**
 * The `dockerNetwork` mode: isthmus itself attaches (veth in CNI_NETNS, as without the section)
 * into a network that Docker created with the isthmus network and IPAM drivers. The isthmus
 * daemon stored that network under Docker's NetworkID, with the pools Docker's RequestPool took
 * from isthmus's IPAM, so a CNI attachment on it shares the bridge and the pool with Docker's
 * containers and no address is handed out twice.
 *
 * The commands run unchanged on a netconf rewritten here: `name` becomes the Docker network's
 * id (a name is resolved through the Engine API) and, for ADD, `ipam.ranges` the stored
 * network's subnets, which makes the usual ADD find the stored network instead of making one.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import {
  attachmentEndpointId,
  DEFAULT_STATE_DIR,
  deleteNetwork,
  familyOf,
  getEndpoint,
  getNetwork,
  type ContainerId,
  type IfName,
  type Network,
  type NetworkId
} from '@isthmus/core'
import type { Command } from '../protocol/Env.js'
import { Code, cniError, type CniError } from '../protocol/Error.js'
import type { DockerConf, NetConf, RangeConf } from '../protocol/NetConf.js'
import { runFlow, withCore, type CommandContext } from '../commands/context.js'
import { toCniError } from '../translate.js'
import { isNoSuch, type DockerClient } from '@isthmus/core'
import { dockerToCni, NO_SUCH_NETWORK } from './errors.js'

const FULL_ID = /^[0-9a-f]{64}$/

/** What Docker says of the network: its id, or that it has none of that name or id. */
type Lookup = { readonly _tag: 'Known'; readonly id: string } | { readonly _tag: 'Gone'; readonly id?: string }

/**
 * The Docker network's id through `GET /networks/{name or id}`. A full id that Docker cannot be
 * asked about (dockerd down) is used as it is, so DEL works without dockerd.
 */
const lookup = async (docker: DockerClient, section: DockerConf, command: Exclude<Command, 'VERSION'>): Promise<E.Either<CniError, Lookup>> => {
  const full = FULL_ID.test(section.network)
  const n = await docker.inspectNetwork(section.network)()
  if (E.isRight(n)) return E.right({ _tag: 'Known', id: n.right.Id })
  if (isNoSuch(n.left)) return E.right(full ? { _tag: 'Gone', id: section.network } : { _tag: 'Gone' })
  return full && command === 'DEL' ? E.right({ _tag: 'Known', id: section.network }) : E.left(dockerToCni(n.left))
}

/**
 * The stored Docker-made network that holds this attachment, for a DEL whose network Docker no
 * longer knows by name: dockerd 20.10 removes its network even when the driver refuses because
 * CNI attachments remain (a driver error other than "forbidden" is only logged), so the record
 * and the attachment outlive Docker's name for them.
 */
const holderOf = (ctx: CommandContext): Promise<E.Either<CniError, NetworkId | undefined>> =>
  withCore(ctx, async ({ env }) => {
    const networks = await env.store.networks.list()()
    if (E.isLeft(networks)) return E.left(toCniError(networks.left))
    for (const n of networks.right.filter((x) => FULL_ID.test(x.id))) {
      const ep = await runFlow(env, getEndpoint(attachmentEndpointId(n.id, ctx.args.containerId as ContainerId, ctx.args.ifName as IfName)))
      if (E.isLeft(ep)) return ep
      if (O.isSome(ep.right)) return E.right(n.id)
    }
    return E.right(undefined)
  })

/**
 * After a DEL on a network Docker no longer has: remove the network once its last attachment
 * is gone, as Docker's DeleteNetwork would have (its bridge, its firewall rules, its record).
 * Attachments that remain keep it; that is not this DEL's failure.
 *
 * @category utils
 */
export const dropIfEmpty = async (ctx: CommandContext, id: NetworkId): Promise<void> => {
  const r = await withCore(ctx, async ({ env }) => runFlow(env, deleteNetwork(id)))
  if (E.isLeft(r)) ctx.log.info('dockerNetwork: network kept after DEL', { networkId: id, reason: r.left.details ?? r.left.msg })
}

/** The stored network's subnets as one range set per family (the whole subnet, its gateway). */
const rangesOf = (n: Network): ReadonlyArray<ReadonlyArray<RangeConf>> =>
  [4, 6]
    .map((f) =>
      [...n.ipv4, ...n.ipv6]
        .filter((s) => familyOf(s.subnet) === f)
        .map((s): RangeConf => ({ subnet: s.subnet, ...(s.gateway === undefined ? {} : { gateway: s.gateway }) }))
    )
    .filter((set) => set.length > 0)

const storedNetwork = (ctx: CommandContext, id: NetworkId): Promise<E.Either<CniError, Network>> =>
  withCore(ctx, async ({ env }) => {
    const n = await runFlow(env, getNetwork(id))
    if (E.isLeft(n)) return n
    return O.isSome(n.right)
      ? E.right(n.right.value)
      : E.left(
          cniError(
            Code.InvalidConfig,
            'docker network is not an isthmus network here',
            `docker network ${ctx.netconf.conf.dockerNetwork?.network ?? id} (${id.slice(0, 12)}) is not in the state directory ${ctx.netconf.conf.stateDir ?? DEFAULT_STATE_DIR}: create it with the isthmus network and IPAM drivers, and give this netconf the daemon's stateDir`
          )
        )
  })

/** Keys the Docker network decides, refused rather than ignored. */
const conflicts = (nc: NetConf): ReadonlyArray<string> => {
  const { conf } = nc
  return [
    ...(conf.ipam?.ranges === undefined ? [] : ['ipam.ranges']),
    ...(conf.ipam?.exclude === undefined ? [] : ['ipam.exclude']),
    ...(conf.ipam?.type === undefined ? [] : ['ipam.type']),
    ...(conf.contrail === undefined ? [] : ['contrail'])
  ]
}

/** The netconf to run the command with, and whether Docker has dropped the network. @category model */
export interface OnDockerNetwork {
  readonly netconf: NetConf
  readonly dockerGone: boolean
}

/**
 * The netconf the commands run with, or `undefined` when there is nothing to do: DEL, CHECK or
 * GC on a network Docker no longer has that holds no attachment of this container.
 *
 * @category utils
 */
export const onDockerNetwork = async (
  ctx: CommandContext,
  command: Exclude<Command, 'VERSION'>,
  docker: DockerClient,
  section: DockerConf
): Promise<E.Either<CniError, OnDockerNetwork | undefined>> => {
  const bad = conflicts(ctx.netconf)
  if (bad.length > 0) {
    return E.left(cniError(Code.InvalidConfig, 'invalid network config', `dockerNetwork: the Docker network decides the subnets and addresses; remove ${bad.join(' and ')}`))
  }
  const found = await lookup(docker, section, command)
  if (E.isLeft(found)) return found
  const named = (id: string): NetConf => ({ ...ctx.netconf, name: id as NetworkId })
  if (found.right._tag === 'Gone') {
    if (command === 'ADD' || command === 'CHECK') return E.left({ ...NO_SUCH_NETWORK, details: `no docker network ${section.network}` })
    if (command !== 'DEL') return E.right(undefined)
    const id = found.right.id === undefined ? await holderOf(ctx) : E.right(found.right.id as NetworkId)
    if (E.isLeft(id)) return id
    return E.right(id.right === undefined ? undefined : { netconf: named(id.right), dockerGone: true })
  }
  const nc = named(found.right.id)
  if (command !== 'ADD') return E.right({ netconf: nc, dockerGone: false })
  const stored = await storedNetwork({ ...ctx, netconf: nc }, nc.name)
  if (E.isLeft(stored)) return stored
  return E.right({ netconf: { ...nc, conf: { ...nc.conf, ipam: { ...nc.conf.ipam, ranges: rangesOf(stored.right).map((set) => [...set]) } } }, dockerGone: false })
}
