/**
 * createEndpoint: give a network one more endpoint (Docker CreateEndpoint; CNI ADD after
 * ensureNetwork). Idempotent by endpoint id.
 */
import * as O from 'fp-ts/lib/Option.js'
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { alreadyExists } from '../errors.js'
import { hostIfName, peerIfName, type NetworkId } from '../ids.js'
import type { Endpoint, PortMapping, Route } from '../model/Endpoint.js'
import type { Network } from '../model/Network.js'
import type { Placement } from '../model/Sandbox.js'
import type { EndpointBinding, EndpointRequest } from '../ports/ControlPlane.js'
import type { Flow } from '../ports/Env.js'
import { ATTACHMENT_WRITE } from '../ports/Store.js'
import { call } from './call.js'
import { getEndpoint, loadNetwork, lockedEndpoint } from './records.js'
import { defaultRoutes } from './routing.js'
import { begin, bindStep, doStep } from './saga.js'

/**
 * What an endpoint asks for: the control plane's request, plus what only the record holds.
 *
 * @category flows
 */
export interface CreateEndpointRequest extends EndpointRequest {
  /** Host ports to publish at join (Docker `-p`, CNI `portMappings`); none when absent. */
  readonly portMappings?: ReadonlyArray<PortMapping>
  /**
   * Routes inside the sandbox (CNI `ipam.routes`). Absent: a default route via each family's
   * gateway, none on an internal network. Given (even empty): exactly these.
   */
  readonly routes?: ReadonlyArray<Route>
  /**
   * Where the sandbox side will go, when already known (CNI ADD): the dataplane may then make it
   * there directly, which on Linux saves a move between namespaces (~20-35 ms of kernel RCU
   * wait). `join` must still be called with the same placement.
   */
  readonly placement?: Placement
}

/**
 * Create the endpoint, or return the stored one with the same id (AlreadyExists if that one is
 * on another network).
 *
 * Steps: 1. load the network (NotFound), 2. the control plane assigns addresses, MAC and
 * identity, 3. the dataplane makes the veth pair, 4. the record is stored, 5. the agent is told.
 * A failing step undoes the finished ones in reverse (store record, veth pair, addresses) and
 * the flow fails with that step's error.
 *
 * @category flows
 */
export const createEndpoint = (networkId: NetworkId, request: CreateEndpointRequest): Flow<Endpoint> =>
  pipe(
    getEndpoint(request.id),
    RTE.chain(
      O.match(
        () => create(networkId, request),
        (existing) =>
          existing.networkId === networkId
            ? RTE.right(existing)
            : RTE.left(alreadyExists('endpoint', request.id, `is on network ${existing.networkId}, not ${networkId}`))
      )
    ),
    lockedEndpoint(request.id, request.owner.kind)
  )

const create = (networkId: NetworkId, request: CreateEndpointRequest): Flow<Endpoint> =>
  pipe(
    begin('createEndpoint'),
    // 1. The network must exist.
    bindStep('network', () => loadNetwork(networkId)),
    // 2. Addresses, MAC and controller identity; the record is built from the answer.
    bindStep(
      'assigned',
      ({ network }) =>
        pipe(
          call((env) => env.controlPlane.createEndpoint(network, request)),
          RTE.chain((binding) => RTE.asks((env) => toEndpoint(network, request, binding, env.clock.now())))
        ),
      ({ network, assigned }) =>
        (env) =>
          env.controlPlane.deleteEndpoint(network, assigned)
    ),
    // 3. The veth pair on the network's device. When nobody assigned a MAC, the link's own is
    //    recorded, so CNI results and Docker's Join answer name the MAC the container really has.
    //    A dataplane that adopted existing links (registered VNICs) names them instead.
    bindStep(
      'endpoint',
      ({ network, assigned }) =>
        pipe(
          call((env) => env.dataplane.ensureEndpoint({ endpoint: assigned, network }, request.placement)),
          RTE.map(({ mac, hostIfName, peerIfName, hostEndpointId }): Endpoint => ({
            ...assigned,
            ...(assigned.mac !== undefined ? {} : { mac }),
            ...(hostIfName !== undefined ? { hostIfName } : {}),
            ...(peerIfName !== undefined ? { peerIfName } : {}),
            ...(hostEndpointId !== undefined ? { hostEndpointId } : {})
          }))
        ),
      ({ network, endpoint }) =>
        (env) =>
          env.dataplane.deleteEndpoint({ endpoint, network })
    ),
    // 4. The record.
    doStep(
      'store',
      ({ endpoint }) =>
        (env) =>
          // An attachment's record need not outlive a power loss (Store PutOptions).
          env.store.endpoints.put(endpoint, ATTACHMENT_WRITE),
      ({ endpoint }) =>
        (env) =>
          env.store.endpoints.delete(endpoint.id)
    ),
    // 5. The forwarding agent (vRouter port); last, so it never hears of an endpoint that fails.
    doStep(
      'agent',
      ({ network, endpoint }) =>
        (env) =>
          env.agent.addPort(network, endpoint)
    ),
    RTE.map(({ endpoint }) => endpoint)
  )

const toEndpoint = (
  network: Network,
  request: CreateEndpointRequest,
  binding: EndpointBinding,
  now: Date
): Endpoint => {
  // The controller's MAC wins: an SDN controller (Contrail VMI) has already told the fabric.
  const mac = binding.mac ?? request.mac
  return {
    id: request.id,
    networkId: network.id,
    owner: request.owner,
    addresses: [...binding.addresses],
    hostIfName: hostIfName(request.id),
    peerIfName: peerIfName(request.id),
    routes: request.routes !== undefined ? [...request.routes] : defaultRoutes(network, binding.addresses),
    portMappings: [...(request.portMappings ?? [])],
    createdAt: now.toISOString(),
    ...(mac !== undefined ? { mac } : {}),
    ...(binding.controller !== undefined ? { controller: binding.controller } : {})
  }
}
