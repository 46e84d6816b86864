/**
 * What store tests share, without property testing: valid sample records built through their
 * codecs, `expectRight`, and a probe for lock exclusion. The Store contract itself (on
 * fast-check) is `@isthmus/core/testing/store-contract`.
 */
import { strict as assert } from 'node:assert'
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import type * as t from 'io-ts'
import { describe as describeError, type CoreError } from '../errors.js'
import { report } from '../decode.js'
import { hostIfName, peerIfName, type EndpointId } from '../ids.js'
import { Endpoint } from '../model/Endpoint.js'
import { Lease, Pool, type LeaseOwner } from '../model/Ipam.js'
import { Network } from '../model/Network.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * A task that notices being run alongside itself: under a lock each run sees the count the previous
 * one left, and at most one is active at a time. For lock tests of every Store adapter.
 *
 * @category testing
 */
export const exclusionProbe = (holdMs: number) => {
  const state = { active: 0, most: 0, counter: 0 }
  const task = TE.fromTask(async () => {
    state.active++
    state.most = Math.max(state.most, state.active)
    const seen = state.counter
    await sleep(holdMs)
    state.counter = seen + 1
    state.active--
    return seen
  })
  return { task, state }
}

/** The `runs` runs of a probe under one lock took turns: never two at once. @category testing */
export const assertExcluded = (
  probe: ReturnType<typeof exclusionProbe>,
  seen: ReadonlyArray<number>,
  runs: number
): void => {
  assert.equal(probe.state.most, 1)
  assert.equal(probe.state.counter, runs)
  assert.deepEqual(
    [...seen].sort((x, y) => x - y),
    Array.from({ length: runs }, (_, i) => i)
  )
}

// -------------------------------------------------------------------------------------
// samples: valid records built through their codecs
// -------------------------------------------------------------------------------------

const valid = <A, Out>(codec: t.Type<A, Out>, value: unknown): A => {
  const r = codec.decode(value)
  if (E.isLeft(r)) assert.fail(`sample ${codec.name} does not decode: ${report(r.left).join('; ')}`)
  return r.right
}

const CREATED = '2026-01-01T00:00:00.000Z'

/** A network with every optional field when `v` is odd and none when it is even. @category testing */
export const sampleNetwork = (id: string, v = 1): Network =>
  valid(Network, {
    id,
    name: `name-${v}`,
    addressSpace: 'isthmus-local',
    ipv4: [{ subnet: '10.1.0.0/24', poolId: 'isthmus-local/10.1.0.0/24', gateway: '10.1.0.1' }],
    ipv6: v % 2 === 1 ? [{ subnet: 'fd00:1::/64' }] : [],
    internal: v % 2 === 0,
    ipMasquerade: true,
    options: { 'com.docker.network.bridge.name': 'br0', v: String(v) },
    createdAt: CREATED,
    ...(v % 2 === 1 ? { mtu: 1400 + v, bridge: 'istbr0', controller: { tenant: 'admin', network: 'blue' } } : {})
  })

/** @category testing */
export const sampleEndpoint = (id: string, v = 1): Endpoint =>
  valid(Endpoint, {
    id,
    networkId: 'net-1',
    owner: { kind: 'container', containerId: `ctr${v}`, ifName: 'eth0' },
    addresses: [{ cidr: `10.1.0.${(v % 250) + 2}/24`, poolId: 'isthmus-local/10.1.0.0/24', gateway: '10.1.0.1' }],
    hostIfName: hostIfName(id as EndpointId),
    peerIfName: peerIfName(id as EndpointId),
    routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }],
    portMappings: [{ protocol: 'tcp', containerPort: 80, hostPort: 8000 + (v % 1000) }],
    createdAt: CREATED,
    ...(v % 2 === 1 ? { mac: '02:42:0a:01:00:05', sandbox: '/var/run/netns/cni-1', sandboxIfName: 'eth0' } : {})
  })

/** @category testing */
export const samplePool = (id: string, v = 1): Pool =>
  valid(Pool, {
    id,
    addressSpace: 'isthmus-local',
    subnet: '10.1.0.0/24',
    family: 4,
    ranges: v % 2 === 1 ? [{ start: '10.1.0.10', end: '10.1.0.200' }] : [],
    reserved: [{ address: '10.1.0.2', reason: 'aux', name: 'dns' }],
    options: { v: String(v) },
    refs: v,
    ...(v % 2 === 1 ? { gateway: '10.1.0.1' } : {})
  })

/** @category testing */
export const sampleLease = (space: string, address: string, owner: LeaseOwner, pool = 'pool-a'): Lease =>
  valid(Lease, { address, addressSpace: space, poolId: pool, owner, since: CREATED })

// -------------------------------------------------------------------------------------
// helpers
// -------------------------------------------------------------------------------------

/** The value of a store call, failing the test on `Left`. @category testing */
export const expectRight = async <A>(te: TE.TaskEither<CoreError, A>): Promise<A> => {
  const r = await te()
  if (E.isLeft(r)) assert.fail(`store call failed: ${describeError(r.left)}`)
  return r.right
}
