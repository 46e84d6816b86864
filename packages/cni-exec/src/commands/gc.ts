/**
 * GC (CNI SPEC §GC, 1.1.0): remove every attachment of this network that
 * `cni.dev/valid-attachments` does not list (core gc), then the network's orphans: leases of its
 * pools and host veths on its bridge that no stored endpoint owns. Keeps going past failures and
 * reports them; forwards GC to a delegated IPAM that speaks 1.1.0.
 *
 * Scope: only this network. Core gc asks the dataplane for the links on this network's bridge
 * only (another isthmus state directory, a second runtime or a test, owns links this store does
 * not know); the dataplane names the endpoint each link was made for, and gc judges it under that
 * endpoint's lock, so an ADD running meanwhile on the same network is not swept.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as O from 'fp-ts/lib/Option.js'
import * as T from 'fp-ts/lib/Task.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import {
  ContainerId,
  describe,
  gc as coreGc,
  getNetwork,
  IfName,
  type Env,
  type GcAttachment,
  type GcOptions,
  type GcReport
} from '@isthmus/core'
import { cniError, type CniError } from '../protocol/Error.js'
import { OLD_ATTACHMENTS, VALID_ATTACHMENTS, type Attachment } from '../protocol/NetConf.js'
import { recordOnlyDataplane } from '../recordOnly.js'
import { isIpamCall, toCniError } from '../translate.js'
import { forwardToDelegate, runFlow, withCore, type CommandContext, type CommandTask } from './context.js'

/**
 * The attachments to keep. Absent or `null` (libcni sends null for a nil list) means "no
 * information": nothing is deleted, only orphans are collected. An entry whose ids no ADD could
 * have used matches no endpoint and is dropped.
 *
 * @category utils
 */
export const validOf = (list: ReadonlyArray<Attachment> | null | undefined): GcOptions['valid'] =>
  list === undefined || list === null
    ? 'keep-all-endpoints'
    : list.flatMap((a): GcAttachment[] =>
        ContainerId.is(a.containerID) && IfName.is(a.ifname) ? [{ containerId: a.containerID, ifName: a.ifname }] : []
      )

/**
 * An orphan endpoint whose lease is younger than this is left for a later GC, its lease and its
 * links. Container endpoints in flight are safe anyway (gc waits for their lock), but dockerd may
 * be creating an endpoint on the same network (a netconf naming a Docker-made network,
 * docs/one-network.md), under the daemon's own lock: its lease is held by the endpoint a few
 * milliseconds before the endpoint's record is written.
 *
 * @category constants
 */
export const LEASE_GRACE_MS = 60_000

/**
 * @category commands
 */
export const gc = (ctx: CommandContext): CommandTask =>
  pipe(
    collect(ctx),
    // The delegate collects its own even when ours failed; ours is the error reported first.
    T.chain((ours) =>
      pipe(
        forwardToDelegate(ctx, 'GC'),
        T.map((delegated) => (E.isLeft(ours) ? ours : delegated))
      )
    ),
    TE.map(() => undefined)
  )

/** Core gc on this network, when it was ever attached to here. */
const collect = (ctx: CommandContext): TE.TaskEither<CniError, void> => {
  const { conf } = ctx.netconf
  const ipamCall = isIpamCall(conf, ctx.runtime.selfNames)
  const valid = validOf(conf[VALID_ATTACHMENTS] !== undefined ? conf[VALID_ATTACHMENTS] : conf[OLD_ATTACHMENTS])
  return withCore(ctx, (session) =>
    pipe(
      runFlow(session.env, getNetwork(ctx.netconf.name)),
      TE.chain((stored) => {
        // Nothing was ever attached to this network here.
        if (O.isNone(stored)) return TE.right(undefined)
        const env: Env = ipamCall ? { ...session.env, dataplane: recordOnlyDataplane } : session.env
        return pipe(
          runFlow(env, coreGc({ networkId: ctx.netconf.name, valid, leaseGraceMs: LEASE_GRACE_MS })),
          TE.chainEitherK((report) => reported(ctx, report))
        )
      })
    )
  )
}

/** Log what gc did; its failures, if any, as one error naming each. */
const reported = (ctx: CommandContext, r: GcReport): E.Either<CniError, void> => {
  ctx.log.info('gc', {
    networkId: ctx.netconf.name,
    endpointsRemoved: r.endpointsRemoved,
    leasesReleased: r.leasesReleased.map((l) => l.address),
    linksRemoved: r.linksRemoved
  })
  const first = r.failures[0]
  if (first === undefined) return E.right(undefined)
  return E.left(
    cniError(
      toCniError(first.error).code,
      `GC could not remove ${r.failures.length} item(s)`,
      r.failures.map((f) => `${f.step} ${f.target}: ${describe(f.error)}`).join('; ')
    )
  )
}
