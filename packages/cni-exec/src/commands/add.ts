/**
 * ADD (CNI SPEC §ADD): attach CNI_IFNAME in CNI_NETNS to the netconf's network and print the
 * result. Core flows: ensureNetwork, createEndpoint (placement known, so the sandbox end is made
 * in the namespace directly), join (PluginMoves). With a `contrail` section the controller
 * assigns address, MAC and gateway and the vRouter agent gets the port (both inside
 * createEndpoint). A failing ADD removes what it made (the reference leaves the container veth
 * behind, plugins#29; the controller's objects and the agent port go with it) and gives back a
 * delegated address.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import {
  alreadyExists,
  attachmentEndpointId,
  Cidr,
  createEndpoint,
  deleteEndpoint,
  ensureNetwork,
  getEndpoint,
  invalidConfig,
  join,
  leave,
  type AddressRequest,
  type ContainerId,
  type Env,
  type IfName,
  type Network,
  type NetworkSpec,
  type SandboxKey
} from '@isthmus/core'
import type { CniError } from '../protocol/Error.js'
import { appendResult, decodeResult, type Result } from '../protocol/Result.js'
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
  toContrailNetworkSpec,
  toDelegatedNetworkSpec,
  toIpamNetworkSpec,
  toIpamResult,
  toNetworkSpec
} from '../translate.js'
import { delegateAdd, runDelegate, runFlow, withCore, type CommandContext, type CommandOutcome } from './context.js'

/** The attachment ADD works on; the env table guarantees all three for ADD. */
const attachmentOf = (ctx: CommandContext) => ({
  containerId: ctx.args.containerId as ContainerId,
  ifName: ctx.args.ifName as IfName,
  netns: ctx.args.netns as SandboxKey
})

/** @category commands */
export const add = async (ctx: CommandContext): Promise<CommandOutcome> => {
  const { conf } = ctx.netconf
  if (isIpamCall(conf, ctx.runtime.selfNames)) {
    return conf.contrail === undefined
      ? ipamAdd(ctx)
      : E.left(toCniError(invalidConfig('contrail: isthmus as the IPAM of another plugin cannot use a controller; use "type": "isthmus"')))
  }
  const prev = conf.prevResult === undefined ? E.right(undefined) : decodeResult(conf.prevResult, ctx.netconf.cniVersion)
  if (E.isLeft(prev)) return prev
  const mode = ipamModeOf(conf, ctx.runtime.selfNames)
  const result =
    conf.contrail !== undefined
      ? await contrailAdd(ctx)
      : mode._tag === 'Builtin'
        ? await builtinAdd(ctx)
        : await delegatedAdd(ctx, mode.plugin)
  if (E.isLeft(result) || prev.right === undefined) return result
  // Chained after another plugin: its result first, ours appended (CNI SPEC §prevResult).
  return E.right(appendResult(prev.right, result.right))
}

const builtinAdd = async (ctx: CommandContext): Promise<E.Either<CniError, Result>> => {
  const spec = toNetworkSpec(ctx.netconf)
  if (E.isLeft(spec)) return spec
  const ips = requestedIps(ctx.netconf.conf, ctx.args.args)
  if (E.isLeft(ips)) return ips
  const addresses = addressRequestsOf(spec.right.subnets, ips.right)
  if (E.isLeft(addresses)) return addresses
  return withCore(ctx, ({ env }) => attach(ctx, env, spec.right, addresses.right, (network) => routesOf(ctx.netconf.conf, network)))
}

/**
 * A network that names a controller: the controller assigns address, MAC and gateway
 * (ensureNetwork binds the virtual network, createEndpoint makes interface, VM and
 * instance-ip), and the vRouter agent gets the port as the last step of createEndpoint.
 */
const contrailAdd = async (ctx: CommandContext): Promise<E.Either<CniError, Result>> => {
  const spec = toContrailNetworkSpec(ctx.netconf, ctx.runtime.selfNames)
  if (E.isLeft(spec)) return spec
  const ips = requestedIps(ctx.netconf.conf, ctx.args.args)
  if (E.isLeft(ips)) return ips
  const addresses = contrailAddressRequests(ips.right)
  if (E.isLeft(addresses)) return addresses
  return withCore(ctx, ({ env }) => attach(ctx, env, spec.right, addresses.right, (network) => routesOf(ctx.netconf.conf, network)))
}

const delegatedAdd = async (ctx: CommandContext, plugin: string): Promise<E.Either<CniError, Result>> => {
  // Everything that can be refused without side effects is checked before the delegate allocates.
  const mac = requestedMac(ctx.netconf.conf, ctx.args.args)
  if (E.isLeft(mac)) return mac
  const ipam = await delegateAdd(ctx, plugin)
  if (E.isLeft(ipam)) return ipam
  const attached = await (async (): Promise<E.Either<CniError, Result>> => {
    const spec = toDelegatedNetworkSpec(ctx.netconf, ipam.right)
    if (E.isLeft(spec)) return spec
    const addresses: AddressRequest[] = []
    for (const ip of ipam.right.ips ?? []) {
      const cidr = Cidr.decode(ip.address)
      if (E.isLeft(cidr)) return E.left(toCniError({ _tag: 'InvalidConfig', detail: `${plugin} answered a bad address ${ip.address}` }))
      addresses.push({ _tag: 'Assigned', cidr: cidr.right })
    }
    return withCore(ctx, ({ env }) =>
      attach(ctx, env, spec.right, addresses, (network) => routesOf(ctx.netconf.conf, network, ipam.right.routes ?? []))
    )
  })()
  if (E.isLeft(attached)) {
    // The delegate's address goes back (CNI SPEC: on failure after IPAM, run IPAM DEL).
    const undone = await runDelegate(ctx, plugin, 'DEL')
    if (E.isLeft(undone)) ctx.log.warn('delegated IPAM DEL after a failed ADD failed', { plugin, error: undone.left })
  }
  return attached
}

/**
 * The attachment itself. An attachment that is already joined is refused (CNI SPEC: no second
 * ADD without DEL) without touching it; anything else that fails is undone before returning.
 */
const attach = async (
  ctx: CommandContext,
  env: Env,
  spec: NetworkSpec,
  addresses: ReadonlyArray<AddressRequest>,
  routesFor: (network: Network) => ReturnType<typeof routesOf>
): Promise<E.Either<CniError, Result>> => {
  const { containerId, ifName, netns } = attachmentOf(ctx)
  const mac = requestedMac(ctx.netconf.conf, ctx.args.args)
  if (E.isLeft(mac)) return mac
  const ports = portMappingsOf(ctx.netconf.conf)
  if (E.isLeft(ports)) return ports

  // 1. The network (created on the first ADD, one store read afterwards).
  const network = await runFlow(env, ensureNetwork(spec))
  if (E.isLeft(network)) return network
  const mismatch = controllerMismatch(spec, network.right)
  if (mismatch !== undefined) return E.left(mismatch)
  const id = attachmentEndpointId(network.right.id, containerId, ifName)

  // 2. A joined attachment of the same (container, ifname) stays as it is.
  const existing = await runFlow(env, getEndpoint(id))
  if (E.isLeft(existing)) return existing
  if (O.isSome(existing.right) && existing.right.value.sandbox !== undefined) {
    return E.left(toCniError(alreadyExists('endpoint', id, `${ifName} of container ${containerId} is already attached; DEL it first`)))
  }

  // 3. The endpoint, made directly in the namespace, then 4. joined there.
  const placement = { _tag: 'PluginMoves', sandbox: netns, ifName } as const
  const routes = routesFor(network.right)
  const request = {
    id,
    owner: { kind: 'container', containerId, ifName } as const,
    addresses,
    portMappings: ports.right,
    placement,
    ...(mac.right === undefined ? {} : { mac: mac.right }),
    ...(routes === undefined ? {} : { routes })
  }
  const joined = await (async () => {
    let created = await createEndpoint(network.right.id, request)(env)()
    if (E.isLeft(created) && created.left._tag === 'NotFound' && created.left.kind === 'network') {
      // The record outlived its bridge (a reboot, an operator's `ip link del`): make it again once.
      ctx.log.info('bridge missing; recreating it', { networkId: network.right.id, bridge: network.right.bridge })
      const again = await env.dataplane.ensureNetwork(network.right)()
      if (E.isLeft(again)) return again
      created = await createEndpoint(network.right.id, request)(env)()
    }
    if (E.isLeft(created)) return created
    return join(id, placement, { containerId })(env)()
  })()
  if (E.isLeft(joined)) {
    // Leave nothing behind: the runtime's DEL would find nothing left to do.
    const undone = await deleteAll(env, id)
    if (E.isLeft(undone)) ctx.log.warn('cleanup after a failed ADD failed', { endpointId: id, error: undone.left })
    return E.left(toCniError(joined.left))
  }

  // 5. The result, with the host-side links' MACs as the kernel has them.
  const j = joined.right
  const macOf = async (name: string | undefined): Promise<string | undefined> => {
    if (name === undefined) return undefined
    const m = await ctx.runtime.probe.hostMac(name)()
    return E.isRight(m) ? m.right : undefined
  }
  const [bridgeMac, hostMac] = await Promise.all([macOf(j.network.bridge), macOf(j.endpoint.hostIfName)])
  return E.right(
    toCniResult(ctx.netconf.conf, j.network, j.endpoint, { netns, ifName, mac: j.placed.mac }, {
      ...(bridgeMac === undefined ? {} : { bridge: bridgeMac }),
      ...(hostMac === undefined ? {} : { hostVeth: hostMac })
    })
  )
}

const deleteAll = async (env: Env, id: Parameters<typeof leave>[0]) => {
  const left = await leave(id)(env)()
  if (E.isLeft(left)) return left
  return deleteEndpoint(id)(env)()
}

/** isthmus as the IPAM plugin of another plugin: allocate, record, answer an IPAM result. */
const ipamAdd = async (ctx: CommandContext): Promise<CommandOutcome> => {
  const spec = toIpamNetworkSpec(ctx.netconf)
  if (E.isLeft(spec)) return spec
  const ips = requestedIps(ctx.netconf.conf, ctx.args.args)
  if (E.isLeft(ips)) return ips
  const addresses = addressRequestsOf(spec.right.subnets, ips.right)
  if (E.isLeft(addresses)) return addresses
  const { containerId, ifName } = attachmentOf(ctx)
  return withCore(ctx, async (session) => {
    const env: Env = { ...session.env, dataplane: recordOnlyDataplane }
    const network = await runFlow(env, ensureNetwork(spec.right))
    if (E.isLeft(network)) return network
    const id = attachmentEndpointId(network.right.id, containerId, ifName)
    // As host-local: exactly ipam.routes (no default route unless listed).
    const routes = routesOf(ctx.netconf.conf, network.right, ctx.netconf.conf.ipam?.routes ?? []) ?? []
    const created = await runFlow(
      env,
      createEndpoint(network.right.id, { id, owner: { kind: 'container', containerId, ifName }, addresses: addresses.right, routes })
    )
    if (E.isLeft(created)) return created
    return E.right(toIpamResult(ctx.netconf.conf, network.right, created.right))
  })
}
