/**
 * This host's end of the tunnels: its underlay address (given), the device that holds it, and
 * the MAC its VXLAN devices carry (given, or derived from the underlay address).
 */
import { createHash } from 'node:crypto'
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { invalidConfig, type CoreError, type IpAddress, type MacAddress } from '@isthmus/core'
import { host, ip, type Tools } from '../ip.js'
import { decodeLinks } from '../iproute.js'

/**
 * A locally administered unicast MAC derived from the underlay address: the same after a restart
 * (other hosts' neighbour entries name it, so a new MAC would cut the host off until they hear of
 * it), and different on every host of one underlay.
 *
 * @category utils
 */
export const vtepMacOf = (underlay: IpAddress): MacAddress => {
  const h = createHash('sha256').update(`isthmus-vtep\0${underlay}`).digest()
  return ['02', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':') as MacAddress
}

/**
 * The device that holds `underlay` in this network namespace (`ip -json addr show to <a>/32`).
 *
 * @category utils
 */
export const underlayDevice = (tools: Tools, underlay: IpAddress): TE.TaskEither<CoreError, string> =>
  pipe(
    ip(tools, host, ['-json', 'addr', 'show', 'to', `${underlay}/32`]),
    TE.chainEitherK((out) => decodeLinks(out, 'ip -json addr show')),
    TE.chain((links) => {
      const l = links.find((x) => (x.addr_info ?? []).some((a) => a.local === underlay))
      return l === undefined
        ? TE.left(
            invalidConfig(
              `the underlay address ${underlay} is on no device of this host: give an address this host has (ip addr)`
            )
          )
        : TE.right(l.ifname)
    })
  )
