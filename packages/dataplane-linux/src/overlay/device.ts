/**
 * A cluster network's VXLAN device: one per network on each host, named from the VNI, with the
 * host's VTEP MAC and underlay address, learning off (every remote MAC is programmed, never
 * learnt from traffic), and marked as isthmus's by its alias (`isthmus:overlay:<network id>`,
 * as bridges carry `isthmus:net:<network id>`).
 *
 * It is not a port of the bridge: the overlay is routed. The host routes a remote block out of it
 * to the remote host's VTEP, and the remote host routes the packet on into its own bridge.
 */
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import * as t from 'io-ts'
import { decodeJson, invalidConfig, type CoreError, type Network } from '@isthmus/core'
import { deleteLinks, host, ip, ipBatch, isExists, isNoDevice, type IpCommand, type Tools } from '../ip.js'
import { IpLink, isUp } from '../iproute.js'

// -------------------------------------------------------------------------------------
// names
// -------------------------------------------------------------------------------------

/** Prefix of every overlay device (`istx<vni in hex>`); the firewall matches it as `istx+`. @category constants */
export const OVERLAY_IF_PREFIX = 'istx'

/** Prefix of an overlay device's alias, before the network id. @category constants */
export const OVERLAY_MARK_PREFIX = 'isthmus:overlay:'

/** The IANA VXLAN port (RFC 7348), not the Linux default 8472. @category constants */
export const VXLAN_PORT = 4789

const MAX_VNI = 0xffffff

/**
 * The device of a VNI: `istx` and at most 6 hex digits, so at most 10 characters.
 *
 * @category utils
 */
export const overlayDeviceName = (vni: number): string | CoreError =>
  Number.isInteger(vni) && vni >= 1 && vni <= MAX_VNI
    ? `${OVERLAY_IF_PREFIX}${vni.toString(16)}`
    : invalidConfig(`bad VXLAN id ${vni}: a whole number from 1 to ${MAX_VNI}`)

/** The alias that marks the network's overlay device. @category utils */
export const overlayMark = (network: Network): string => `${OVERLAY_MARK_PREFIX}${network.id}`

// -------------------------------------------------------------------------------------
// codecs
// -------------------------------------------------------------------------------------

/** What `ip -json -details` prints of a VXLAN device's settings (iproute2 6.1). @category codecs */
export const VxlanInfo = t.partial(
  { id: t.number, local: t.string, link: t.string, port: t.number, learning: t.boolean },
  'VxlanInfo'
)

/** A link with the VXLAN settings of its details. @category codecs */
export const VxlanLink = t.intersection(
  [IpLink, t.partial({ linkinfo: t.partial({ info_kind: t.string, info_data: VxlanInfo }) })],
  'VxlanLink'
)
/** @category model */
export type VxlanLink = t.TypeOf<typeof VxlanLink>

const VxlanLinks = t.array(VxlanLink, 'VxlanLinks')

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** The device a network needs. @category model */
export interface WantedDevice {
  readonly name: string
  readonly vni: number
  /** This host's underlay address: the tunnels' source. */
  readonly local: string
  /** The device that holds `local`. */
  readonly dev: string
  readonly mac: string
  /** Absent: the kernel's own (the underlay device's MTU less the encapsulation). */
  readonly mtu?: number
  readonly mark: string
}

/** What `ensureDevice` did. @category model */
export type DeviceOutcome = 'created' | 'recreated' | 'repaired' | 'unchanged'

// -------------------------------------------------------------------------------------
// utils
// -------------------------------------------------------------------------------------

/** The device with its details, or undefined when there is none of that name. @category utils */
export const readDevice = (tools: Tools, name: string): TE.TaskEither<CoreError, VxlanLink | undefined> =>
  pipe(
    ip(tools, host, ['-json', '-details', 'link', 'show', 'dev', name]),
    TE.chainEitherK((out) => decodeJson(VxlanLinks, 'ip -json -details link show')(out)),
    TE.map((links) => links.find((l) => l.ifname === name)),
    TE.orElse((e) => (isNoDevice(e) ? TE.right(undefined) : TE.left(e)))
  )

/** Whether isthmus made the device (for some cluster network). @category utils */
export const isOverlayDevice = (l: VxlanLink): boolean =>
  l.linkinfo?.info_kind === 'vxlan' && (l.ifalias ?? '').startsWith(OVERLAY_MARK_PREFIX)

// Settings the kernel keeps for the device's life (or that a live VXLAN device may refuse to
// change): a difference in any of them means a new device.
const fixedDiffers = (l: VxlanLink, w: WantedDevice): boolean => {
  const d = l.linkinfo?.info_data
  return (
    l.linkinfo?.info_kind !== 'vxlan' ||
    d?.id !== w.vni ||
    d.local !== w.local ||
    d.link !== w.dev ||
    d.port !== VXLAN_PORT ||
    d.learning !== false ||
    l.address !== w.mac
  )
}

const createLines = (w: WantedDevice): ReadonlyArray<IpCommand> => [
  [
    'link',
    'add',
    'name',
    w.name,
    ...(w.mtu === undefined ? [] : ['mtu', String(w.mtu)]),
    'address',
    w.mac,
    'type',
    'vxlan',
    'id',
    String(w.vni),
    'dstport',
    String(VXLAN_PORT),
    'local',
    w.local,
    'dev',
    w.dev,
    'nolearning'
  ],
  ['link', 'set', 'dev', w.name, 'alias', w.mark],
  ['link', 'set', 'dev', w.name, 'up']
]

/**
 * Make the device as wanted: create it, repair what can change in place (MTU, mark, up), and
 * make it anew when a fixed setting differs (its neighbour and FDB entries and routes go with the
 * old one: the caller programs them again). A device of that name that isthmus did not make is
 * refused, not touched.
 *
 * @category utils
 */
export const ensureDevice = (tools: Tools, w: WantedDevice): TE.TaskEither<CoreError, DeviceOutcome> => {
  const attempt = (again: boolean): TE.TaskEither<CoreError, DeviceOutcome> =>
    pipe(
      readDevice(tools, w.name),
      TE.chain((l): TE.TaskEither<CoreError, DeviceOutcome> => {
        if (l === undefined) {
          return pipe(
            ipBatch(tools, host, createLines(w)),
            TE.map((): DeviceOutcome => 'created'),
            // Made by another caller between our read and our add: judge that one.
            TE.orElse((e) => (isExists(e) && !again ? attempt(true) : TE.left(e)))
          )
        }
        if (!isOverlayDevice(l)) {
          return TE.left(
            invalidConfig(
              `${w.name} already exists and is not an isthmus overlay device (kind ${l.linkinfo?.info_kind ?? 'unknown'}, alias ${JSON.stringify(l.ifalias ?? '')}): remove it or pick another VXLAN id`
            )
          )
        }
        if (fixedDiffers(l, w)) {
          return pipe(
            ipBatch(tools, host, [['link', 'del', 'dev', w.name], ...createLines(w)]),
            TE.map((): DeviceOutcome => 'recreated')
          )
        }
        const fixes: ReadonlyArray<IpCommand> = [
          ...(w.mtu !== undefined && l.mtu !== w.mtu ? [['link', 'set', 'dev', w.name, 'mtu', String(w.mtu)]] : []),
          ...(l.ifalias !== w.mark ? [['link', 'set', 'dev', w.name, 'alias', w.mark]] : []),
          ...(isUp(l) ? [] : [['link', 'set', 'dev', w.name, 'up']])
        ]
        return fixes.length === 0
          ? TE.right('unchanged')
          : pipe(
              ipBatch(tools, host, fixes),
              TE.map((): DeviceOutcome => 'repaired')
            )
      })
    )
  return attempt(false)
}

/**
 * Remove the device if it is an isthmus overlay device; absent succeeds, and one isthmus did not
 * make is left alone. True when a device was removed.
 *
 * @category utils
 */
export const removeDevice = (tools: Tools, name: string): TE.TaskEither<CoreError, boolean> =>
  pipe(
    readDevice(tools, name),
    TE.chain((l) =>
      l !== undefined && isOverlayDevice(l)
        ? pipe(
            deleteLinks(tools, host, [name]),
            TE.map(() => true)
          )
        : TE.right(false)
    )
  )
