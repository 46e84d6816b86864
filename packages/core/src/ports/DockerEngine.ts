/**
 * The Docker Engine API as the CNI frontend's Docker modes see it: the calls they make, what can
 * go wrong, the parts of the answers they read (API 1.41, Docker 20.10; later versions add fields,
 * which pass through unchecked), and the looks inside a container's network namespace. Docker
 * writes `null` for empty lists and maps, so those are nullable here. The adapter is
 * `@isthmus/docker-engine`; the namespace looks are the Linux wiring's.
 */
import type * as TE from 'fp-ts/lib/TaskEither.js'
import * as t from 'io-ts'
import type { CoreError } from '../errors.js'

const nullable = <C extends t.Mixed>(c: C) => t.union([c, t.null])

/** One entry of a container's `NetworkSettings.Networks` (Docker's EndpointSettings). @category codecs */
export const EndpointSettings = t.partial(
  {
    NetworkID: t.string,
    EndpointID: t.string,
    Gateway: t.string,
    IPAddress: t.string,
    IPPrefixLen: t.number,
    IPv6Gateway: t.string,
    GlobalIPv6Address: t.string,
    GlobalIPv6PrefixLen: t.number,
    MacAddress: t.string
  },
  'EndpointSettings'
)
/** @category model */
export type EndpointSettings = t.TypeOf<typeof EndpointSettings>

/** `GET /containers/{id}/json`. @category codecs */
export const ContainerInspect = t.type(
  {
    Id: t.string,
    Name: t.string,
    State: t.intersection([t.type({ Running: t.boolean }), t.partial({ Status: t.string, Pid: t.number })]),
    HostConfig: t.partial({
      NetworkMode: t.string,
      Dns: nullable(t.array(t.string)),
      DnsSearch: nullable(t.array(t.string)),
      DnsOptions: nullable(t.array(t.string))
    }),
    NetworkSettings: t.type({ SandboxKey: t.string, Networks: nullable(t.record(t.string, EndpointSettings)) })
  },
  'ContainerInspect'
)
/** @category model */
export type ContainerInspect = t.TypeOf<typeof ContainerInspect>

/** `GET /networks/{id}`. @category codecs */
export const NetworkInspect = t.type(
  {
    Id: t.string,
    Name: t.string,
    Driver: t.string,
    IPAM: t.partial({
      Driver: t.string,
      Config: nullable(t.array(t.partial({ Subnet: t.string, Gateway: t.string, IPRange: t.string })))
    })
  },
  'NetworkInspect'
)
/** @category model */
export type NetworkInspect = t.TypeOf<typeof NetworkInspect>

/** The body of every Engine API error. @category codecs */
export const ErrorBody = t.type({ message: t.string }, 'ErrorBody')

/** `POST /networks/{id}/connect`: the container and, optionally, its addresses and MAC. @category model */
export interface ConnectRequest {
  readonly Container: string
  readonly EndpointConfig?: {
    readonly IPAMConfig?: { readonly IPv4Address?: string; readonly IPv6Address?: string }
    /** Honoured from API 1.44 (Docker 25); dockerd 20.10 ignores it. */
    readonly MacAddress?: string
  }
}

/** The endpoint of a container on one network, found by network id (Networks is keyed by name). @category utils */
export const attachmentOn = (c: ContainerInspect, networkId: string): EndpointSettings | undefined =>
  Object.values(c.NetworkSettings.Networks ?? {}).find((e) => e.NetworkID === networkId)

/** Whether the container sits on Docker's `none` network (`--net=none`). @category utils */
export const onNoneNetwork = (c: ContainerInspect): boolean =>
  Object.keys(c.NetworkSettings.Networks ?? {}).includes('none')

/**
 * What can go wrong talking to dockerd: no answer (socket absent, refused, timed out), an error
 * status with Docker's message, or an answer that is not what the API documents.
 *
 * @category model
 */
export type DockerError =
  | { readonly _tag: 'Unreachable'; readonly socket: string; readonly cause: string }
  | { readonly _tag: 'Refused'; readonly op: string; readonly status: number; readonly message: string }
  | { readonly _tag: 'BadAnswer'; readonly op: string; readonly detail: string }

/** Whether Docker answered 404 (no such container or network). @category utils */
export const isNoSuch = (e: DockerError): boolean => e._tag === 'Refused' && e.status === 404

/** One sentence for a person. @category utils */
export const describeDockerError = (e: DockerError): string => {
  switch (e._tag) {
    case 'Unreachable':
      return `no answer from the docker engine on ${e.socket}: ${e.cause}`
    case 'Refused':
      return `docker engine refused ${e.op} (HTTP ${e.status}): ${e.message}`
    case 'BadAnswer':
      return `unexpected answer from the docker engine to ${e.op}: ${e.detail}`
  }
}

/** @category model */
export interface DockerClientOptions {
  readonly socket?: string
  readonly timeoutMs?: number
}

/** The calls the CNI frontend makes. @category model */
export interface DockerClient {
  readonly socket: string
  readonly ping: () => TE.TaskEither<DockerError, void>
  readonly inspectContainer: (idOrName: string) => TE.TaskEither<DockerError, ContainerInspect>
  readonly inspectNetwork: (idOrName: string) => TE.TaskEither<DockerError, NetworkInspect>
  readonly connect: (network: string, body: ConnectRequest) => TE.TaskEither<DockerError, void>
  readonly disconnect: (network: string, container: string, force?: boolean) => TE.TaskEither<DockerError, void>
}

/** A namespace file's device and inode: two paths name one namespace when both are equal. @category model */
export interface NamespaceId {
  readonly dev: bigint
  readonly ino: bigint
}

/** A link inside a sandbox, as far as the result needs it. @category model */
export interface SandboxLink {
  readonly name: string
  readonly mac?: string
}

/**
 * A route inside a sandbox through one device; `dst` is a CIDR (`default` made `0.0.0.0/0` or `::/0`).
 *
 * @category model
 */
export interface SandboxRoute {
  readonly dst: string
  readonly gw?: string
}

/** @category ports */
export interface DockerPorts {
  readonly client: (options: DockerClientOptions) => DockerClient
  /** `stat` of a namespace path, following `/proc/<pid>/ns/net` links; InvalidNetns when it cannot be read. */
  readonly namespaceOf: (path: string) => TE.TaskEither<CoreError, NamespaceId>
  readonly links: (netns: string) => TE.TaskEither<CoreError, ReadonlyArray<SandboxLink>>
  /** Routes of both families through `dev`. */
  readonly routes: (netns: string, dev: string) => TE.TaskEither<CoreError, ReadonlyArray<SandboxRoute>>
}
