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
import { sequenceT } from 'fp-ts/lib/Apply.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as O from 'fp-ts/lib/Option.js'
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import * as T from 'fp-ts/lib/Task.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import {
  begin,
  bindStep,
  doStep,
  familyOf,
  type IpAddress,
  type MacAddress,
  type SagaEnv,
  type Step
} from '@isthmus/core'
import { Code, cniError, type CniError } from '../protocol/Error.js'
import type { DockerConf } from '../protocol/NetConf.js'
import { appendResult, decodeResult, type Result } from '../protocol/Result.js'
import { requestedIps, requestedMac, toCniError } from '../translate.js'
import {
  answerOf,
  cniStepErrors,
  prevResultOf,
  type CommandContext,
  type CommandTask,
  type StepError
} from '../commands/context.js'
import {
  attachmentOn,
  isNoSuch,
  onNoneNetwork,
  type ConnectRequest,
  type ContainerInspect,
  type DockerClient,
  type DockerError,
  type DockerPorts,
  type EndpointSettings,
  type NamespaceId
} from '@isthmus/core'
import { dockerToCni, NO_SUCH_CONTAINER, NO_SUCH_NETWORK } from './errors.js'
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

const short = (id: string): string => id.slice(0, 12)

// -------------------------------------------------------------------------------------
// reads shared by ADD and CHECK
// -------------------------------------------------------------------------------------

interface Both {
  readonly network: string
  readonly container: ContainerInspect
}

// Both asked at once; the network's failure is reported first.
const inspectBoth = (s: Shim): TE.TaskEither<CniError, Both> =>
  pipe(
    sequenceT(TE.ApplyPar)(
      pipe(
        s.docker.inspectNetwork(s.section.network),
        TE.mapLeft((e) => dockerToCni(e, NO_SUCH_NETWORK))
      ),
      pipe(
        s.docker.inspectContainer(s.ctx.args.containerId ?? ''),
        TE.mapLeft((e) => dockerToCni(e, NO_SUCH_CONTAINER))
      )
    ),
    TE.map(([n, container]) => ({ network: n.Id, container }))
  )

const notRunning = (c: ContainerInspect): CniError =>
  cniError(
    Code.TryAgainLater,
    'docker container is not running',
    `container ${short(c.Id)} is ${c.State.Status ?? 'not running'}: it has no network namespace`
  )

// The sandbox vanished between the inspect and now: the container is stopping or restarting.
const sandboxGone = (c: ContainerInspect, key: string): CniError =>
  cniError(
    Code.TryAgainLater,
    'docker container sandbox is gone',
    `${key}: container ${short(c.Id)} is stopping or restarting`
  )

const otherNamespace = (c: ContainerInspect, netns: string, ours: NamespaceId, theirs: NamespaceId): CniError =>
  cniError(
    Code.InvalidConfig,
    'CNI_NETNS is not the network namespace of the docker container',
    `CNI_NETNS ${netns} is namespace ${ours.ino} (dev ${ours.dev}); ` +
      `container ${short(c.Id)} has ${c.NetworkSettings.SandboxKey}, namespace ${theirs.ino} (dev ${theirs.dev})`
  )

/**
 * CNI_NETNS must be the namespace Docker put the container in: the runtime and Docker would
 * otherwise disagree about which sandbox the result describes. Compared by device and inode, so
 * `/proc/<pid>/ns/net` and `/var/run/docker/netns/<id>` match when they are one namespace.
 */
const sameNamespace = (s: Shim, c: ContainerInspect): TE.TaskEither<CniError, void> => {
  const key = c.NetworkSettings.SandboxKey
  if (!c.State.Running || key === '') return TE.left(notRunning(c))
  const netns = s.ctx.args.netns ?? ''
  return pipe(
    sequenceT(TE.ApplyPar)(
      pipe(s.ports.namespaceOf(netns), TE.mapLeft(toCniError)),
      pipe(
        s.ports.namespaceOf(key),
        TE.mapLeft(() => sandboxGone(c, key))
      )
    ),
    TE.chainEitherK(([ours, theirs]) =>
      ours.dev === theirs.dev && ours.ino === theirs.ino
        ? E.right(undefined)
        : E.left(otherNamespace(c, netns, ours, theirs))
    )
  )
}

/** The interface Docker made in the sandbox: the link with the endpoint's MAC. */
const linkNamed = (s: Shim, key: string, mac: string | undefined): TE.TaskEither<CniError, string> =>
  pipe(
    s.ports.links(key),
    TE.mapLeft(toCniError),
    TE.chainEitherK((links) =>
      pipe(
        links.find((l) => mac !== undefined && lower(l.mac) === lower(mac)),
        E.fromNullable(
          cniError(
            Code.Dataplane,
            'docker attached the container, but its interface is not in the sandbox',
            `no link with MAC ${mac ?? '(none)'} in ${key}`
          )
        ),
        E.map((l) => l.name)
      )
    )
  )

// -------------------------------------------------------------------------------------
// ADD
// -------------------------------------------------------------------------------------

/** The connect request: at most one address per family (`ips` capability, args, `IP=`), and the MAC. */
interface ConnectRequestOf {
  readonly body: ConnectRequest
  readonly mac?: MacAddress
}

const connectRequest = (ctx: CommandContext, container: string): E.Either<CniError, ConnectRequestOf> =>
  pipe(
    E.Do,
    E.bind('ips', () => requestedIps(ctx.netconf.conf, ctx.args.args)),
    E.bind('mac', () => requestedMac(ctx.netconf.conf, ctx.args.args)),
    E.chain(({ ips, mac }) => {
      const of = (f: 4 | 6): ReadonlyArray<IpAddress> => ips.filter((a) => familyOf(a) === f)
      const [v4, v6] = [of(4), of(6)]
      if (v4.length > 1 || v6.length > 1) {
        const one = 'dockerConnect: Docker takes at most one IPv4 and one IPv6 address per network'
        return E.left(cniError(Code.InvalidConfig, 'invalid network config', one))
      }
      return E.right(connectBody(container, v4[0], v6[0], mac))
    })
  )

const connectBody = (
  container: string,
  v4: IpAddress | undefined,
  v6: IpAddress | undefined,
  mac: MacAddress | undefined
): ConnectRequestOf => {
  const ipam = { ...(v4 === undefined ? {} : { IPv4Address: v4 }), ...(v6 === undefined ? {} : { IPv6Address: v6 }) }
  const endpoint = {
    ...(Object.keys(ipam).length === 0 ? {} : { IPAMConfig: ipam }),
    ...(mac === undefined ? {} : { MacAddress: mac })
  }
  return {
    body: { Container: container, ...(Object.keys(endpoint).length === 0 ? {} : { EndpointConfig: endpoint }) },
    ...(mac === undefined ? {} : { mac })
  }
}

/** A Docker call as a step of core's saga: its failure as the CNI error it answers. */
const step =
  <A>(task: TE.TaskEither<DockerError, A>, onNoSuch?: CniError): Step<SagaEnv, A, StepError> =>
  () =>
    pipe(
      task,
      TE.mapLeft((e) => dockerToCni(e, onNoSuch))
    )

// Already gone is as good as disconnected.
const disconnect = (s: Shim, network: string, container: string, force?: boolean): TE.TaskEither<DockerError, void> =>
  pipe(
    s.docker.disconnect(network, container, force),
    TE.orElse((e) => (isNoSuch(e) ? TE.right(undefined) : TE.left(e)))
  )

const backToNone = (s: Shim, container: string): TE.TaskEither<DockerError, void> =>
  s.docker.connect(NONE, { Container: container })

const macIgnored = (wanted: MacAddress, got: string | undefined): CniError =>
  cniError(
    Code.UnsupportedField,
    `unsupported field mac=${JSON.stringify(wanted)}`,
    `docker gave the interface ${got ?? 'no MAC'}: ` +
      'a MAC on network connect needs Docker 25 (API 1.44); dockerd 20.10 ignores it'
  )

/**
 * Off `none` (Docker refuses a second network next to it, see the module comment), connected,
 * then described. A failure after a step undoes the steps before it through core's saga:
 * disconnected again, and back to `none` if it came from there; an ADD that fails leaves nothing.
 */
const connectSaga = (s: Shim, c: ContainerInspect, network: string, request: ConnectRequestOf) => {
  const fromNone = onNoneNetwork(c)
  return pipe(
    begin<SagaEnv, StepError>('dockerConnect ADD', cniStepErrors),
    doStep(
      'leave none',
      () => (fromNone ? step(disconnect(s, NONE, c.Id)) : RTE.right(undefined)),
      fromNone ? () => step(backToNone(s, c.Id)) : undefined
    ),
    doStep(
      'connect',
      () => step(s.docker.connect(network, request.body), NO_SUCH_NETWORK),
      () => step(disconnect(s, network, c.Id, true))
    ),
    bindStep('attachment', () => () => pipe(describeAttachment(s, c.Id, network, request.mac))),
    RTE.map(({ attachment }) => attachment)
  )
}

/** @category commands */
export const connectAdd = (s: Shim): CommandTask =>
  pipe(
    TE.fromEither(prevResultOf(s.ctx)),
    TE.bindTo('prev'),
    TE.bind('found', () => inspectBoth(s)),
    TE.bind('request', ({ found: { network, container: c } }) =>
      attachmentOn(c, network) !== undefined
        ? TE.left(
            cniError(
              Code.InvalidConfig,
              'docker container already attached',
              `container ${short(c.Id)} is on docker network ${s.section.network}; DEL it first`
            )
          )
        : TE.fromEither(connectRequest(s.ctx, c.Id))
    ),
    TE.chainFirst(({ found }) => sameNamespace(s, found.container)),
    TE.bind('attached', ({ found, request }) =>
      pipe(connectSaga(s, found.container, found.network, request)({ log: s.ctx.log }), TE.mapLeft(answerOf))
    ),
    TE.map(({ prev, attached }) => {
      if (attached.ifName !== s.ctx.args.ifName) {
        // Docker names the interface itself (eth0, eth1, … in the order of connects) and tracks it by that name.
        s.ctx.log.warn('dockerConnect: docker named the interface differently from CNI_IFNAME', {
          asked: s.ctx.args.ifName,
          named: attached.ifName
        })
      }
      return prev === undefined ? attached.result : appendResult(prev, attached.result)
    })
  )

/** After the connect: Docker's view of the endpoint, the interface in the sandbox, its routes. */
const describeAttachment = (
  s: Shim,
  container: string,
  network: string,
  wantedMac: MacAddress | undefined
): TE.TaskEither<CniError, { readonly result: Result; readonly ifName: string }> =>
  pipe(
    s.docker.inspectContainer(container),
    TE.mapLeft((e) => dockerToCni(e, NO_SUCH_CONTAINER)),
    TE.bindTo('c'),
    TE.bind('ep', ({ c }) => TE.fromEither(endpointAfterConnect(c, container, network, wantedMac))),
    TE.bind('ifName', ({ c, ep }) => linkNamed(s, c.NetworkSettings.SandboxKey, ep.MacAddress)),
    TE.bind('routes', ({ c, ifName }) =>
      pipe(s.ports.routes(c.NetworkSettings.SandboxKey, ifName), TE.mapLeft(toCniError))
    ),
    TE.map(({ c, ep, ifName, routes }) => ({
      ifName,
      result: dockerResult(c, ep, ifName, routes, s.ctx.netconf.conf.dns)
    }))
  )

/** Docker's endpoint on the network, with the MAC asked for (dockerd before 25 ignores it). */
const endpointAfterConnect = (
  c: ContainerInspect,
  container: string,
  network: string,
  wantedMac: MacAddress | undefined
): E.Either<CniError, EndpointSettings> => {
  const ep = attachmentOn(c, network)
  if (ep === undefined) {
    return E.left(
      cniError(
        Code.DockerRefused,
        'docker shows no attachment after connect',
        `container ${short(container)}, network ${short(network)}`
      )
    )
  }
  return wantedMac !== undefined && lower(ep.MacAddress) !== lower(wantedMac)
    ? E.left(macIgnored(wantedMac, ep.MacAddress))
    : E.right(ep)
}

// -------------------------------------------------------------------------------------
// DEL
// -------------------------------------------------------------------------------------

// A 404 is "nothing to do" for DEL.
const unlessGone = <A>(r: E.Either<DockerError, A>): E.Either<CniError, O.Option<A>> =>
  E.isRight(r) ? E.right(O.some(r.right)) : isNoSuch(r.left) ? E.right(O.none) : E.left(dockerToCni(r.left))

// 404: removed meanwhile; 500 "is not connected": a parallel DEL was first.
const alreadyOff = (e: DockerError): boolean =>
  isNoSuch(e) || /is not connected/.test(e._tag === 'Refused' ? e.message : '')

const backToNoneLogged = (s: Shim, container: string): T.Task<void> =>
  pipe(
    backToNone(s, container),
    TE.match(
      (error) =>
        s.ctx.log.warn('dockerConnect: could not put the container back on the none network', { container, error }),
      () => undefined
    )
  )

/** Off the network; back on `none` when it was a `--net=none` container that is now on no network. */
const detachFrom = (s: Shim, network: string, container: ContainerInspect): TE.TaskEither<CniError, void> => {
  if (attachmentOn(container, network) === undefined) return TE.right(undefined)
  const others = Object.values(container.NetworkSettings.Networks ?? {}).filter((e) => e.NetworkID !== network)
  return pipe(
    s.docker.disconnect(network, container.Id),
    TE.orElse((e) => (alreadyOff(e) ? TE.right(undefined) : TE.left(dockerToCni(e)))),
    TE.chainFirstTaskK(() =>
      container.HostConfig.NetworkMode === NONE && others.length === 0
        ? backToNoneLogged(s, container.Id)
        : T.of(undefined)
    )
  )
}

/**
 * Disconnect; success when the container or the network is gone or the container is not on the
 * network. A `--net=none` container left on no network goes back to `none`, as it started.
 *
 * @category commands
 */
export const connectDel = (s: Shim): CommandTask =>
  pipe(
    sequenceT(T.ApplyPar)(
      s.docker.inspectNetwork(s.section.network),
      s.docker.inspectContainer(s.ctx.args.containerId ?? '')
    ),
    // The network's answer first: when it is gone, the container's does not matter.
    T.map(([n, c]) =>
      pipe(
        unlessGone(n),
        E.chain(
          O.match(
            () => E.right(O.none),
            (network) => pipe(unlessGone(c), E.map(O.map((container) => ({ network, container }))))
          )
        )
      )
    ),
    TE.chain(
      O.match(
        () => TE.right(undefined),
        ({ network, container }) => detachFrom(s, network.Id, container)
      )
    ),
    TE.map(() => undefined)
  )

// -------------------------------------------------------------------------------------
// CHECK
// -------------------------------------------------------------------------------------

/** Docker's addresses and MAC are the ones prevResult lists for the interface. */
const matchesPrev = (c: ContainerInspect, ep: EndpointSettings, prev: Result): E.Either<CniError, void> => {
  const key = c.NetworkSettings.SandboxKey
  const index = (prev.interfaces ?? []).findIndex((i) => i.sandbox === key && lower(i.mac) === lower(ep.MacAddress))
  if (index < 0) {
    return E.left(
      checkFailed("prevResult names no interface with docker's MAC", `${ep.MacAddress ?? '(none)'} in ${key}`)
    )
  }
  const listed = (prev.ips ?? []).filter((ip) => ip.interface === index).map((ip) => ip.address.toLowerCase())
  const held = dockerAddresses(ep).map((a) => a.toLowerCase())
  if (listed.length !== held.length || held.some((a) => !listed.includes(a))) {
    const both = `docker: ${held.join(', ') || 'none'}; prevResult: ${listed.join(', ') || 'none'}`
    return E.left(checkFailed('docker holds other addresses than prevResult', both))
  }
  return E.right(undefined)
}

/**
 * Docker still has the attachment, in the namespace CNI_NETNS names, with prevResult's MAC and
 * addresses, and the interface is in the sandbox.
 *
 * @category commands
 */
export const connectCheck = (s: Shim): CommandTask => {
  const { ctx } = s
  if (ctx.netconf.conf.prevResult === undefined) {
    return TE.left(cniError(Code.InvalidConfig, 'required prevResult missing'))
  }
  return pipe(
    TE.fromEither(decodeResult(ctx.netconf.conf.prevResult, ctx.netconf.cniVersion)),
    TE.bindTo('prev'),
    TE.bind('found', () => inspectBoth(s)),
    TE.bind('ep', ({ found: { network, container: c } }) =>
      TE.fromEither(
        E.fromNullable(
          checkFailed(
            'docker has no such attachment',
            `container ${short(c.Id)} is not on docker network ${s.section.network}`
          )
        )(attachmentOn(c, network))
      )
    ),
    TE.chainFirst(({ found }) => sameNamespace(s, found.container)),
    TE.chainFirstEitherK(({ found, ep, prev }) => matchesPrev(found.container, ep, prev)),
    TE.chain(({ found, ep }) =>
      pipe(
        linkNamed(s, found.container.NetworkSettings.SandboxKey, ep.MacAddress),
        TE.bimap(
          (e) => checkFailed(e.msg, e.details),
          () => undefined
        )
      )
    )
  )
}

// -------------------------------------------------------------------------------------
// GC, STATUS
// -------------------------------------------------------------------------------------

/** Docker owns every attachment of this mode, so GC has nothing of isthmus's to collect. @category commands */
export const connectGc = (_s: Shim): CommandTask => TE.right(undefined)

/** dockerd's `/_ping`, failing with code 50. @category utils */
export const dockerReady = (docker: DockerClient): TE.TaskEither<CniError, void> =>
  pipe(
    docker.ping(),
    TE.mapLeft((e) => cniError(Code.Unavailable, 'plugin not available', dockerToCni(e).details))
  )

/** Ready when dockerd answers `/_ping`; else code 50. @category commands */
export const connectStatus = (s: Shim): CommandTask =>
  pipe(
    dockerReady(s.docker),
    TE.map(() => undefined)
  )

export type { Shim }
