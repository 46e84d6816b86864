/** Shared builders and assertions for the flow tests. */
import { strict as assert } from 'node:assert'
import type * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import {
  attachmentEndpointId,
  type ContainerId,
  type CoreError,
  type CreateEndpointRequest,
  type Endpoint,
  type EndpointId,
  type IfName,
  type Network,
  type NetworkId,
  type NetworkSpec,
  type Placement,
  type SandboxKey,
  type Subnet,
  type SubnetRequest
} from '@isthmus/core'
import { right, type TestEnv } from '@isthmus/core/testing'

export const NET = 'net1' as NetworkId
export const NET2 = 'net2' as NetworkId

/** One named subnet of a family, as a NetworkSpec asks for it. */
export const subnet = (cidr: string): SubnetRequest => ({ family: cidr.includes(':') ? 6 : 4, subnet: cidr as Subnet })

export const spec = (over: Partial<NetworkSpec> = {}): NetworkSpec => ({
  id: NET,
  name: 'net1',
  subnets: [subnet('10.1.0.0/24')],
  managedAddresses: true,
  internal: false,
  ipMasquerade: true,
  options: {},
  ...over
})

export const cid = (s: string): ContainerId => s as ContainerId
export const ifn = (s: string): IfName => s as IfName
export const netns = (s: string): SandboxKey => `/var/run/netns/${s}` as SandboxKey

/** A CNI attachment's request: one IPv4 address from the network. */
export const cniRequest = (container: string, ifName = 'eth0', network: NetworkId = NET): CreateEndpointRequest => ({
  id: attachmentEndpointId(network, cid(container), ifn(ifName)),
  owner: { kind: 'container', containerId: cid(container), ifName: ifn(ifName) },
  addresses: [{ _tag: 'Any', family: 4 }]
})

/** A PluginMoves placement into /var/run/netns/<ns>. */
export const plugin = (ns: string, ifName = 'eth0'): Placement => ({
  _tag: 'PluginMoves',
  sandbox: netns(ns),
  ifName: ifn(ifName)
})

/** A Docker endpoint's request. */
export const dockerRequest = (id: string, over: Partial<CreateEndpointRequest> = {}): CreateEndpointRequest => ({
  id: id as EndpointId,
  owner: { kind: 'docker', endpointId: id as EndpointId },
  addresses: [{ _tag: 'Any', family: 4 }],
  ...over
})

const read = async <A>(p: Promise<E.Either<CoreError, A>>): Promise<A> => right(p)

export const storedNetwork = async (t: TestEnv, id: NetworkId): Promise<Network | undefined> =>
  O.toUndefined(await read(t.env.store.networks.get(id)()))
export const storedEndpoint = async (t: TestEnv, id: EndpointId): Promise<Endpoint | undefined> =>
  O.toUndefined(await read(t.env.store.endpoints.get(id)()))
export const storedEndpoints = async (t: TestEnv): Promise<ReadonlyArray<Endpoint>> =>
  read(t.env.store.endpoints.list()())
/** The interfaces in sandbox `key`: the stored endpoints that name it, with their names inside. */
export const interfacesIn = async (
  t: TestEnv,
  key: SandboxKey
): Promise<ReadonlyArray<{ endpointId: EndpointId; ifName: IfName | undefined }>> =>
  (await storedEndpoints(t))
    .filter((e) => e.sandbox === key)
    .map((e) => ({ endpointId: e.id, ifName: e.sandboxIfName }))
    .sort((a, b) => (a.endpointId < b.endpointId ? -1 : 1))

/** Nothing of endpoint `id` is left anywhere: record, links, addresses, agent port, ports. */
export const assertNoTraceOf = async (t: TestEnv, id: EndpointId): Promise<void> => {
  assert.equal(await storedEndpoint(t, id), undefined, 'endpoint record left')
  assert.deepEqual(t.dataplane.state.linksOf(id), [], 'links left')
  assert.deepEqual(t.controlPlane.state.heldBy(id), [], 'addresses held')
  assert.ok(!t.controlPlane.state.endpoints().includes(id), 'control plane still knows the endpoint')
  assert.equal(t.agent.state.has(id), false, 'agent port left')
  assert.deepEqual(t.dataplane.state.published(id), [], 'ports still published')
}

// One pair for every suite: @isthmus/core/testing's.
export { left, right } from '@isthmus/core/testing'
