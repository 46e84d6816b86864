/**
 * A sandbox: a network namespace (its SandboxKey, the path of its netns). It has no record of its
 * own: the endpoints joined to it are those whose records name it (Endpoint `sandbox`).
 */
import type { IfName, SandboxKey } from '../ids.js'

/**
 * Where the sandbox-side interface goes at join. Docker moves and renames it itself
 * (InterfaceName{SrcName, DstPrefix}); a CNI plugin must move it into CNI_NETNS as CNI_IFNAME.
 *
 * @category model
 */
export type Placement =
  | { readonly _tag: 'RuntimeMoves'; readonly dstPrefix: string }
  | { readonly _tag: 'PluginMoves'; readonly sandbox: SandboxKey; readonly ifName: IfName }
