/**
 * CHECK (CNI SPEC §CHECK, 0.4.0+): verify that what `prevResult` describes still holds. Reads only:
 * the endpoint record, the sandbox interface (present, up, MAC and addresses of prevResult and of
 * the record), the host end (present, on the bridge); then the delegated IPAM's own CHECK.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import {
  attachmentEndpointId,
  getEndpoint,
  getNetwork,
  notFound,
  type ContainerId,
  type Endpoint,
  type Env,
  type IfName,
  type SandboxKey
} from '@isthmus/core'
import { Code, cniError, type CniError } from '../protocol/Error.js'
import { decodeResult, type Result } from '../protocol/Result.js'
import type { LinkState } from '../runtime.js'
import { isIpamCall, toCniError } from '../translate.js'
import { forwardToDelegate, runFlow, withCore, type CommandContext, type CommandTask } from './context.js'

const failed = (msg: string, details?: string): CniError => cniError(Code.CheckFailed, msg, details)

// Addresses compare by canonical text; a prevResult may spell them otherwise (upper-case IPv6).
const canon = (cidr: string): string => cidr.toLowerCase()

interface Where {
  readonly netns: SandboxKey
  readonly ifName: IfName
  readonly bridge: string | undefined
}

/** @category commands */
export const check = (ctx: CommandContext): CommandTask => {
  const { conf } = ctx.netconf
  if (conf.prevResult === undefined) return TE.left(cniError(Code.InvalidConfig, 'required prevResult missing'))
  return pipe(
    TE.fromEither(decodeResult(conf.prevResult, ctx.netconf.cniVersion)),
    TE.chain((prev) => withCore(ctx, ({ env }) => checkOurs(ctx, env, prev))),
    TE.chain(() => forwardToDelegate(ctx, 'CHECK')),
    TE.map(() => undefined)
  )
}

/** The endpoint record, then (as the main plugin) the links it describes, or (as IPAM) its addresses. */
const checkOurs = (ctx: CommandContext, env: Env, prev: Result): TE.TaskEither<CniError, void> => {
  const ipamCall = isIpamCall(ctx.netconf.conf, ctx.runtime.selfNames)
  const containerId = ctx.args.containerId as ContainerId
  const ifName = ctx.args.ifName as IfName
  const netns = ctx.args.netns as SandboxKey
  const id = attachmentEndpointId(ctx.netconf.name, containerId, ifName)
  return pipe(
    runFlow(env, getEndpoint(id)),
    TE.chain(
      O.match(
        () => TE.left(toCniError(notFound('endpoint', `${id} (container ${containerId}, ${ifName})`))),
        (endpoint) =>
          ipamCall
            ? TE.fromEither(checkAddressesListed(endpoint, prev))
            : pipe(
                runFlow(env, getNetwork(endpoint.networkId)),
                TE.map((network) => (O.isSome(network) ? network.value.bridge : undefined)),
                TE.chain((bridge) => checkLinks(ctx, endpoint, prev, { netns, ifName, bridge }))
              )
      )
    )
  )
}

/** As IPAM: every address we hold for the attachment is in prevResult. */
const checkAddressesListed = (endpoint: Endpoint, prev: Result): E.Either<CniError, void> => {
  const listed = new Set((prev.ips ?? []).map((ip) => canon(ip.address)))
  const missing = endpoint.addresses.filter((a) => !listed.has(canon(a.cidr)))
  return missing.length === 0
    ? E.right(undefined)
    : E.left(failed('address not in prevResult', missing.map((a) => a.cidr).join(', ')))
}

const checkLinks = (
  ctx: CommandContext,
  endpoint: Endpoint,
  prev: Result,
  where: Where
): TE.TaskEither<CniError, void> =>
  pipe(
    ctx.runtime.probe.sandboxLink(where.netns, where.ifName),
    TE.mapLeft(toCniError),
    TE.chainEitherK((link) => checkSandboxLink(endpoint, prev, where, link)),
    TE.chain(() => pipe(ctx.runtime.probe.hostLink(endpoint.hostIfName), TE.mapLeft(toCniError))),
    TE.chainEitherK((hostEnd) => checkHostLink(endpoint, where, hostEnd))
  )

/** The sandbox interface: present, up, with prevResult's MAC and every address it should hold. */
const checkSandboxLink = (
  endpoint: Endpoint,
  prev: Result,
  where: Where,
  link: LinkState | undefined
): E.Either<CniError, void> => {
  if (link === undefined) return E.left(failed(`interface ${where.ifName} not found`, `in ${where.netns}`))
  if (!link.up) return E.left(failed(`interface ${where.ifName} is down`, `in ${where.netns}`))
  // prevResult's own view of our interface: the last plugin of the chain may have changed its MAC (tuning).
  const index = (prev.interfaces ?? []).findIndex((i) => i.name === where.ifName && i.sandbox === where.netns)
  const described = index < 0 ? undefined : prev.interfaces?.[index]
  if (described?.mac !== undefined && described.mac.toLowerCase() !== link.mac?.toLowerCase()) {
    return E.left(
      failed(`interface ${where.ifName} MAC ${link.mac ?? 'none'} does not match prevResult`, described.mac)
    )
  }
  const have = new Set(link.addresses.map(canon))
  const expected = [
    ...endpoint.addresses.map((a) => a.cidr),
    ...(prev.ips ?? []).filter((ip) => index >= 0 && ip.interface === index).map((ip) => ip.address)
  ]
  const missing = [...new Set(expected.map(canon))].filter((a) => !have.has(a))
  return missing.length > 0
    ? E.left(failed(`interface ${where.ifName} lacks addresses`, missing.join(', ')))
    : E.right(undefined)
}

/** The host end: present, and on the network's bridge. */
const checkHostLink = (endpoint: Endpoint, where: Where, hostEnd: LinkState | undefined): E.Either<CniError, void> => {
  if (hostEnd === undefined) return E.left(failed(`host interface ${endpoint.hostIfName} not found`))
  if (where.bridge !== undefined && hostEnd.master !== where.bridge) {
    const master = `master: ${hostEnd.master ?? 'none'}`
    return E.left(failed(`host interface ${endpoint.hostIfName} is not on bridge ${where.bridge}`, master))
  }
  return E.right(undefined)
}
