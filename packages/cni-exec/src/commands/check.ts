/**
 * CHECK (CNI SPEC §CHECK, 0.4.0+): verify that what `prevResult` describes still holds. Reads only:
 * the endpoint record, the sandbox interface (present, up, MAC and addresses of prevResult and of
 * the record), the host end (present, on the bridge); then the delegated IPAM's own CHECK.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import {
  attachmentEndpointId,
  getEndpoint,
  getNetwork,
  notFound,
  type ContainerId,
  type Endpoint,
  type IfName,
  type SandboxKey
} from '@isthmus/core'
import { Code, cniError, type CniError } from '../protocol/Error.js'
import { decodeResult, type Result } from '../protocol/Result.js'
import type { LinkState } from '../runtime.js'
import { ipamModeOf, isIpamCall, toCniError } from '../translate.js'
import { runDelegate, runFlow, withCore, type CommandContext, type CommandOutcome } from './context.js'

const failed = (msg: string, details?: string): CniError => cniError(Code.CheckFailed, msg, details)

// Addresses compare by canonical text; a prevResult may spell them otherwise (upper-case IPv6).
const canon = (cidr: string): string => cidr.toLowerCase()

/** @category commands */
export const check = async (ctx: CommandContext): Promise<CommandOutcome> => {
  const { conf } = ctx.netconf
  if (conf.prevResult === undefined) return E.left(cniError(Code.InvalidConfig, 'required prevResult missing'))
  const prev = decodeResult(conf.prevResult, ctx.netconf.cniVersion)
  if (E.isLeft(prev)) return prev
  const ipamCall = isIpamCall(conf, ctx.runtime.selfNames)
  const containerId = ctx.args.containerId as ContainerId
  const ifName = ctx.args.ifName as IfName
  const netns = ctx.args.netns as SandboxKey
  const id = attachmentEndpointId(ctx.netconf.name, containerId, ifName)

  const ours = await withCore(ctx, async ({ env }) => {
    const found = await runFlow(env, getEndpoint(id))
    if (E.isLeft(found)) return found
    if (O.isNone(found.right)) return E.left(toCniError(notFound('endpoint', `${id} (container ${containerId}, ${ifName})`)))
    const endpoint = found.right.value
    if (ipamCall) return checkAddressesListed(endpoint, prev.right)
    const network = await runFlow(env, getNetwork(endpoint.networkId))
    if (E.isLeft(network)) return network
    const bridge = O.isSome(network.right) ? network.right.value.bridge : undefined
    return checkLinks(ctx, endpoint, prev.right, { netns, ifName, bridge })
  })
  if (E.isLeft(ours)) return ours
  const mode = ipamModeOf(conf, ctx.runtime.selfNames)
  if (!ipamCall && mode._tag === 'Delegated') {
    const d = await runDelegate(ctx, mode.plugin, 'CHECK')
    if (E.isLeft(d)) return d
  }
  return E.right(undefined)
}

/** As IPAM: every address we hold for the attachment is in prevResult. */
const checkAddressesListed = (endpoint: Endpoint, prev: Result): E.Either<CniError, void> => {
  const listed = new Set((prev.ips ?? []).map((ip) => canon(ip.address)))
  const missing = endpoint.addresses.filter((a) => !listed.has(canon(a.cidr)))
  return missing.length === 0
    ? E.right(undefined)
    : E.left(failed('address not in prevResult', missing.map((a) => a.cidr).join(', ')))
}

const checkLinks = async (
  ctx: CommandContext,
  endpoint: Endpoint,
  prev: Result,
  where: { readonly netns: SandboxKey; readonly ifName: IfName; readonly bridge: string | undefined }
): Promise<E.Either<CniError, void>> => {
  const inside = await ctx.runtime.probe.sandboxLink(where.netns, where.ifName)()
  if (E.isLeft(inside)) return E.left(toCniError(inside.left))
  const link: LinkState | undefined = inside.right
  if (link === undefined) return E.left(failed(`interface ${where.ifName} not found`, `in ${where.netns}`))
  if (!link.up) return E.left(failed(`interface ${where.ifName} is down`, `in ${where.netns}`))
  // prevResult's own view of our interface: the last plugin of the chain may have changed its MAC (tuning).
  const index = (prev.interfaces ?? []).findIndex((i) => i.name === where.ifName && i.sandbox === where.netns)
  const described = index < 0 ? undefined : prev.interfaces?.[index]
  if (described?.mac !== undefined && described.mac.toLowerCase() !== link.mac?.toLowerCase()) {
    return E.left(failed(`interface ${where.ifName} MAC ${link.mac ?? 'none'} does not match prevResult`, described.mac))
  }
  const have = new Set(link.addresses.map(canon))
  const expected = [
    ...endpoint.addresses.map((a) => a.cidr),
    ...(prev.ips ?? []).filter((ip) => index >= 0 && ip.interface === index).map((ip) => ip.address)
  ]
  const missing = [...new Set(expected.map(canon))].filter((a) => !have.has(a))
  if (missing.length > 0) return E.left(failed(`interface ${where.ifName} lacks addresses`, missing.join(', ')))
  const hostEnd = await ctx.runtime.probe.hostLink(endpoint.hostIfName)()
  if (E.isLeft(hostEnd)) return E.left(toCniError(hostEnd.left))
  if (hostEnd.right === undefined) return E.left(failed(`host interface ${endpoint.hostIfName} not found`))
  if (where.bridge !== undefined && hostEnd.right.master !== where.bridge) {
    return E.left(failed(`host interface ${endpoint.hostIfName} is not on bridge ${where.bridge}`, `master: ${hostEnd.right.master ?? 'none'}`))
  }
  return E.right(undefined)
}
