/**
 * ensureNetwork: make a network exist (Docker CreateNetwork; the first step of every CNI ADD).
 * Idempotent by id: a stored network is returned as it is, without touching any port or lock, so
 * CNI's ADD after ADD costs one store read.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { alreadyExists, invalidConfig, type CoreError } from '../errors.js'
import { IfName, type NetworkId } from '../ids.js'
import { familyOf } from '../model/Address.js'
import { CLUSTER_OPTION } from '../model/Cluster.js'
import type { Network } from '../model/Network.js'
import type { NetworkBinding, NetworkSpec } from '../ports/ControlPlane.js'
import type { HostNetwork } from '../ports/Dataplane.js'
import type { Flow } from '../ports/Env.js'
import { call } from './call.js'
import { getNetwork, locked } from './records.js'
import { begin, bindStep } from './saga.js'

/**
 * Create the network, or return the stored one with the same id. A stored network whose subnets
 * differ from the spec's fails with AlreadyExists: silently answering with other subnets would
 * hand out addresses the caller does not expect.
 *
 * Steps: 0. a bridge the spec names must not be another stored network's (InvalidConfig) unless
 * that one has the very same pools,
 * 1. the control plane takes pools and identity, 2. the dataplane makes the host device (or takes
 * over a leftover one), 3. the record is stored. A failing step undoes the finished ones in reverse.
 *
 * @category flows
 */
export const ensureNetwork = (spec: NetworkSpec): Flow<Network> =>
  // A stored network is read without the lock (a read under it would be as stale once it is
  // released, and every CNI ADD starts here); an absent one is looked for again under it.
  pipe(
    getNetwork(spec.id),
    RTE.chain(
      O.match(
        () =>
          pipe(
            getNetwork(spec.id),
            RTE.chain(O.match(() => create(spec), storedAs(spec))),
            locked(`network:${spec.id}`),
            // The first ADDs of a network arrive together (a node's pods at boot): all but one
            // queue on the lock only to read what that one made. One that waited out the lock
            // (a busy host) takes the network if it is there by now, rather than fail.
            RTE.orElse((e) =>
              e._tag === 'Transient'
                ? pipe(getNetwork(spec.id), RTE.chain(O.match(() => RTE.left(e), storedAs(spec))))
                : RTE.left(e)
            )
          ),
        storedAs(spec)
      )
    )
  )

const storedAs =
  (spec: NetworkSpec) =>
  (stored: Network): Flow<Network> =>
    RTE.fromEither(sameSubnets(spec, stored))

/**
 * A named bridge is one network's: two networks on one device would share its gateways and
 * firewall rules, and removing one would take the other's device (or leave it behind, marked for
 * a network that is gone). So a name another stored network holds is refused, checked under a
 * host-wide lock on the name (lock order: network, then bridge), so that of two creations naming
 * one bridge at the same time the second sees the first's record. The one exception is a network
 * with exactly the holder's pools (a Docker network made on a CNI network, `-o cni-network`: one
 * segment, one addressing, two records), which shares the holder's device on purpose. A device
 * found on the host carrying the mark of a network with no record is a leftover (a crash between
 * the bridge and the record): the dataplane takes it over. Only for dataplanes that route subnets
 * on the host, whose device carries the network's gateways; adopted devices
 * (`routesSubnetsOnHost: false`, VNIC bridges of an integrator) may serve several networks.
 */
const create =
  (spec: NetworkSpec): Flow<Network> =>
  (env) =>
    spec.bridge === undefined || env.dataplane.routesSubnetsOnHost === false
      ? build(spec, [])(env)
      : pipe(
          holdersOf(spec.bridge, spec),
          RTE.chain((sharedWith) => build(spec, sharedWith)),
          locked(`bridge:${spec.bridge}`)
        )(env)

/** The stored networks on `bridge` this one may share it with; any other holder refuses it. */
const holdersOf = (bridge: IfName, spec: NetworkSpec): Flow<ReadonlyArray<NetworkId>> =>
  pipe(
    call((env) => env.store.networks.list()),
    RTE.chain((stored) => {
      const holders = stored.filter((n) => n.id !== spec.id && n.bridge === bridge)
      const refused = holders.find((n) => !samePools(spec, n))
      return refused === undefined
        ? RTE.right(holders.map((n) => n.id))
        : RTE.left(
            invalidConfig(
              `bridge ${bridge} is already the bridge of network ${refused.name} (${refused.id}); name another bridge or remove that network first`
            )
          )
    })
  )

const samePools = (spec: NetworkSpec, n: Network): boolean => {
  const theirs = [...n.ipv4, ...n.ipv6].map((s) => s.poolId)
  const ours = spec.subnets.map((s) => s.poolId)
  return ours.length > 0 && ours.length === theirs.length && ours.every((p) => p !== undefined && theirs.includes(p))
}

const build = (spec: NetworkSpec, sharedWith: ReadonlyArray<NetworkId>): Flow<Network> =>
  pipe(
    begin('ensureNetwork'),
    // 1. The control plane takes the pools (or learns the runtime's) and names the network; the
    //    record is built from its answer, and the undo gives the pools back.
    bindStep(
      'network',
      () =>
        pipe(
          call((env) => env.controlPlane.ensureNetwork(spec)),
          RTE.chain((binding) => RTE.asks((env) => toNetwork(spec, binding, env.clock.now())))
        ),
      ({ network }) =>
        (env) =>
          env.controlPlane.deleteNetwork(network)
    ),
    // 2. The host side: a bridge on Linux, an HNS network on Windows. A device that was there
    //    before (an operator's bridge) is not ours to remove on rollback.
    bindStep(
      'host',
      ({ network }) =>
        (env) =>
          env.dataplane.ensureNetwork(network, sharedWith),
      ({ network, host }) => (host.created ? (env) => env.dataplane.deleteNetwork(network) : RTE.right(undefined))
    ),
    // 3. The record, last: once it is stored, the network exists for every later call.
    bindStep('stored', ({ network, host }) => {
      const record = withDevice(network, host)
      return pipe(
        call((env) => env.store.networks.put(record)),
        RTE.map(() => record)
      )
    }),
    RTE.map(({ stored }) => stored)
  )

const toNetwork = (spec: NetworkSpec, binding: NetworkBinding, now: Date): Network => {
  const controller = binding.controller ?? spec.controller
  return {
    id: spec.id,
    name: spec.name,
    addressSpace: binding.addressSpace,
    ipv4: [...binding.ipv4],
    ipv6: [...binding.ipv6],
    internal: spec.internal,
    ipMasquerade: spec.ipMasquerade,
    options: { ...spec.options, ...binding.options },
    createdAt: now.toISOString(),
    ...(spec.mtu !== undefined ? { mtu: spec.mtu } : binding.mtu !== undefined ? { mtu: binding.mtu } : {}),
    ...(spec.bridge !== undefined ? { bridge: spec.bridge } : {}),
    ...(controller !== undefined ? { controller } : {})
  }
}

// The device name is recorded only when it is an interface name: an HNS network's name is not.
const withDevice = (network: Network, host: HostNetwork): Network =>
  network.bridge === undefined && IfName.is(host.device) ? { ...network, bridge: host.device } : network

/**
 * Whether a stored network answers the spec. Subnets the spec names must all be stored, and each
 * family must have as many subnets as the spec asks for: a subnet the control plane picked
 * ("any IPv4 subnet") cannot be compared by value, only counted.
 */
const sameSubnets = (spec: NetworkSpec, stored: Network): E.Either<CoreError, Network> => {
  // A spec that names only its cluster network (CNI `cluster` without ranges) takes the cluster's subnet.
  if (spec.subnets.length === 0 && spec.options[CLUSTER_OPTION] !== undefined) {
    return stored.options[CLUSTER_OPTION] === spec.options[CLUSTER_OPTION]
      ? E.right(stored)
      : E.left(alreadyExists('network', spec.id, `exists, not as cluster network ${spec.options[CLUSTER_OPTION]}`))
  }
  const have = [...stored.ipv4, ...stored.ipv6].map((s) => s.subnet)
  const named = spec.subnets.flatMap((r) => (r.subnet !== undefined ? [r.subnet] : []))
  const familyOfRequest = (r: NetworkSpec['subnets'][number]): 4 | 6 =>
    r.subnet !== undefined ? familyOf(r.subnet) : r.family
  const count = (f: 4 | 6): number => spec.subnets.filter((r) => familyOfRequest(r) === f).length
  const same =
    named.every((s) => have.includes(s)) && count(4) === stored.ipv4.length && count(6) === stored.ipv6.length
  if (same) return E.right(stored)
  const asked = spec.subnets.map((r) => r.subnet ?? `any IPv${r.family} subnet`)
  return E.left(
    alreadyExists(
      'network',
      spec.id,
      `exists with subnets ${have.join(', ') || 'none'}; asked for ${asked.join(', ') || 'none'}`
    )
  )
}
