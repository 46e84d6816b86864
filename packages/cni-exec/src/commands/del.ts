/**
 * DEL (CNI SPEC §DEL): undo ADD; succeeds when things are already gone, when CNI_NETNS is empty or
 * names a deleted namespace, and when repeated. Core flows: leave, deleteEndpoint (NotFound is
 * success there). The address goes back to the pool whatever state the links are in.
 */
import * as E from 'fp-ts/lib/Either.js'
import { attachmentEndpointId, deleteEndpoint, leave, type ContainerId, type Env, type IfName } from '@isthmus/core'
import { recordOnlyDataplane } from '../recordOnly.js'
import { ipamModeOf, isIpamCall } from '../translate.js'
import { runDelegate, runFlow, withCore, type CommandContext, type CommandOutcome } from './context.js'

/** @category commands */
export const del = async (ctx: CommandContext): Promise<CommandOutcome> => {
  const { conf } = ctx.netconf
  const ipamCall = isIpamCall(conf, ctx.runtime.selfNames)
  const id = attachmentEndpointId(ctx.netconf.name, ctx.args.containerId as ContainerId, ctx.args.ifName as IfName)
  const ours = await withCore(ctx, async (session) => {
    const env: Env = ipamCall ? { ...session.env, dataplane: recordOnlyDataplane } : session.env
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
