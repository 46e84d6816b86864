/**
 * Where the Docker modes join the command table: a netconf with `dockerConnect` goes to the
 * shim (Docker attaches), one with `dockerNetwork` to the usual commands on the Docker network
 * (isthmus attaches), any other to the usual commands unchanged.
 */
import * as E from 'fp-ts/lib/Either.js'
import type { CommandContext, CommandOutcome } from '../commands/context.js'
import type { Command } from '../protocol/Env.js'
import { Code, cniError, type CniError } from '../protocol/Error.js'
import type { DockerConf } from '../protocol/NetConf.js'
import type { DockerClient } from '@isthmus/core'
import { connectAdd, connectCheck, connectDel, connectGc, connectStatus, type Shim } from './connect.js'
import { dockerToCni } from './errors.js'
import { dropIfEmpty, onDockerNetwork } from './network.js'

/** @category model */
export type CommandTable = Readonly<Record<Exclude<Command, 'VERSION'>, (ctx: CommandContext) => Promise<CommandOutcome>>>

const SHIM: Readonly<Record<Exclude<Command, 'VERSION'>, (s: Shim) => Promise<CommandOutcome>>> = {
  ADD: connectAdd,
  DEL: connectDel,
  CHECK: connectCheck,
  GC: connectGc,
  STATUS: connectStatus
}

const clientFor = (ctx: CommandContext, section: DockerConf): E.Either<CniError, { shim: Omit<Shim, 'section'>; docker: DockerClient }> => {
  const ports = ctx.runtime.docker
  if (ports === undefined) return E.left(cniError(Code.InvalidConfig, 'invalid network config', 'this runtime has no Docker Engine API ports'))
  const docker = ports.client({
    ...(section.socket === undefined ? {} : { socket: section.socket }),
    ...(section.timeoutMs === undefined ? {} : { timeoutMs: section.timeoutMs })
  })
  return E.right({ shim: { ctx, ports, docker }, docker })
}

const viaDocker =
  (command: Exclude<Command, 'VERSION'>, usual: CommandTable[typeof command]) =>
  async (ctx: CommandContext): Promise<CommandOutcome> => {
    const { dockerConnect, dockerNetwork } = ctx.netconf.conf
    if (dockerConnect === undefined && dockerNetwork === undefined) return usual(ctx)
    if (dockerConnect !== undefined && dockerNetwork !== undefined) {
      return E.left(cniError(Code.InvalidConfig, 'invalid network config', 'dockerConnect and dockerNetwork exclude each other'))
    }
    const section = (dockerConnect ?? dockerNetwork) as DockerConf
    const c = clientFor(ctx, section)
    if (E.isLeft(c)) return c
    if (dockerConnect !== undefined) {
      const extra = (['ipam', 'contrail'] as const).filter((k) => ctx.netconf.conf[k] !== undefined)
      return extra.length > 0
        ? E.left(cniError(Code.InvalidConfig, 'invalid network config', `dockerConnect: Docker assigns the addresses; remove ${extra.join(' and ')}`))
        : SHIM[command]({ ...c.right.shim, section })
    }
    if (command === 'STATUS') {
      const ours = await usual(ctx)
      if (E.isLeft(ours)) return ours
      const ping = await c.right.docker.ping()()
      return E.isLeft(ping) ? E.left(cniError(Code.Unavailable, 'plugin not available', dockerToCni(ping.left).details)) : ours
    }
    const on = await onDockerNetwork(ctx, command, c.right.docker, section)
    if (E.isLeft(on)) return on
    if (on.right === undefined) return E.right(undefined)
    const r = await usual({ ...ctx, netconf: on.right.netconf })
    if (E.isRight(r) && command === 'DEL' && on.right.dockerGone) await dropIfEmpty(ctx, on.right.netconf.name)
    return r
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
