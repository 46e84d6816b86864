/**
 * The dataplane of isthmus acting as an IPAM plugin (`"ipam": {"type": "isthmus"}` inside the
 * reference bridge): the calling plugin owns the links, so the core flows run with a dataplane
 * that makes nothing and the endpoint records only hold the addresses.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import type { Dataplane, MacAddress } from '@isthmus/core'

// An IPAM plugin never learns the interface's MAC; the record needs one.
const NO_MAC = '00:00:00:00:00:00' as MacAddress

/** @category constructors */
export const recordOnlyDataplane: Dataplane = {
  // Not an interface name, so ensureNetwork records no bridge for the network.
  ensureNetwork: () => TE.right({ device: '', created: false }),
  deleteNetwork: () => TE.right(undefined),
  ensureEndpoint: ({ endpoint }) => TE.right({ mac: endpoint.mac ?? NO_MAC }),
  place: ({ endpoint }, placement) =>
    TE.right(
      placement._tag === 'PluginMoves'
        ? { ifName: placement.ifName, mac: endpoint.mac ?? NO_MAC, sandbox: placement.sandbox }
        : { ifName: endpoint.peerIfName, mac: endpoint.mac ?? NO_MAC }
    ),
  deleteEndpoint: () => TE.right(undefined),
  publishPorts: () => TE.right(undefined),
  unpublishPorts: () => TE.right(undefined),
  inventory: () => TE.right({ links: [], networks: [] }),
  removeLink: () => TE.right(undefined)
}
