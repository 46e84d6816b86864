/**
 * GC (CNI SPEC §GC, 1.1.0): remove every attachment of this network that
 * `cni.dev/valid-attachments` does not list (core gc), then the network's orphans: leases of its
 * pools and host veths on its bridge that no stored endpoint owns. Keeps going past failures and
 * reports them; forwards GC to a delegated IPAM that speaks 1.1.0.
 *
 * Scope: only this network. Core gc's link sweep would look at every `istv…` link of the host,
 * and another isthmus state directory (a second runtime, a test) owns links this store does not
 * know; so the dataplane's inventory is narrowed to the ports of this network's bridge.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import {
  ContainerId,
  describe,
  gc as coreGc,
  getNetwork,
  HOST_IF_PREFIX,
  IfName,
  type Env,
  type GcAttachment,
  type GcOptions,
  type IfName as IfNameT
} from '@isthmus/core'
import { cniError } from '../protocol/Error.js'
import { OLD_ATTACHMENTS, VALID_ATTACHMENTS, type Attachment } from '../protocol/NetConf.js'
import { recordOnlyDataplane } from '../recordOnly.js'
import type { Probe } from '../runtime.js'
import { ipamModeOf, isIpamCall, toCniError } from '../translate.js'
import { delegateSpeaks110, runDelegate, runFlow, withCore, type CommandContext, type CommandOutcome } from './context.js'

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
 * Orphan leases younger than this are left for a later GC. The runtime never runs GC beside its
 * own ADDs, but dockerd may be creating an endpoint on the same network (a netconf naming a
 * Docker-made network, docs/one-network.md): its lease is held by the endpoint a few
 * milliseconds before the endpoint's record is written.
 *
 * @category constants
 */
export const LEASE_GRACE_MS = 60_000

const scopedInventory = (probe: Probe, bridge: string): Env['dataplane']['inventory'] => () =>
  pipe(
    probe.bridgePorts(bridge),
    TE.map((ports) => ({ links: ports.filter((p) => p.startsWith(HOST_IF_PREFIX)) as IfNameT[], networks: [] }))
  )

/** @category commands */
export const gc = async (ctx: CommandContext): Promise<CommandOutcome> => {
  const { conf } = ctx.netconf
  const ipamCall = isIpamCall(conf, ctx.runtime.selfNames)
  const valid = validOf(conf[VALID_ATTACHMENTS] !== undefined ? conf[VALID_ATTACHMENTS] : conf[OLD_ATTACHMENTS])
  const ours = await withCore(ctx, async (session) => {
    const stored = await runFlow(session.env, getNetwork(ctx.netconf.name))
    if (E.isLeft(stored)) return stored
    // Nothing was ever attached to this network here.
    if (O.isNone(stored.right)) return E.right(undefined)
    const bridge = stored.right.value.bridge
    const env: Env = ipamCall
      ? { ...session.env, dataplane: recordOnlyDataplane }
      : {
          ...session.env,
          dataplane: {
            ...session.env.dataplane,
            inventory: bridge === undefined ? recordOnlyDataplane.inventory : scopedInventory(ctx.runtime.probe, bridge)
          }
        }
    const report = await runFlow(env, coreGc({ networkId: ctx.netconf.name, valid, leaseGraceMs: LEASE_GRACE_MS }))
    if (E.isLeft(report)) return report
    const r = report.right
    ctx.log.info('gc', {
      networkId: ctx.netconf.name,
      endpointsRemoved: r.endpointsRemoved,
      leasesReleased: r.leasesReleased.map((l) => l.address),
      linksRemoved: r.linksRemoved
    })
    const first = r.failures[0]
    if (first === undefined) return E.right(undefined)
    const mapped = toCniError(first.error)
    return E.left(
      cniError(
        mapped.code,
        `GC could not remove ${r.failures.length} item(s)`,
        r.failures.map((f) => `${f.step} ${f.target}: ${describe(f.error)}`).join('; ')
      )
    )
  })
  const mode = ipamModeOf(conf, ctx.runtime.selfNames)
  if (!ipamCall && mode._tag === 'Delegated' && (await delegateSpeaks110(ctx, mode.plugin))) {
    const d = await runDelegate(ctx, mode.plugin, 'GC')
    if (E.isLeft(d) && E.isRight(ours)) return d
  }
  return E.isLeft(ours) ? ours : E.right(undefined)
}

