/**
 * ADD (CNI SPEC §ADD): attach CNI_IFNAME in CNI_NETNS to the netconf's network and print the
 * result. Core flows: ensureNetwork, createEndpoint (placement known, so the sandbox end is made
 * in the namespace directly), join (PluginMoves). With a `contrail` section the controller
 * assigns address, MAC and gateway and the vRouter agent gets the port (both inside
 * createEndpoint). A failing ADD removes what it made (the reference leaves the container veth
 * behind, plugins#29; the controller's objects and the agent port go with it) and gives back a
 * delegated address: both undos are steps of core's saga.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as O from 'fp-ts/lib/Option.js'
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import * as T from 'fp-ts/lib/Task.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import {
  alreadyExists,
  attachmentEndpointId,
  begin,
  bindStep,
  Cidr,
  createEndpoint,
  deleteEndpoint,
  doStep,
  ensureNetwork,
  getEndpoint,
  invalidConfig,
  join,
  leave,
  lockedEndpoint,
  type AddressRequest,
  type ContainerId,
  type CoreError,
  type CreateEndpointRequest,
  type Endpoint,
  type EndpointId,
  type Env,
  type Flow,
  type IfName,
  type JoinResult,
  type Network,
  type NetworkSpec,
  type SagaEnv,
  type SandboxKey
} from '@isthmus/core'
import type { CniError } from '../protocol/Error.js'
import { appendResult, type Result } from '../protocol/Result.js'
import { recordOnlyDataplane } from '../recordOnly.js'
import {
  addressRequestsOf,
  contrailAddressRequests,
  controllerMismatch,
  ipamModeOf,
  isIpamCall,
  portMappingsOf,
  requestedIps,
  requestedMac,
  routesOf,
  toCniError,
  toCniResult,
  clusterConflict,
  toContrailNetworkSpec,
  toDelegatedNetworkSpec,
  toIpamNetworkSpec,
  toIpamResult,
  toNetworkSpec
} from '../translate.js'
import {
  answerOf,
  cniStepErrors,
  delegateAdd,
  prevResultOf,
  runDelegate,
  runFlow,
  withCore,
  type CommandContext,
  type CommandTask,
  type StepError
} from './context.js'

/** The attachment ADD works on; the env table guarantees all three for ADD. */
const attachmentOf = (ctx: CommandContext) => ({
  containerId: ctx.args.containerId as ContainerId,
  ifName: ctx.args.ifName as IfName,
  netns: ctx.args.netns as SandboxKey
})

type Routes = ReturnType<typeof routesOf>

/** @category commands */
export const add = (ctx: CommandContext): CommandTask => {
  const { conf } = ctx.netconf
  const conflict = clusterConflict(conf, ctx.runtime.selfNames)
  if (conflict !== undefined) return TE.left(conflict)
  if (isIpamCall(conf, ctx.runtime.selfNames)) {
    return conf.contrail === undefined
      ? ipamAdd(ctx)
      : TE.left(
          toCniError(
            invalidConfig(
              'contrail: isthmus as the IPAM of another plugin cannot use a controller; use "type": "isthmus"'
            )
          )
        )
  }
  const mode = ipamModeOf(conf, ctx.runtime.selfNames)
  const ours = (): TE.TaskEither<CniError, Result> =>
    conf.contrail !== undefined
      ? contrailAdd(ctx)
      : mode._tag === 'Builtin'
        ? builtinAdd(ctx)
        : delegatedAdd(ctx, mode.plugin)
  return pipe(
    TE.fromEither(prevResultOf(ctx)),
    TE.bindTo('prev'),
    TE.bind('result', ours),
    // Chained after another plugin: its result first, ours appended (CNI SPEC §prevResult).
    TE.map(({ prev, result }) => (prev === undefined ? result : appendResult(prev, result)))
  )
}

const builtinAdd = (ctx: CommandContext): TE.TaskEither<CniError, Result> =>
  pipe(
    E.Do,
    E.bind('spec', () => toNetworkSpec(ctx.netconf)),
    E.bind('ips', () => requestedIps(ctx.netconf.conf, ctx.args.args)),
    E.bind('addresses', ({ spec, ips }) => addressRequestsOf(spec.subnets, ips)),
    TE.fromEither,
    TE.chain(({ spec, addresses }) =>
      attachWithCore(ctx, spec, addresses, (network) => routesOf(ctx.netconf.conf, network))
    )
  )

/**
 * A network that names a controller: the controller assigns address, MAC and gateway
 * (ensureNetwork binds the virtual network, createEndpoint makes interface, VM and
 * instance-ip), and the vRouter agent gets the port as the last step of createEndpoint.
 */
const contrailAdd = (ctx: CommandContext): TE.TaskEither<CniError, Result> =>
  pipe(
    E.Do,
    E.bind('spec', () => toContrailNetworkSpec(ctx.netconf, ctx.runtime.selfNames)),
    E.bind('ips', () => requestedIps(ctx.netconf.conf, ctx.args.args)),
    E.bind('addresses', ({ ips }) => contrailAddressRequests(ips)),
    TE.fromEither,
    TE.chain(({ spec, addresses }) =>
      attachWithCore(ctx, spec, addresses, (network) => routesOf(ctx.netconf.conf, network))
    )
  )

/**
 * The delegate allocates, then the attachment is made with its addresses. When the attachment
 * fails, the saga gives the address back (CNI SPEC: on failure after IPAM, run IPAM DEL).
 */
const delegatedAdd = (ctx: CommandContext, plugin: string): TE.TaskEither<CniError, Result> =>
  pipe(
    // Everything that can be refused without side effects is checked before the delegate allocates.
    TE.fromEither(requestedMac(ctx.netconf.conf, ctx.args.args)),
    TE.chain(() => pipe(delegatedSaga(ctx, plugin)({ log: ctx.log }), TE.mapLeft(answerOf)))
  )

const delegatedSaga = (ctx: CommandContext, plugin: string) =>
  pipe(
    begin<SagaEnv, StepError>('ADD', cniStepErrors),
    bindStep(
      'ipam',
      () => () => pipe(delegateAdd(ctx, plugin)),
      () => () => pipe(runDelegate(ctx, plugin, 'DEL'))
    ),
    bindStep(
      'attached',
      ({ ipam }) =>
        () =>
          pipe(attachDelegated(ctx, plugin, ipam))
    ),
    RTE.map(({ attached }) => attached)
  )

/** The delegate's addresses, as assigned ones. */
const assignedAddresses = (plugin: string, ipam: Result): E.Either<CniError, ReadonlyArray<AddressRequest>> =>
  pipe(
    ipam.ips ?? [],
    E.traverseArray((ip) =>
      pipe(
        Cidr.decode(ip.address),
        E.bimap(
          () => toCniError(invalidConfig(`${plugin} answered a bad address ${ip.address}`)),
          (cidr): AddressRequest => ({ _tag: 'Assigned', cidr })
        )
      )
    )
  )

const attachDelegated = (ctx: CommandContext, plugin: string, ipam: Result): TE.TaskEither<CniError, Result> =>
  pipe(
    E.Do,
    E.bind('spec', () => toDelegatedNetworkSpec(ctx.netconf, ipam)),
    E.bind('addresses', () => assignedAddresses(plugin, ipam)),
    TE.fromEither,
    TE.chain(({ spec, addresses }) =>
      attachWithCore(ctx, spec, addresses, (network) => routesOf(ctx.netconf.conf, network, ipam.routes ?? []))
    )
  )

// -------------------------------------------------------------------------------------
// the attachment
// -------------------------------------------------------------------------------------

const attachWithCore = (
  ctx: CommandContext,
  spec: NetworkSpec,
  addresses: ReadonlyArray<AddressRequest>,
  routesFor: (network: Network) => Routes
): TE.TaskEither<CniError, Result> =>
  pipe(
    withCore(ctx, ({ env }) =>
      pipe(
        E.Do,
        E.bind('mac', () => requestedMac(ctx.netconf.conf, ctx.args.args)),
        E.bind('portMappings', () => portMappingsOf(ctx.netconf.conf)),
        TE.fromEither,
        TE.chain(({ mac, portMappings }) => {
          const { containerId, ifName, netns } = attachmentOf(ctx)
          const requestOf = (network: Network, id: EndpointId): CreateEndpointRequest => {
            const routes = routesFor(network)
            return {
              id,
              owner: { kind: 'container', containerId, ifName },
              addresses,
              portMappings,
              placement: { _tag: 'PluginMoves', sandbox: netns, ifName },
              ...(mac === undefined ? {} : { mac }),
              ...(routes === undefined ? {} : { routes })
            }
          }
          return attach(ctx, spec, requestOf)(env)
        })
      )
    ),
    TE.chain((joined) => resultOf(ctx, joined))
  )

/**
 * The attachment itself: 1. the network (created on the first ADD, one store read afterwards),
 * 2. a joined attachment of the same (container, ifname) is refused (CNI SPEC: no second ADD
 * without DEL) without touching it, 3. the endpoint, made directly in the namespace, then 4.
 * joined there. A failure at 3 or 4 leaves nothing behind: the runtime's DEL would find nothing
 * left to do.
 */
const attach =
  (ctx: CommandContext, spec: NetworkSpec, requestOf: (network: Network, id: EndpointId) => CreateEndpointRequest) =>
  (env: Env): TE.TaskEither<CniError, JoinResult> => {
    const { containerId, ifName, netns } = attachmentOf(ctx)
    const flow = pipe(
      begin<Env, StepError>('ADD', cniStepErrors),
      bindStep('network', () => ensureNetwork(spec)),
      doStep('binding', ({ network }) => {
        const mismatch = controllerMismatch(spec, network)
        return mismatch === undefined ? RTE.right(undefined) : RTE.left(mismatch)
      }),
      RTE.map((s) => ({ ...s, id: attachmentEndpointId(s.network.id, containerId, ifName) })),
      doStep('existing', ({ id }) => refuseJoined(id, containerId, ifName)),
      // Registered before the endpoint is made, so a createEndpoint that fails half-way is undone too.
      doStep(
        'attachment',
        () => RTE.right(undefined),
        ({ id }) => detach(id)
      ),
      // Made and joined under one hold of the endpoint's lock (the flows take it once, not each).
      bindStep('joined', ({ network, id }) =>
        pipe(
          createRecreatingBridge(ctx, network, requestOf(network, id)),
          RTE.chain(() => join(id, { _tag: 'PluginMoves', sandbox: netns, ifName })),
          lockedEndpoint(id, 'container')
        )
      ),
      RTE.map(({ joined }) => joined)
    )(env)
    return pipe(flow, TE.mapLeft(answerOf))
  }

const refuseJoined = (id: EndpointId, containerId: ContainerId, ifName: IfName): Flow<void> =>
  pipe(
    getEndpoint(id),
    RTE.chain((existing) =>
      O.isSome(existing) && existing.value.sandbox !== undefined
        ? RTE.left(
            alreadyExists('endpoint', id, `${ifName} of container ${containerId} is already attached; DEL it first`)
          )
        : RTE.right(undefined)
    )
  )

const detach = (id: EndpointId): Flow<void> =>
  pipe(
    leave(id),
    RTE.chain(() => deleteEndpoint(id))
  )

/**
 * createEndpoint; when the record outlived its bridge (a reboot, an operator's `ip link del`),
 * the bridge is made again once.
 */
const createRecreatingBridge = (
  ctx: CommandContext,
  network: Network,
  request: CreateEndpointRequest
): Flow<Endpoint> =>
  pipe(
    createEndpoint(network.id, request),
    RTE.orElse((e) =>
      e._tag === 'NotFound' && e.kind === 'network'
        ? pipe(
            RTE.fromIO<void, Env, CoreError>(() =>
              ctx.log.info('bridge missing; recreating it', { networkId: network.id, bridge: network.bridge })
            ),
            RTE.chain(() => (env: Env) => env.dataplane.ensureNetwork(network)),
            RTE.chain(() => createEndpoint(network.id, request))
          )
        : RTE.left(e)
    )
  )

// A MAC the kernel cannot tell is left out of the result, not an error.
const hostMacOf = (ctx: CommandContext, name: string | undefined): T.Task<string | undefined> =>
  name === undefined
    ? T.of(undefined)
    : pipe(
        ctx.runtime.probe.hostMac(name),
        TE.getOrElseW(() => T.of(undefined))
      )

/** 5. The result, with the host-side links' MACs as the kernel has them. */
const resultOf = (ctx: CommandContext, j: JoinResult): TE.TaskEither<CniError, Result> => {
  const { ifName, netns } = attachmentOf(ctx)
  return pipe(
    T.sequenceArray([hostMacOf(ctx, j.network.bridge), hostMacOf(ctx, j.endpoint.hostIfName)]),
    T.map(([bridgeMac, hostMac]) =>
      toCniResult(
        ctx.netconf.conf,
        j.network,
        j.endpoint,
        { netns, ifName, mac: j.placed.mac },
        {
          ...(bridgeMac === undefined ? {} : { bridge: bridgeMac }),
          ...(hostMac === undefined ? {} : { hostVeth: hostMac })
        }
      )
    ),
    TE.rightTask
  )
}

// -------------------------------------------------------------------------------------
// isthmus as an IPAM plugin
// -------------------------------------------------------------------------------------

/** isthmus as the IPAM plugin of another plugin: allocate, record, answer an IPAM result. */
const ipamAdd = (ctx: CommandContext): CommandTask => {
  const { containerId, ifName } = attachmentOf(ctx)
  const { conf } = ctx.netconf
  return pipe(
    E.Do,
    E.bind('spec', () => toIpamNetworkSpec(ctx.netconf)),
    E.bind('ips', () => requestedIps(conf, ctx.args.args)),
    E.bind('addresses', ({ spec, ips }) => addressRequestsOf(spec.subnets, ips)),
    TE.fromEither,
    TE.chain(({ spec, addresses }) =>
      withCore(ctx, (session) => {
        const env: Env = { ...session.env, dataplane: recordOnlyDataplane }
        return pipe(
          runFlow(env, ensureNetwork(spec)),
          TE.chain((network) => {
            const id = attachmentEndpointId(network.id, containerId, ifName)
            // As host-local: exactly ipam.routes (no default route unless listed).
            const routes = routesOf(conf, network, conf.ipam?.routes ?? []) ?? []
            const request = { id, owner: { kind: 'container', containerId, ifName } as const, addresses, routes }
            return pipe(
              runFlow(env, createEndpoint(network.id, request)),
              TE.map((created) => toIpamResult(conf, network, created))
            )
          })
        )
      })
    )
  )
}
