/**
 * What an integrator writes: build an Env from the adapters of its choice, then drive the core's
 * flows. Here: the file store (state survives restarts), the built-in IPAM, and the in-memory
 * dataplane from @isthmus/core/testing so that the example needs no root. Swap in
 * `linuxDataplane()` from @isthmus/dataplane-linux to touch the real kernel.
 */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import {
  attachmentEndpointId,
  builtinControlPlane,
  createEndpoint,
  deleteEndpoint,
  describe,
  ensureNetwork,
  join,
  makeIpam,
  noopAgent,
  silentLogger,
  systemClock,
  type ContainerId,
  type Env,
  type Flow,
  type IfName,
  type NetworkId,
  type SandboxKey,
  type Subnet
} from '@isthmus/core'
import { fakeDataplane } from '@isthmus/core/testing'
import { fileStore } from '@isthmus/store-fs'

export interface Attachment {
  readonly container: string
  readonly address: string
  readonly mac: string
}

/**
 * Open the state directory and run `flow` over an Env built on it; the store is closed after.
 * Every run of the example is a new process as far as the core is concerned: all it knows comes
 * from the state directory.
 */
// The host outlives each run, as a real kernel's bridges and links do; the in-memory one lives
// as long as this module.
const host = fakeDataplane().port

const withEnv = async <A>(stateDir: string, flow: Flow<A>): Promise<E.Either<string, A>> => {
  const opened = await fileStore({ stateDir })()
  if (E.isLeft(opened)) return E.left(describe(opened.left))
  const store = opened.right
  const ipam = makeIpam({ store, clock: systemClock })
  const env: Env = {
    store,
    dataplane: host,
    controlPlane: builtinControlPlane(ipam, store),
    agent: noopAgent,
    log: silentLogger,
    clock: systemClock
  }
  const result = await flow(env)()
  await store.close()
  return pipe(result, E.mapLeft(describe))
}

const ETH0 = 'eth0' as IfName
const endpointOf = (network: string, container: string) => attachmentEndpointId(network, container as ContainerId, ETH0)

/** Attach `containers` to network `name` (subnet `subnet`) and return what each got. */
export const attachAll = (
  stateDir: string,
  name: string,
  subnet: string,
  containers: ReadonlyArray<string>
): Promise<E.Either<string, ReadonlyArray<Attachment>>> => {
  const networkId = name as NetworkId
  const attach = (container: string): Flow<Attachment> => {
    const id = endpointOf(name, container)
    const sandbox = `/var/run/netns/${container}` as SandboxKey
    return pipe(
      createEndpoint(networkId, {
        id,
        owner: { kind: 'container', containerId: container as ContainerId, ifName: ETH0 },
        addresses: [{ _tag: 'Any', family: 4 }]
      }),
      RTE.chain(() => join(id, { _tag: 'PluginMoves', sandbox, ifName: ETH0 })),
      RTE.map(({ endpoint, placed }) => ({ container, address: endpoint.addresses[0]?.cidr ?? '', mac: placed.mac }))
    )
  }
  return withEnv(
    stateDir,
    pipe(
      ensureNetwork({
        id: networkId,
        name,
        subnets: [{ family: 4, subnet: subnet as Subnet }],
        managedAddresses: true,
        internal: false,
        ipMasquerade: true,
        options: {}
      }),
      RTE.chain(() => RTE.sequenceSeqArray(containers.map(attach)))
    )
  )
}

/** Detach one container again: its address goes back to the pool. */
export const detach = (stateDir: string, name: string, container: string): Promise<E.Either<string, void>> =>
  withEnv(stateDir, deleteEndpoint(endpointOf(name, container)))
