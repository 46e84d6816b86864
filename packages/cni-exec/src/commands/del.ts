/**
 * DEL (CNI SPEC §DEL): undo ADD; succeeds when things are already gone, when CNI_NETNS is empty or
 * names a deleted namespace, and when repeated. Core flows: leave, deleteEndpoint (NotFound is
 * success there). The address goes back to the pool whatever state the links are in.
 *
 * An attachment with no record on a network bound to a controller may still have controller
 * objects: an ADD killed between its controller step and its record (the runtime sends DEL after
 * every failed ADD). They are found by the names ADD gives them and deleted.
 */
import { pipe } from 'fp-ts/lib/function.js'
import * as O from 'fp-ts/lib/Option.js'
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import {
  attachmentEndpointId,
  deleteEndpoint,
  getEndpoint,
  getNetwork,
  hostIfName,
  leave,
  lockedEndpoint,
  peerIfName,
  type ContainerId,
  type Endpoint,
  type EndpointId,
  type Env,
  type IfName,
  type Network
} from '@isthmus/core'
import type { CniError } from '../protocol/Error.js'
import { recordOnlyDataplane } from '../recordOnly.js'
import { isIpamCall, toCniError } from '../translate.js'
import { forwardToDelegate, runFlow, withCore, type CommandContext, type CommandTask } from './context.js'

/** @category commands */
export const del = (ctx: CommandContext): CommandTask => {
  const ipamCall = isIpamCall(ctx.netconf.conf, ctx.runtime.selfNames)
  const id = attachmentEndpointId(ctx.netconf.name, ctx.args.containerId as ContainerId, ctx.args.ifName as IfName)
  return pipe(
    withCore(ctx, (session) => {
      const env: Env = ipamCall ? { ...session.env, dataplane: recordOnlyDataplane } : session.env
      return pipe(
        runFlow(env, getEndpoint(id)),
        TE.chain(
          O.match(
            () => sweepController(ctx, env, id),
            (found) =>
              // Left and deleted under one hold of the endpoint's lock (the flows take it once, not each).
              runFlow(
                env,
                pipe(
                  leave(id),
                  RTE.chain(() => deleteEndpoint(id)),
                  lockedEndpoint(id, found.owner.kind)
                )
              )
          )
        )
      )
    }),
    TE.chain(() => forwardToDelegate(ctx, 'DEL')),
    TE.map(() => undefined)
  )
}

/**
 * No record: on a controller network, ask the control plane to delete the endpoint's objects
 * with no ids known, which makes it look them up by name (404 everywhere is success). The agent
 * heard of nothing: its port is posted only after the record is stored.
 */
const sweepController = (ctx: CommandContext, env: Env, id: EndpointId): TE.TaskEither<CniError, void> =>
  pipe(
    runFlow(env, getNetwork(ctx.netconf.name)),
    TE.chain((network) =>
      O.isNone(network) || network.value.controller === undefined
        ? TE.right(undefined)
        : pipe(
            env.controlPlane.deleteEndpoint(network.value, unrecorded(ctx, network.value, id)),
            TE.mapLeft(toCniError)
          )
    )
  )

/** The endpoint ADD would have recorded, with the names it derives and no ids. */
const unrecorded = (ctx: CommandContext, n: Network, id: EndpointId): Endpoint => ({
  id,
  networkId: n.id,
  owner: { kind: 'container', containerId: ctx.args.containerId as ContainerId, ifName: ctx.args.ifName as IfName },
  addresses: [],
  hostIfName: hostIfName(id),
  peerIfName: peerIfName(id),
  routes: [],
  portMappings: [],
  createdAt: new Date(0).toISOString()
})
