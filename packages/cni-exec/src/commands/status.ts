/**
 * STATUS (CNI SPEC §STATUS, 1.1.0): ready to serve ADD? The store must open and answer, and (as
 * the main plugin) the dataplane's tools must run; otherwise code 50. Forwarded to a delegated
 * IPAM that speaks 1.1.0.
 */
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { describe, unavailable, type CoreError, type Env } from '@isthmus/core'
import type { CniError } from '../protocol/Error.js'
import { isIpamCall, toCniError } from '../translate.js'
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

/** @category commands */
export const status = (ctx: CommandContext): CommandTask =>
  pipe(
    withCore(ctx, ({ env }) => ready(env, isIpamCall(ctx.netconf.conf, ctx.runtime.selfNames)), unopened),
    TE.chain(() => forwardToDelegate(ctx, 'STATUS')),
    TE.map(() => undefined)
  )
