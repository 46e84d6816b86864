/**
 * STATUS (CNI SPEC §STATUS, 1.1.0): ready to serve ADD? The store must open and answer, and (as
 * the main plugin) the dataplane's tools must run; otherwise code 50. Forwarded to a delegated
 * IPAM that speaks 1.1.0.
 */
import * as E from 'fp-ts/lib/Either.js'
import { describe, unavailable } from '@isthmus/core'
import { ipamModeOf, isIpamCall, toCniError } from '../translate.js'
import { delegateSpeaks110, runDelegate, withCore, type CommandContext, type CommandOutcome } from './context.js'

/** @category commands */
export const status = async (ctx: CommandContext): Promise<CommandOutcome> => {
  const { conf } = ctx.netconf
  const ipamCall = isIpamCall(conf, ctx.runtime.selfNames)
  const down = (what: string, detail: string) => toCniError(unavailable(`${what}: ${detail}`))
  const ours = await withCore(
    ctx,
    async ({ env }) => {
      const ping = await env.store.ping()()
      if (E.isLeft(ping)) return E.left(down('the state store is unusable', describe(ping.left)))
      if (ipamCall) return E.right(undefined)
      const inv = await env.dataplane.inventory()()
      return E.isLeft(inv) ? E.left(down('the dataplane is unusable', describe(inv.left))) : E.right(undefined)
    },
    (e, what) => down(what === 'store' ? 'the state store cannot be opened' : 'the contrail section cannot be used', describe(e))
  )
  if (E.isLeft(ours)) return ours
  const mode = ipamModeOf(conf, ctx.runtime.selfNames)
  if (!ipamCall && mode._tag === 'Delegated' && (await delegateSpeaks110(ctx, mode.plugin))) {
    const d = await runDelegate(ctx, mode.plugin, 'STATUS')
    if (E.isLeft(d)) return d
  }
  return E.right(undefined)
}
