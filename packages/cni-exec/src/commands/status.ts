/**
 * STATUS (CNI SPEC §STATUS, 1.1.0): ready to serve ADD? The store must open and answer, (as the
 * main plugin) the dataplane's tools must run, and the network's pools of isthmus's IPAM must
 * have a free address in each family the netconf asks for; otherwise code 50. Forwarded to a
 * delegated IPAM that speaks 1.1.0.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import {
  describe,
  exhaustedPools,
  unavailable,
  type CoreError,
  type Env,
  type Family,
  type PoolUsage
} from '@isthmus/core'
import { Code, cniError, type CniError } from '../protocol/Error.js'
import type { NetConf } from '../protocol/NetConf.js'
import { ipamModeOf, isIpamCall, subnetRequestsOf, toCniError } from '../translate.js'
import { forwardToDelegate, withCore, type CommandContext, type CommandTask, type Opening } from './context.js'

const down = (what: string, detail: string): CniError => toCniError(unavailable(`${what}: ${detail}`))

const unopened = (e: CoreError, what: Opening): CniError =>
  down(what === 'store' ? 'the state store cannot be opened' : 'the contrail section cannot be used', describe(e))

/** The store answers; as the main plugin, the dataplane's tools run too. */
const ready = (env: Env, ipamCall: boolean): TE.TaskEither<CniError, void> =>
  pipe(
    env.store.ping(),
    TE.mapLeft((e) => down('the state store is unusable', describe(e))),
    TE.chain(() =>
      ipamCall
        ? TE.right(undefined)
        : pipe(
            env.dataplane.inventory(),
            TE.bimap(
              (e) => down('the dataplane is unusable', describe(e)),
              () => undefined
            )
          )
    )
  )

/**
 * The families whose addresses isthmus's own IPAM hands out from the netconf's ranges; none when
 * a delegate, a controller, Docker or the cluster's blocks decide the addresses, or when the
 * ranges are invalid (ADD says why).
 */
const ownFamilies = (ctx: CommandContext): ReadonlyArray<Family> => {
  const { conf } = ctx.netconf
  if (ipamModeOf(conf, ctx.runtime.selfNames)._tag !== 'Builtin') return []
  if (conf.contrail !== undefined || conf.dockerConnect !== undefined || conf.dockerNetwork !== undefined) return []
  if (conf.cluster !== undefined) return []
  return pipe(
    subnetRequestsOf(conf),
    E.match(
      () => [],
      (subnets) => [...new Set(subnets.map((s) => s.family))]
    )
  )
}

const rangeText = (u: PoolUsage): string =>
  u.ranges.length === 0
    ? u.subnet
    : `${u.ranges.map((r) => (r.start === r.end ? r.start : `${r.start}-${r.end}`)).join(', ')} of ${u.subnet}`

const fullError = (nc: NetConf, full: ReadonlyArray<PoolUsage>): CniError =>
  cniError(
    Code.Unavailable,
    `no free address in network ${nc.name}`,
    full
      .map((u) => `all ${u.size} IPv${u.family} addresses of ${rangeText(u)} are in use`)
      .concat(['DEL an attachment or widen the range'])
      .join('; ')
  )

/** An ADD would find an address: code 50 when every pool of a family the netconf asks for is full. */
const addressesLeft = (ctx: CommandContext, env: Env): TE.TaskEither<CniError, void> => {
  const families = ownFamilies(ctx)
  if (families.length === 0) return TE.right(undefined)
  return pipe(
    exhaustedPools(ctx.netconf.name, families)(env),
    TE.mapLeft((e) => down('the state store is unusable', describe(e))),
    TE.chain((full) => (full.length === 0 ? TE.right(undefined) : TE.left(fullError(ctx.netconf, full))))
  )
}

/** @category commands */
export const status = (ctx: CommandContext): CommandTask =>
  pipe(
    withCore(
      ctx,
      ({ env }) =>
        pipe(
          ready(env, isIpamCall(ctx.netconf.conf, ctx.runtime.selfNames)),
          TE.chain(() => addressesLeft(ctx, env))
        ),
      unopened
    ),
    TE.chain(() => forwardToDelegate(ctx, 'STATUS')),
    TE.map(() => undefined)
  )
