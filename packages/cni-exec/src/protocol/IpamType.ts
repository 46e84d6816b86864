/**
 * Whose IPAM a netconf's `ipam.type` names. Kept apart from the codecs so that the hand-off client
 * (the executable's small main script) can tell a delegated IPAM without loading the flows.
 */

/**
 * Whether `type` (absent, `""`, or one of the names this executable answers to) is isthmus's own IPAM.
 *
 * @category utils
 */
export const isOwnIpamType = (type: unknown, selfNames: ReadonlyArray<string>): boolean =>
  type === undefined || type === '' || (typeof type === 'string' && selfNames.includes(type))
