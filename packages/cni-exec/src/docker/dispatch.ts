/**
 * Where the Docker modes join the command table: a netconf with `dockerConnect` goes to the
 * shim (Docker attaches), one with `dockerNetwork` to the usual commands on the Docker network
 * (isthmus attaches), any other to the usual commands unchanged.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as T from 'fp-ts/lib/Task.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import type { CommandContext, CommandTask } from '../commands/context.js'
import type { Command } from '../protocol/Env.js'
import { Code, cniError, type CniError } from '../protocol/Error.js'
import type { DockerConf } from '../protocol/NetConf.js'
import { clusterConflict } from '../translate.js'
import type { DockerClient } from '@isthmus/core'
import { connectAdd, connectCheck, connectDel, connectGc, connectStatus, dockerReady, type Shim } from './connect.js'
import { dropIfEmpty, onDockerNetwork } from './network.js'

/** @category model */
export type CommandTable = Readonly<Record<Exclude<Command, 'VERSION'>, (ctx: CommandContext) => CommandTask>>

const SHIM: Readonly<Record<Exclude<Command, 'VERSION'>, (s: Shim) => CommandTask>> = {
  ADD: connectAdd,
  DEL: connectDel,
  CHECK: connectCheck,
  GC: connectGc,
  STATUS: connectStatus
}

const shimFor = (ctx: CommandContext, section: DockerConf): E.Either<CniError, Shim> => {
  const ports = ctx.runtime.docker
  if (ports === undefined) {
    return E.left(cniError(Code.InvalidConfig, 'invalid network config', 'this runtime has no Docker Engine API ports'))
  }
  const docker = ports.client({
    ...(section.socket === undefined ? {} : { socket: section.socket }),
    ...(section.timeoutMs === undefined ? {} : { timeoutMs: section.timeoutMs })
  })
  return E.right({ ctx, ports, docker, section })
}

/** `dockerConnect`: Docker assigns the addresses, so the netconf names no IPAM or controller. */
const viaShim = (command: Exclude<Command, 'VERSION'>, shim: Shim): CommandTask => {
  const extra = (['ipam', 'contrail'] as const).filter((k) => shim.ctx.netconf.conf[k] !== undefined)
  return extra.length > 0
    ? TE.left(
        cniError(
          Code.InvalidConfig,
          'invalid network config',
          `dockerConnect: Docker assigns the addresses; remove ${extra.join(' and ')}`
        )
      )
    : SHIM[command](shim)
}

/** `dockerNetwork`: the usual command on the netconf rewritten for the Docker network. */
const onNetwork = (
  command: Exclude<Command, 'VERSION'>,
  usual: CommandTable[typeof command],
  ctx: CommandContext,
  docker: DockerClient,
  section: DockerConf
): CommandTask => {
  // Ready when ours is and dockerd answers.
  if (command === 'STATUS') {
    return pipe(
      usual(ctx),
      TE.chainFirst(() => dockerReady(docker))
    )
  }
  return pipe(
    onDockerNetwork(ctx, command, docker, section),
    TE.chain((on) =>
      on === undefined
        ? TE.right(undefined)
        : pipe(
            usual({ ...ctx, netconf: on.netconf }),
            TE.chainFirstTaskK(() =>
              command === 'DEL' && on.dockerGone ? dropIfEmpty(ctx, on.netconf.name) : T.of(undefined)
            )
          )
    )
  )
}

const viaDocker =
  (command: Exclude<Command, 'VERSION'>, usual: CommandTable[typeof command]) =>
  (ctx: CommandContext): CommandTask => {
    const { dockerConnect, dockerNetwork } = ctx.netconf.conf
    if (dockerConnect === undefined && dockerNetwork === undefined) return usual(ctx)
    if (dockerConnect !== undefined && dockerNetwork !== undefined) {
      return TE.left(
        cniError(Code.InvalidConfig, 'invalid network config', 'dockerConnect and dockerNetwork exclude each other')
      )
    }
    // A cluster netconf with a Docker section is refused before Docker is asked (ADD, CHECK).
    const conflict = clusterConflict(ctx.netconf.conf, ctx.runtime.selfNames)
    if (conflict !== undefined && (command === 'ADD' || command === 'CHECK')) return TE.left(conflict)
    const section = (dockerConnect ?? dockerNetwork) as DockerConf
    return pipe(
      TE.fromEither(shimFor(ctx, section)),
      TE.chain((shim) =>
        dockerConnect !== undefined ? viaShim(command, shim) : onNetwork(command, usual, ctx, shim.docker, section)
      )
    )
  }

/**
 * The command table with the Docker modes in front of each command.
 *
 * @category constructors
 */
export const withDockerModes = (table: CommandTable): CommandTable => ({
  ADD: viaDocker('ADD', table.ADD),
  DEL: viaDocker('DEL', table.DEL),
  CHECK: viaDocker('CHECK', table.CHECK),
  GC: viaDocker('GC', table.GC),
  STATUS: viaDocker('STATUS', table.STATUS)
})
