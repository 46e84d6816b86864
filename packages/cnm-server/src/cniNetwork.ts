/**
 * `-o cni-network=<name>`: a Docker network that is an existing CNI network of the same state
 * directory (docs/one-network.md). Docker's network gets a record of its own (Docker's id) on the
 * CNI network's bridge, with the CNI network's masquerade and MTU; its subnets must be the CNI
 * network's, so that Docker's RequestPool got the very pool the CNI network allocates from (an
 * identical request in the same address space is the same pool, one more reference). One
 * bridge, one pool: Docker's containers and the CNI sandboxes reach each other and never get one
 * address twice. The bridge stays the CNI network's: it carries that network's owner mark, so
 * deleting the Docker network leaves it.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import {
  NetworkId,
  decodeWith,
  invalidConfig,
  isNotFound,
  loadNetwork,
  type CoreError,
  type Env,
  type Network,
  type NetworkSpec,
  type SubnetRequest
} from '@isthmus/core'

/** The `-o` key naming the CNI network (its conflist `name`). */
export const CNI_NETWORK_OPTION = 'cni-network'

const sameSet = (a: ReadonlyArray<string | undefined>, b: ReadonlyArray<string | undefined>): boolean =>
  a.length === b.length && a.every((x) => x !== undefined && b.includes(x))

/** The CNI network the options name, checked against Docker's pools; `undefined` without the option. */
export const sharedCniNetwork = (
  env: Env,
  generic: Readonly<Record<string, string>>,
  subnets: ReadonlyArray<SubnetRequest>
): TE.TaskEither<CoreError, Network | undefined> => {
  const name = generic[CNI_NETWORK_OPTION]
  if (name === undefined) return TE.right(undefined)
  return pipe(
    TE.fromEither(decodeWith(NetworkId, `option ${CNI_NETWORK_OPTION}`)(name)),
    TE.chain((id) => loadNetwork(id)(env)),
    TE.mapLeft((e) =>
      isNotFound(e)
        ? invalidConfig(`option ${CNI_NETWORK_OPTION}=${name}: no CNI network of that name in this state directory`)
        : e
    ),
    TE.chain((n) => {
      const theirs = [...n.ipv4, ...n.ipv6]
      return sameSet(
        subnets.map((s) => s.poolId),
        theirs.map((s) => s.poolId)
      )
        ? TE.right(n)
        : TE.left(
            invalidConfig(
              `option ${CNI_NETWORK_OPTION}=${name}: give Docker the CNI network's subnets (${theirs.map((s) => s.subnet).join(', ')}) with --ipam-driver isthmus, and --ip-range for a rangeStart/rangeEnd, so that both use one pool`
            )
          )
    })
  )
}

/** What the Docker network takes over from the CNI network. */
export const sharedSettings = (
  n: Network
): Pick<NetworkSpec, 'ipMasquerade'> & Partial<Pick<NetworkSpec, 'bridge' | 'mtu'>> => ({
  ipMasquerade: n.ipMasquerade,
  ...(n.bridge === undefined ? {} : { bridge: n.bridge }),
  ...(n.mtu === undefined ? {} : { mtu: n.mtu })
})

/** Networks on the shared bridge use its subnets by design: not a clash. */
export const onSharedBridge =
  (shared: Network | undefined) =>
  (n: Network): boolean =>
    shared !== undefined && n.bridge !== undefined && n.bridge === shared.bridge
