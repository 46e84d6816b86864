/**
 * The parts of Docker Engine API answers the CNI frontend reads, as codecs (API 1.41, Docker
 * 20.10; later versions add fields, which pass through unchecked). Docker writes `null` for
 * empty lists and maps, so those are nullable here.
 */
import * as t from 'io-ts'

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
    IPAM: t.partial({ Driver: t.string, Config: nullable(t.array(t.partial({ Subnet: t.string, Gateway: t.string, IPRange: t.string }))) })
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
export const onNoneNetwork = (c: ContainerInspect): boolean => Object.keys(c.NetworkSettings.Networks ?? {}).includes('none')
