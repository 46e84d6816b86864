/**
 * DEL (CNI SPEC §DEL): undo ADD; succeeds when things are already gone, when CNI_NETNS is empty or
 * names a deleted namespace, and when repeated. Core flows: leave, deleteEndpoint (NotFound is
 * success there). The address goes back to the pool whatever state the links are in.
 *
 * An attachment with no record on a network bound to a controller may still have controller
 * objects: an ADD killed between its controller step and its record (the runtime sends DEL after
 * every failed ADD). They are found by the names ADD gives them and deleted.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import {
  attachmentEndpointId,
  deleteEndpoint,
  getEndpoint,
  getNetwork,
  hostIfName,
  leave,
  peerIfName,
  type ContainerId,
  type Endpoint,
  type EndpointId,
  type Env,
  type IfName
} from '@isthmus/core'
import type { CniError } from '../protocol/Error.js'
import { recordOnlyDataplane } from '../recordOnly.js'
import { ipamModeOf, isIpamCall, toCniError } from '../translate.js'
import { runDelegate, runFlow, withCore, type CommandContext, type CommandOutcome } from './context.js'

/** @category commands */
export const del = async (ctx: CommandContext): Promise<CommandOutcome> => {
  const { conf } = ctx.netconf
  const ipamCall = isIpamCall(conf, ctx.runtime.selfNames)
  const id = attachmentEndpointId(ctx.netconf.name, ctx.args.containerId as ContainerId, ctx.args.ifName as IfName)
  const ours = await withCore(ctx, async (session) => {
    const env: Env = ipamCall ? { ...session.env, dataplane: recordOnlyDataplane } : session.env
    const stored = await runFlow(env, getEndpoint(id))
    if (E.isLeft(stored)) return stored
    if (O.isNone(stored.right)) return sweepController(ctx, env, id)
    const left = await runFlow(env, leave(id))
    if (E.isLeft(left)) return left
    return runFlow(env, deleteEndpoint(id))
  })
  if (E.isLeft(ours)) return ours
  const mode = ipamModeOf(conf, ctx.runtime.selfNames)
  if (!ipamCall && mode._tag === 'Delegated') {
    const d = await runDelegate(ctx, mode.plugin, 'DEL')
    if (E.isLeft(d)) return d
  }
  return E.right(undefined)
}

/**
 * No record: on a controller network, ask the control plane to delete the endpoint's objects
 * with no ids known, which makes it look them up by name (404 everywhere is success). The agent
 * heard of nothing: its port is posted only after the record is stored.
 */
const sweepController = async (ctx: CommandContext, env: Env, id: EndpointId): Promise<E.Either<CniError, void>> => {
  const network = await runFlow(env, getNetwork(ctx.netconf.name))
  if (E.isLeft(network)) return network
  if (O.isNone(network.right) || network.right.value.controller === undefined) return E.right(undefined)
  const n = network.right.value
  const unrecorded: Endpoint = {
    id,
    networkId: n.id,
    owner: { kind: 'container', containerId: ctx.args.containerId as ContainerId, ifName: ctx.args.ifName as IfName },
    addresses: [],
    hostIfName: hostIfName(id),
    peerIfName: peerIfName(id),
    routes: [],
    portMappings: [],
    createdAt: new Date(0).toISOString()
  }
  const r = await env.controlPlane.deleteEndpoint(n, unrecorded)()
  return E.isLeft(r) ? E.left(toCniError(r.left)) : E.right(undefined)
}
