/** A sandbox: a network namespace and the endpoints joined to it. */
import * as t from 'io-ts'
import { ContainerId, EndpointId, IfName, SandboxKey } from '../ids.js'

/** @category codecs */
export const SandboxInterface = t.type({ endpointId: EndpointId, ifName: IfName }, 'SandboxInterface')
/** @category model */
export type SandboxInterface = t.TypeOf<typeof SandboxInterface>

/** @category codecs */
export const Sandbox = t.intersection(
  [t.type({ key: SandboxKey, interfaces: t.array(SandboxInterface) }), t.partial({ containerId: ContainerId })],
  'Sandbox'
)
/** @category model */
export type Sandbox = t.TypeOf<typeof Sandbox>

/**
 * Where the sandbox-side interface goes at join. Docker moves and renames it itself
 * (InterfaceName{SrcName, DstPrefix}); a CNI plugin must move it into CNI_NETNS as CNI_IFNAME.
 *
 * @category model
 */
export type Placement =
  | { readonly _tag: 'RuntimeMoves'; readonly dstPrefix: string }
  | { readonly _tag: 'PluginMoves'; readonly sandbox: SandboxKey; readonly ifName: IfName }
