/**
 * The dataplane of a host in a cluster: any Dataplane, with the overlay of each cluster network
 * made beside its host device. After the device of a cluster network is made, its overlay is made
 * and pointed at the other hosts before the network counts as made, so the first container on it
 * already reaches the others; before the device goes, so does the overlay. Everything else, and
 * every network of this host alone, passes through unchanged.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type { CoreError } from '../errors.js'
import { IfName } from '../ids.js'
import type { Network } from '../model/Network.js'
import type { Dataplane, HostNetwork } from '../ports/Dataplane.js'
import { vniOf, type ClusterAgent } from './agent.js'

// The overlay hangs on the network's device: the record names it only once it is stored.
const withDevice = (network: Network, host: HostNetwork): Network =>
  network.bridge === undefined && IfName.is(host.device) ? { ...network, bridge: host.device } : network

/**
 * `inner` with the overlays of cluster networks, through `agent` (which knows the peers and takes
 * its turn with its own reconciliations).
 *
 * @category constructors
 */
export const clusterDataplane = (inner: Dataplane, agent: ClusterAgent): Dataplane => ({
  ...inner,
  ensureNetwork: (network, sharedWith) =>
    vniOf(network) === undefined
      ? inner.ensureNetwork(network, sharedWith)
      : pipe(
          inner.ensureNetwork(network, sharedWith),
          TE.chainFirst((host) =>
            pipe(
              agent.attach(withDevice(network, host)),
              // a device made now goes again: the caller's rollback only undoes steps that succeeded
              TE.orElse((e) =>
                host.created
                  ? pipe(
                      inner.deleteNetwork(network),
                      TE.matchE(
                        () => TE.left<CoreError, void>(e),
                        () => TE.left<CoreError, void>(e)
                      )
                    )
                  : TE.left(e)
              )
            )
          )
        ),
  deleteNetwork: (network) =>
    vniOf(network) === undefined
      ? inner.deleteNetwork(network)
      : pipe(
          agent.detach(network),
          TE.chain(() => inner.deleteNetwork(network))
        )
})
