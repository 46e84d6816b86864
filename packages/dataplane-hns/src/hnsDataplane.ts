/**
 * The Dataplane port over HNS v1, as the Contrail Windows driver used it: one transparent HNS
 * network per network (named `network.controller.hostNetworkName`, else `isthmus:<network id>`),
 * one HNS endpoint per endpoint (named by the endpoint id, with its IPv4 address, prefix length,
 * gateway and MAC). HNS v1 has no lookup by name, so every lookup lists and filters.
 *
 * Docker on Windows attaches the endpoint itself: it reads the HNS endpoint's ID (returned here
 * as `hostEndpointId`) and hands it to HCS when the container starts, so `place` only checks that
 * the endpoint is there. A create whose answer never came back (a dropped connection, a timeout)
 * may still have happened in HNS: what carries the name is removed before the error is returned,
 * so a failed call leaves nothing half made.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as T from 'fp-ts/lib/Task.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import {
  EndpointId,
  hostIfName,
  io,
  MacAddress,
  notFound,
  splitCidr,
  unsupportedField,
  type CoreError,
  type Dataplane,
  type Endpoint,
  type EnsuredEndpoint,
  type HostNetwork,
  type IfName,
  type Network
} from '@isthmus/core'
import type { Hns } from './client.js'
import { fromHnsMac, type HnsEndpoint, type HnsNetwork } from './Hns.js'
import { hnsEndpointRequest, hnsNetworkName, hnsNetworkRequest, ISTHMUS_NETWORK_PREFIX } from './requests.js'

/** The Contrail driver's host network names start so (`Contrail:<tenant>:<network>:<subnet>`). */
const CONTRAIL_NETWORK_PREFIX = 'Contrail:'

/** @category model */
export interface HnsDataplaneOptions {
  readonly hns: Hns
  /**
   * Attempts at creating a network while HNS answers `Unspecified error`, its failure under load
   * or while the virtual switch is being made (default 4).
   */
  readonly networkCreateAttempts?: number
  /** The wait before the second attempt, doubled before each next one (default 2000 ms). */
  readonly retryDelayMs?: number
}

/** An HNS network isthmus names: a Contrail host network or one of its own. */
const isOurNetworkName = (name: string): boolean =>
  name.startsWith(CONTRAIL_NETWORK_PREFIX) || name.startsWith(ISTHMUS_NETWORK_PREFIX)

const ignore = TE.map((): void => undefined)

/** Run `te`, then `cleanup` when it failed; the first failure is the one returned. */
const cleanupOnFailure =
  <A>(cleanup: () => TE.TaskEither<CoreError, unknown>) =>
  (te: TE.TaskEither<CoreError, A>): TE.TaskEither<CoreError, A> =>
    pipe(
      te,
      TE.orElse((e) =>
        pipe(
          cleanup(),
          T.map(() => E.left(e))
        )
      )
    )

const macOf = (ep: HnsEndpoint): E.Either<CoreError, MacAddress> => {
  const mac = fromHnsMac(ep.MacAddress ?? '')
  return MacAddress.is(mac) ? E.right(mac) : E.left(io(`endpoint ${ep.Name}`, `HNS gave it no usable MAC (${mac})`))
}

/** Whether an HNS endpoint found by name is the one `endpoint` asks for (address, and MAC when set). */
const fits = (ep: HnsEndpoint, endpoint: Endpoint): boolean => {
  const a = endpoint.addresses.find((x) => !x.cidr.includes(':'))
  const ipOk = a === undefined || ep.IPAddress === splitCidr(a.cidr).address
  const macOk = endpoint.mac === undefined || fromHnsMac(ep.MacAddress ?? '') === endpoint.mac
  return ipOk && macOk
}

/**
 * The HNS dataplane over an `Hns` client (`hnsClient(windowsHnsTransport())` on Windows).
 *
 * @category constructors
 */
export const hnsDataplane = (options: HnsDataplaneOptions): Dataplane => {
  const { hns } = options
  const attempts = Math.max(1, options.networkCreateAttempts ?? 4)
  const firstDelay = options.retryDelayMs ?? 2000

  const networksNamed = (name: string): TE.TaskEither<CoreError, ReadonlyArray<HnsNetwork>> =>
    pipe(
      hns.listNetworks(),
      TE.map((ns) => ns.filter((n) => n.Name === name))
    )
  const deleteNetworksNamed = (name: string): TE.TaskEither<CoreError, void> =>
    pipe(networksNamed(name), TE.chain(TE.traverseSeqArray((n) => hns.deleteNetwork(n.ID))), ignore)
  const endpointsOf = (endpoint: Endpoint, onNetwork: (ep: HnsEndpoint) => boolean) =>
    pipe(
      hns.listEndpoints(),
      TE.map((eps) => eps.filter((ep) => ep.Name === endpoint.id && onNetwork(ep)))
    )
  const deleteEndpoints = (eps: ReadonlyArray<HnsEndpoint>): TE.TaskEither<CoreError, void> =>
    pipe(
      eps,
      TE.traverseSeqArray((ep) => hns.deleteEndpoint(ep.ID)),
      ignore
    )

  // HNS's transient failure is retried; any other failure is final.
  const createNetworkRetrying = (
    req: Parameters<Hns['createNetwork']>[0],
    attempt: number,
    delay: number
  ): TE.TaskEither<CoreError, HnsNetwork> =>
    pipe(
      hns.createNetwork(req),
      TE.orElse((e) =>
        e._tag === 'Transient' && attempt < attempts
          ? pipe(
              // a lost answer may hide a made network: never create a second of the same name
              deleteNetworksNamed(req.Name),
              TE.chain(() => TE.fromTask(T.delay(delay)(T.of(undefined)))),
              TE.chain(() => createNetworkRetrying(req, attempt + 1, delay * 2))
            )
          : TE.left(e)
      )
    )

  const onNetwork = (network: Network): TE.TaskEither<CoreError, HnsNetwork> => {
    const name = hnsNetworkName(network)
    return pipe(
      hns.findNetworkByName(name),
      TE.chain((n) =>
        n !== undefined
          ? TE.right(n)
          : TE.left(
              notFound(
                'network',
                `${name} in HNS (the host network of ${network.name}, removed outside isthmus?): ` +
                  `remove the network (docker network rm) and create it again`
              )
            )
      )
    )
  }

  const createEndpoint = (endpoint: Endpoint, net: HnsNetwork): TE.TaskEither<CoreError, HnsEndpoint> =>
    pipe(
      TE.fromEither(hnsEndpointRequest(endpoint, net.ID)),
      TE.chain((req) =>
        pipe(
          hns.createEndpoint(req),
          cleanupOnFailure(() =>
            pipe(
              endpointsOf(endpoint, (ep) => ep.VirtualNetwork === net.ID),
              TE.chain(deleteEndpoints)
            )
          )
        )
      )
    )

  return {
    // The gateway of a transparent network is the fabric's (Contrail: the vRouter), not the host's.
    routesSubnetsOnHost: false,

    ensureNetwork: (network) =>
      pipe(
        TE.fromEither(hnsNetworkRequest(network)),
        TE.chain((req) =>
          pipe(
            hns.findNetworkByName(req.Name),
            TE.chain((found): TE.TaskEither<CoreError, HostNetwork> =>
              found !== undefined
                ? TE.right({ device: found.ID, created: false })
                : pipe(
                    createNetworkRetrying(req, 1, firstDelay),
                    cleanupOnFailure(() => deleteNetworksNamed(req.Name)),
                    TE.map((n) => ({ device: n.ID, created: true }))
                  )
            )
          )
        )
      ),

    deleteNetwork: (network) => deleteNetworksNamed(hnsNetworkName(network)),

    ensureEndpoint: ({ endpoint, network }) =>
      pipe(
        onNetwork(network),
        TE.chain((net) =>
          pipe(
            endpointsOf(endpoint, (ep) => ep.VirtualNetwork === net.ID),
            TE.chain((found) => {
              const same = found.find((ep) => fits(ep, endpoint))
              if (same !== undefined) return TE.right(same)
              // one of the same name that does not fit is left over from an earlier attempt
              return pipe(
                deleteEndpoints(found),
                TE.chain(() => createEndpoint(endpoint, net))
              )
            })
          )
        ),
        TE.chainEitherK((ep) =>
          pipe(
            macOf(ep),
            E.map((mac): EnsuredEndpoint => ({ mac, hostEndpointId: ep.ID }))
          )
        )
      ),

    place: ({ endpoint, network }, placement) =>
      placement._tag === 'PluginMoves'
        ? TE.left(
            unsupportedField(
              'placement',
              'an HNS endpoint is attached by the container runtime from its ID (Docker on Windows); ' +
                'isthmus cannot move it into a namespace'
            )
          )
        : pipe(
            onNetwork(network),
            TE.chain((net) => endpointsOf(endpoint, (ep) => ep.VirtualNetwork === net.ID)),
            TE.chain((found) => {
              const ep = found.find((x) => fits(x, endpoint))
              return ep === undefined
                ? TE.left(
                    notFound(
                      'endpoint',
                      `${endpoint.id} in HNS (removed outside isthmus?): remove the container and start it again`
                    )
                  )
                : pipe(
                    TE.fromEither(macOf(ep)),
                    TE.map((mac) => ({ ifName: endpoint.peerIfName, mac }))
                  )
            })
          ),

    deleteEndpoint: ({ endpoint, network }) => {
      const name = hnsNetworkName(network)
      return pipe(
        endpointsOf(endpoint, (ep) => ep.ID === endpoint.hostEndpointId || ep.VirtualNetworkName === name),
        TE.chain(deleteEndpoints)
      )
    },

    // A transparent network puts the container on the fabric at its own address; HNS's NAT
    // policies belong to `nat` networks, which this dataplane does not make.
    publishPorts: (_spec, ports) =>
      ports.length === 0
        ? TE.right(undefined)
        : TE.left(
            unsupportedField(
              'portMappings',
              'published ports (-p) on an HNS transparent network: reach the container at its own address'
            )
          ),
    unpublishPorts: () => TE.right(undefined),

    // Each HNS endpoint of ours is shown by the link name its record keeps (`istv…` of its
    // endpoint id, which names it), so gc can tell recorded ones from orphans.
    inventory: (scope) =>
      pipe(
        TE.Do,
        TE.bind('networks', () => hns.listNetworks()),
        TE.bind('endpoints', () => hns.listEndpoints()),
        TE.map(({ networks, endpoints }) => {
          const wanted = scope === undefined ? undefined : new Set(scope.map(hnsNetworkName))
          const ours = networks.filter((n) => (wanted === undefined ? isOurNetworkName(n.Name) : wanted.has(n.Name)))
          const ids = new Set(ours.map((n) => n.ID))
          const eps = endpoints.filter((ep) => ids.has(ep.VirtualNetwork) && EndpointId.is(ep.Name))
          const named = eps.map((ep) => [hostIfName(ep.Name as EndpointId), ep.Name as EndpointId] as const)
          return {
            links: named.map(([link]) => link),
            endpoints: Object.fromEntries(named),
            networks: ours.map((n) => n.Name)
          }
        })
      ),

    removeLink: (link: IfName) =>
      pipe(
        TE.Do,
        TE.bind('networks', () => hns.listNetworks()),
        TE.bind('endpoints', () => hns.listEndpoints()),
        TE.chain(({ networks, endpoints }) => {
          const ids = new Set(networks.filter((n) => isOurNetworkName(n.Name)).map((n) => n.ID))
          return deleteEndpoints(
            endpoints.filter(
              (ep) => ids.has(ep.VirtualNetwork) && EndpointId.is(ep.Name) && hostIfName(ep.Name) === link
            )
          )
        })
      )
  }
}
