/**
 * The `dockerConnect` mode (the Kubernetes contrib `to_docker` idea): Docker itself attaches the
 * container named by CNI_CONTAINERID (started with `--net=none`) to a Docker network through the
 * Engine API, and the plugin answers the runtime with a CNI result built from what Docker did.
 * Nothing is stored by isthmus: Docker holds the attachment, keyed by (container, network).
 *
 * dockerd 20.10 refuses to connect a container that is on `none` (HTTP 400 "container cannot be
 * connected to multiple networks with one of the networks in private (none) mode"), so ADD
 * disconnects it from `none` first, and DEL connects it back when it leaves it on no network.
 * The sandbox (SandboxKey, the namespace) stays the same throughout.
 */
import * as E from 'fp-ts/lib/Either.js'
import { familyOf, type IpAddress, type MacAddress } from '@isthmus/core'
import { Code, cniError, type CniError } from '../protocol/Error.js'
import type { DockerConf } from '../protocol/NetConf.js'
import { appendResult, decodeResult, type Result } from '../protocol/Result.js'
import { requestedIps, requestedMac, toCniError } from '../translate.js'
import type { CommandContext, CommandOutcome } from '../commands/context.js'
import { attachmentOn, onNoneNetwork, type ConnectRequest, type ContainerInspect, type EndpointSettings } from '@isthmus/core'
import { isNoSuch, type DockerClient } from '@isthmus/core'
import { dockerToCni, NO_SUCH_CONTAINER, NO_SUCH_NETWORK } from './errors.js'
import type { DockerPorts } from '@isthmus/core'
import { dockerAddresses, dockerResult } from './result.js'

/** Docker's own network of `--net=none`. */
const NONE = 'none'

interface Shim {
  readonly ctx: CommandContext
  readonly ports: DockerPorts
  readonly docker: DockerClient
  readonly section: DockerConf
}

const checkFailed = (msg: string, details?: string): CniError => cniError(Code.CheckFailed, msg, details)

const lower = (s: string | undefined): string | undefined => s?.toLowerCase()

// -------------------------------------------------------------------------------------
// reads shared by ADD and CHECK
// -------------------------------------------------------------------------------------

const inspectBoth = async (s: Shim): Promise<E.Either<CniError, { network: string; container: ContainerInspect }>> => {
  const [n, c] = await Promise.all([s.docker.inspectNetwork(s.section.network)(), s.docker.inspectContainer(s.ctx.args.containerId ?? '')()])
  if (E.isLeft(n)) return E.left(dockerToCni(n.left, NO_SUCH_NETWORK))
  if (E.isLeft(c)) return E.left(dockerToCni(c.left, NO_SUCH_CONTAINER))
  return E.right({ network: n.right.Id, container: c.right })
}

/**
 * CNI_NETNS must be the namespace Docker put the container in: the runtime and Docker would
 * otherwise disagree about which sandbox the result describes. Compared by device and inode, so
 * `/proc/<pid>/ns/net` and `/var/run/docker/netns/<id>` match when they are one namespace.
 */
const sameNamespace = async (s: Shim, c: ContainerInspect): Promise<E.Either<CniError, void>> => {
  const key = c.NetworkSettings.SandboxKey
  if (!c.State.Running || key === '') {
    return E.left(cniError(Code.TryAgainLater, 'docker container is not running', `container ${c.Id.slice(0, 12)} is ${c.State.Status ?? 'not running'}: it has no network namespace`))
  }
  const netns = s.ctx.args.netns ?? ''
  const [ours, theirs] = await Promise.all([s.ports.namespaceOf(netns)(), s.ports.namespaceOf(key)()])
  if (E.isLeft(ours)) return E.left(toCniError(ours.left))
  // The sandbox vanished between the inspect and now: the container is stopping or restarting.
  if (E.isLeft(theirs)) return E.left(cniError(Code.TryAgainLater, 'docker container sandbox is gone', `${key}: container ${c.Id.slice(0, 12)} is stopping or restarting`))
  if (ours.right.dev === theirs.right.dev && ours.right.ino === theirs.right.ino) return E.right(undefined)
  return E.left(
    cniError(
      Code.InvalidConfig,
      'CNI_NETNS is not the network namespace of the docker container',
      `CNI_NETNS ${netns} is namespace ${ours.right.ino} (dev ${ours.right.dev}); container ${c.Id.slice(0, 12)} has ${key}, namespace ${theirs.right.ino} (dev ${theirs.right.dev})`
    )
  )
}

/** The interface Docker made in the sandbox: the link with the endpoint's MAC. */
const linkNamed = async (s: Shim, key: string, mac: string | undefined): Promise<E.Either<CniError, string>> => {
  const links = await s.ports.links(key)()
  if (E.isLeft(links)) return E.left(toCniError(links.left))
  const found = links.right.find((l) => mac !== undefined && lower(l.mac) === lower(mac))
  return found === undefined
    ? E.left(cniError(Code.Dataplane, 'docker attached the container, but its interface is not in the sandbox', `no link with MAC ${mac ?? '(none)'} in ${key}`))
    : E.right(found.name)
}

// -------------------------------------------------------------------------------------
// ADD
// -------------------------------------------------------------------------------------

/** The connect request: at most one address per family (`ips` capability, args, `IP=`), and the MAC. */
const connectRequest = (ctx: CommandContext, container: string): E.Either<CniError, { readonly body: ConnectRequest; readonly mac?: MacAddress }> => {
  const ips = requestedIps(ctx.netconf.conf, ctx.args.args)
  if (E.isLeft(ips)) return ips
  const mac = requestedMac(ctx.netconf.conf, ctx.args.args)
  if (E.isLeft(mac)) return mac
  const of = (f: 4 | 6): ReadonlyArray<IpAddress> => ips.right.filter((a) => familyOf(a) === f)
  const [v4, v6] = [of(4), of(6)]
  if (v4.length > 1 || v6.length > 1) {
    return E.left(cniError(Code.InvalidConfig, 'invalid network config', 'dockerConnect: Docker takes at most one IPv4 and one IPv6 address per network'))
  }
  const ipam = { ...(v4[0] === undefined ? {} : { IPv4Address: v4[0] }), ...(v6[0] === undefined ? {} : { IPv6Address: v6[0] }) }
  const endpoint = {
    ...(Object.keys(ipam).length === 0 ? {} : { IPAMConfig: ipam }),
    ...(mac.right === undefined ? {} : { MacAddress: mac.right })
  }
  return E.right({
    body: { Container: container, ...(Object.keys(endpoint).length === 0 ? {} : { EndpointConfig: endpoint }) },
    ...(mac.right === undefined ? {} : { mac: mac.right })
  })
}

/** Disconnect again (and back to `none` if it came from there): an ADD that fails leaves nothing. */
const undo = async (s: Shim, network: string, container: string, fromNone: boolean): Promise<void> => {
  const d = await s.docker.disconnect(network, container, true)()
  if (E.isLeft(d) && !isNoSuch(d.left)) s.ctx.log.warn('dockerConnect: disconnect after a failed ADD failed', { network, container, error: d.left })
  if (fromNone) await backToNone(s, container)
}

const backToNone = async (s: Shim, container: string): Promise<void> => {
  const r = await s.docker.connect(NONE, { Container: container })()
  if (E.isLeft(r)) s.ctx.log.warn('dockerConnect: could not put the container back on the none network', { container, error: r.left })
}

const macIgnored = (wanted: MacAddress, got: string | undefined): CniError =>
  cniError(
    Code.UnsupportedField,
    `unsupported field mac=${JSON.stringify(wanted)}`,
    `docker gave the interface ${got ?? 'no MAC'}: a MAC on network connect needs Docker 25 (API 1.44); dockerd 20.10 ignores it`
  )

/** @category commands */
export const connectAdd = async (s: Shim): Promise<CommandOutcome> => {
  const { ctx } = s
  const prev = ctx.netconf.conf.prevResult === undefined ? E.right(undefined) : decodeResult(ctx.netconf.conf.prevResult, ctx.netconf.cniVersion)
  if (E.isLeft(prev)) return prev
  const found = await inspectBoth(s)
  if (E.isLeft(found)) return found
  const { network, container: c } = found.right
  if (attachmentOn(c, network) !== undefined) {
    return E.left(cniError(Code.InvalidConfig, 'docker container already attached', `container ${c.Id.slice(0, 12)} is on docker network ${s.section.network}; DEL it first`))
  }
  const request = connectRequest(ctx, c.Id)
  if (E.isLeft(request)) return request
  const netns = await sameNamespace(s, c)
  if (E.isLeft(netns)) return netns

  // Docker refuses a second network next to `none` (see the module comment).
  const fromNone = onNoneNetwork(c)
  if (fromNone) {
    const off = await s.docker.disconnect(NONE, c.Id)()
    if (E.isLeft(off) && !isNoSuch(off.left)) return E.left(dockerToCni(off.left))
  }
  const on = await s.docker.connect(network, request.right.body)()
  if (E.isLeft(on)) {
    if (fromNone) await backToNone(s, c.Id)
    return E.left(dockerToCni(on.left, NO_SUCH_NETWORK))
  }

  const result = await describeAttachment(s, c.Id, network, request.right.mac)
  if (E.isLeft(result)) {
    await undo(s, network, c.Id, fromNone)
    return result
  }
  if (result.right.ifName !== ctx.args.ifName) {
    // Docker names the interface itself (eth0, eth1, … in the order of connects) and tracks it by that name.
    ctx.log.warn('dockerConnect: docker named the interface differently from CNI_IFNAME', { asked: ctx.args.ifName, named: result.right.ifName })
  }
  return E.right(prev.right === undefined ? result.right.result : appendResult(prev.right, result.right.result))
}

/** After the connect: Docker's view of the endpoint, the interface in the sandbox, its routes. */
const describeAttachment = async (
  s: Shim,
  container: string,
  network: string,
  wantedMac: MacAddress | undefined
): Promise<E.Either<CniError, { readonly result: Result; readonly ifName: string }>> => {
  const after = await s.docker.inspectContainer(container)()
  if (E.isLeft(after)) return E.left(dockerToCni(after.left, NO_SUCH_CONTAINER))
  const c = after.right
  const ep = attachmentOn(c, network)
  if (ep === undefined) return E.left(cniError(Code.DockerRefused, 'docker shows no attachment after connect', `container ${container.slice(0, 12)}, network ${network.slice(0, 12)}`))
  if (wantedMac !== undefined && lower(ep.MacAddress) !== lower(wantedMac)) return E.left(macIgnored(wantedMac, ep.MacAddress))
  const key = c.NetworkSettings.SandboxKey
  const ifName = await linkNamed(s, key, ep.MacAddress)
  if (E.isLeft(ifName)) return ifName
  const routes = await s.ports.routes(key, ifName.right)()
  if (E.isLeft(routes)) return E.left(toCniError(routes.left))
  return E.right({ ifName: ifName.right, result: dockerResult(c, ep, ifName.right, routes.right, s.ctx.netconf.conf.dns) })
}

// -------------------------------------------------------------------------------------
// DEL
// -------------------------------------------------------------------------------------

/**
 * Disconnect; success when the container or the network is gone or the container is not on the
 * network. A `--net=none` container left on no network goes back to `none`, as it started.
 *
 * @category commands
 */
export const connectDel = async (s: Shim): Promise<CommandOutcome> => {
  const [n, c] = await Promise.all([s.docker.inspectNetwork(s.section.network)(), s.docker.inspectContainer(s.ctx.args.containerId ?? '')()])
  if (E.isLeft(n)) return isNoSuch(n.left) ? E.right(undefined) : E.left(dockerToCni(n.left))
  if (E.isLeft(c)) return isNoSuch(c.left) ? E.right(undefined) : E.left(dockerToCni(c.left))
  const container = c.right
  if (attachmentOn(container, n.right.Id) === undefined) return E.right(undefined)
  const off = await s.docker.disconnect(n.right.Id, container.Id)()
  // 404: removed meanwhile; 500 "is not connected": a parallel DEL was first.
  if (E.isLeft(off) && !isNoSuch(off.left) && !/is not connected/.test(off.left._tag === 'Refused' ? off.left.message : '')) {
    return E.left(dockerToCni(off.left))
  }
  const others = Object.values(container.NetworkSettings.Networks ?? {}).filter((e) => e.NetworkID !== n.right.Id)
  if (container.HostConfig.NetworkMode === NONE && others.length === 0) await backToNone(s, container.Id)
  return E.right(undefined)
}

// -------------------------------------------------------------------------------------
// CHECK
// -------------------------------------------------------------------------------------

/**
 * Docker still has the attachment, in the namespace CNI_NETNS names, with prevResult's MAC and
 * addresses, and the interface is in the sandbox.
 *
 * @category commands
 */
export const connectCheck = async (s: Shim): Promise<CommandOutcome> => {
  const { ctx } = s
  if (ctx.netconf.conf.prevResult === undefined) return E.left(cniError(Code.InvalidConfig, 'required prevResult missing'))
  const prev = decodeResult(ctx.netconf.conf.prevResult, ctx.netconf.cniVersion)
  if (E.isLeft(prev)) return prev
  const found = await inspectBoth(s)
  if (E.isLeft(found)) return found
  const { network, container: c } = found.right
  const ep: EndpointSettings | undefined = attachmentOn(c, network)
  if (ep === undefined) return E.left(checkFailed('docker has no such attachment', `container ${c.Id.slice(0, 12)} is not on docker network ${s.section.network}`))
  const netns = await sameNamespace(s, c)
  if (E.isLeft(netns)) return netns
  const key = c.NetworkSettings.SandboxKey
  const index = (prev.right.interfaces ?? []).findIndex((i) => i.sandbox === key && lower(i.mac) === lower(ep.MacAddress))
  if (index < 0) return E.left(checkFailed('prevResult names no interface with docker\'s MAC', `${ep.MacAddress ?? '(none)'} in ${key}`))
  const listed = (prev.right.ips ?? []).filter((ip) => ip.interface === index).map((ip) => ip.address.toLowerCase())
  const held = dockerAddresses(ep).map((a) => a.toLowerCase())
  if (listed.length !== held.length || held.some((a) => !listed.includes(a))) {
    return E.left(checkFailed('docker holds other addresses than prevResult', `docker: ${held.join(', ') || 'none'}; prevResult: ${listed.join(', ') || 'none'}`))
  }
  const link = await linkNamed(s, key, ep.MacAddress)
  return E.isLeft(link) ? E.left(checkFailed(link.left.msg, link.left.details)) : E.right(undefined)
}

// -------------------------------------------------------------------------------------
// GC, STATUS
// -------------------------------------------------------------------------------------

/** Docker owns every attachment of this mode, so GC has nothing of isthmus's to collect. @category commands */
export const connectGc = async (_s: Shim): Promise<CommandOutcome> => E.right(undefined)

/** Ready when dockerd answers `/_ping`; else code 50. @category commands */
export const connectStatus = async (s: Shim): Promise<CommandOutcome> => {
  const r = await s.docker.ping()()
  return E.isLeft(r) ? E.left(cniError(Code.Unavailable, 'plugin not available', dockerToCni(r.left).details)) : E.right(undefined)
}

export type { Shim }
