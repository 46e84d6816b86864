/**
 * Codecs of what `ip -json` prints (iproute2 6.1), and the reader of `ip -json -batch` output.
 * Only the fields isthmus reads are named; the rest passes through unchecked, since iproute2
 * adds keys between versions.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as t from 'io-ts'
import { decodeJson, type CoreError } from '@isthmus/core'

// -------------------------------------------------------------------------------------
// codecs
// -------------------------------------------------------------------------------------

/** One entry of `addr_info` (`ip -json addr show`). @category codecs */
export const IpAddrInfo = t.intersection(
  [
    t.type({ family: t.string, local: t.string, prefixlen: t.number }),
    t.partial({ scope: t.string, nodad: t.boolean, tentative: t.boolean })
  ],
  'IpAddrInfo'
)
/** @category model */
export type IpAddrInfo = t.TypeOf<typeof IpAddrInfo>

/** `linkinfo` (`ip -json -details`): the link's kind, e.g. `bridge`, `veth`. @category codecs */
export const IpLinkInfo = t.partial({ info_kind: t.string, info_slave_kind: t.string }, 'IpLinkInfo')

/**
 * One link of `ip -json [-details] link|addr show`. `link` is the peer's name when the peer is in
 * the same namespace; `link_netnsid` appears instead when it is in another one.
 *
 * @category codecs
 */
export const IpLink = t.intersection(
  [
    t.type({ ifindex: t.number, ifname: t.string, flags: t.array(t.string), mtu: t.number }),
    t.partial({
      address: t.string,
      master: t.string,
      ifalias: t.string,
      operstate: t.string,
      link: t.union([t.string, t.null]),
      link_index: t.number,
      link_netnsid: t.number,
      linkinfo: IpLinkInfo,
      addr_info: t.array(IpAddrInfo)
    })
  ],
  'IpLink'
)
/** @category model */
export type IpLink = t.TypeOf<typeof IpLink>

/** @category codecs */
export const IpLinks = t.array(IpLink, 'IpLinks')

// -------------------------------------------------------------------------------------
// utils
// -------------------------------------------------------------------------------------

/** Whether the link is administratively up. @category utils */
export const isUp = (l: IpLink): boolean => l.flags.includes('UP')

/** The link's kind from `-details` output (`bridge`, `veth`, ...), if shown. @category utils */
export const kindOf = (l: IpLink): string | undefined => l.linkinfo?.info_kind

/**
 * Decode what `ip -json` printed. With `-batch`, each `show` command prints its own JSON array
 * on its own line (other commands print nothing), so the lines are decoded one by one and
 * concatenated in order.
 *
 * @category utils
 */
export const decodeLinks = (stdout: string, what = 'ip -json output'): E.Either<CoreError, ReadonlyArray<IpLink>> =>
  pipe(
    stdout
      .split('\n')
      .map((line) => line.trim())
      .filter((text) => text !== ''),
    E.traverseArray(decodeJson(IpLinks, what)),
    E.map((chunks) => chunks.flat())
  )
