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
import { pipe } from 'fp-ts/lib/function.js'
import * as O from 'fp-ts/lib/Option.js'
import type * as T from 'fp-ts/lib/Task.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import {
  attachmentEndpointId,
  DEFAULT_STATE_DIR,
  deleteNetwork,
  familyOf,
  getEndpoint,
  getNetwork,
  type ContainerId,
  type Env,
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
const lookup = (
  docker: DockerClient,
  section: DockerConf,
  command: Exclude<Command, 'VERSION'>
): TE.TaskEither<CniError, Lookup> => {
  const full = FULL_ID.test(section.network)
  return pipe(
    docker.inspectNetwork(section.network),
    TE.map((n): Lookup => ({ _tag: 'Known', id: n.Id })),
    TE.orElse((e): TE.TaskEither<CniError, Lookup> => {
      if (isNoSuch(e)) return TE.right(full ? { _tag: 'Gone', id: section.network } : { _tag: 'Gone' })
      return full && command === 'DEL' ? TE.right({ _tag: 'Known', id: section.network }) : TE.left(dockerToCni(e))
    })
  )
}

/**
 * The stored Docker-made network that holds this attachment, for a DEL whose network Docker no
 * longer knows by name: dockerd 20.10 removes its network even when the driver refuses because
 * CNI attachments remain (a driver error other than "forbidden" is only logged), so the record
 * and the attachment outlive Docker's name for them.
 */
const holderOf = (ctx: CommandContext): TE.TaskEither<CniError, NetworkId | undefined> =>
  withCore(ctx, ({ env }) =>
    pipe(
      env.store.networks.list(),
      TE.mapLeft(toCniError),
      TE.chain((networks) =>
        firstHolding(
          ctx,
          env,
          networks.filter((x) => FULL_ID.test(x.id)).map((n) => n.id)
        )
      )
    )
  )

// One network at a time, stopping at the first that holds the attachment.
const firstHolding = (
  ctx: CommandContext,
  env: Env,
  ids: ReadonlyArray<NetworkId>
): TE.TaskEither<CniError, NetworkId | undefined> => {
  const [id, ...rest] = ids
  if (id === undefined) return TE.right(undefined)
  const endpoint = attachmentEndpointId(id, ctx.args.containerId as ContainerId, ctx.args.ifName as IfName)
  return pipe(
    runFlow(env, getEndpoint(endpoint)),
    TE.chain((ep) => (O.isSome(ep) ? TE.right<CniError, NetworkId | undefined>(id) : firstHolding(ctx, env, rest)))
  )
}

/**
 * After a DEL on a network Docker no longer has: remove the network once its last attachment
 * is gone, as Docker's DeleteNetwork would have (its bridge, its firewall rules, its record).
 * Attachments that remain keep it; that is not this DEL's failure.
 *
 * @category utils
 */
export const dropIfEmpty = (ctx: CommandContext, id: NetworkId): T.Task<void> =>
  pipe(
    withCore(ctx, ({ env }) => runFlow(env, deleteNetwork(id))),
    TE.match(
      (e) => ctx.log.info('dockerNetwork: network kept after DEL', { networkId: id, reason: e.details ?? e.msg }),
      () => undefined
    )
  )

/** The stored network's subnets as one range set per family (the whole subnet, its gateway). */
const rangesOf = (n: Network): ReadonlyArray<ReadonlyArray<RangeConf>> =>
  [4, 6]
    .map((f) =>
      [...n.ipv4, ...n.ipv6]
        .filter((s) => familyOf(s.subnet) === f)
        .map((s): RangeConf => ({ subnet: s.subnet, ...(s.gateway === undefined ? {} : { gateway: s.gateway }) }))
    )
    .filter((set) => set.length > 0)

const notIsthmus = (ctx: CommandContext, id: NetworkId): CniError =>
  cniError(
    Code.InvalidConfig,
    'docker network is not an isthmus network here',
    `docker network ${ctx.netconf.conf.dockerNetwork?.network ?? id} (${id.slice(0, 12)}) is not in the state ` +
      `directory ${ctx.netconf.conf.stateDir ?? DEFAULT_STATE_DIR}: create it with the isthmus network and IPAM ` +
      "drivers, and give this netconf the daemon's stateDir"
  )

const storedNetwork = (ctx: CommandContext, id: NetworkId): TE.TaskEither<CniError, Network> =>
  withCore(ctx, ({ env }) =>
    pipe(runFlow(env, getNetwork(id)), TE.chainEitherK(E.fromOption(() => notIsthmus(ctx, id))))
  )

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
export const onDockerNetwork = (
  ctx: CommandContext,
  command: Exclude<Command, 'VERSION'>,
  docker: DockerClient,
  section: DockerConf
): TE.TaskEither<CniError, OnDockerNetwork | undefined> => {
  const bad = conflicts(ctx.netconf)
  if (bad.length > 0) {
    const remove = `dockerNetwork: the Docker network decides the subnets and addresses; remove ${bad.join(' and ')}`
    return TE.left(cniError(Code.InvalidConfig, 'invalid network config', remove))
  }
  return pipe(
    lookup(docker, section, command),
    TE.chain((found) =>
      found._tag === 'Gone' ? onGone(ctx, command, section, found.id) : onKnown(ctx, command, found.id)
    )
  )
}

const named = (ctx: CommandContext, id: string): NetConf => ({ ...ctx.netconf, name: id as NetworkId })

/** Docker has no such network: only a DEL has something to do, on the stored network that holds the attachment. */
const onGone = (
  ctx: CommandContext,
  command: Exclude<Command, 'VERSION'>,
  section: DockerConf,
  id: string | undefined
): TE.TaskEither<CniError, OnDockerNetwork | undefined> => {
  if (command === 'ADD' || command === 'CHECK') {
    return TE.left({ ...NO_SUCH_NETWORK, details: `no docker network ${section.network}` })
  }
  if (command !== 'DEL') return TE.right(undefined)
  return pipe(
    id === undefined ? holderOf(ctx) : TE.right(id as NetworkId),
    TE.map((held) => (held === undefined ? undefined : { netconf: named(ctx, held), dockerGone: true }))
  )
}

/** The netconf named by Docker's id; for ADD, with the stored network's subnets as its ranges. */
const onKnown = (
  ctx: CommandContext,
  command: Exclude<Command, 'VERSION'>,
  id: string
): TE.TaskEither<CniError, OnDockerNetwork> => {
  const nc = named(ctx, id)
  if (command !== 'ADD') return TE.right({ netconf: nc, dockerGone: false })
  return pipe(
    storedNetwork({ ...ctx, netconf: nc }, nc.name),
    TE.map((stored) => {
      const ranges = rangesOf(stored).map((set) => [...set])
      return { netconf: { ...nc, conf: { ...nc.conf, ipam: { ...nc.conf.ipam, ranges } } }, dockerGone: false }
    })
  )
}
