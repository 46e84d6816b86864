/** Shared builders for the Contrail tests: simulators, clients with fast retries, results. */
import { strict as assert } from 'node:assert'
import type { EndpointId, NetworkId, NetworkSpec, Subnet } from '@isthmus/core'
import { configApi, type Auth, type ConfigApi, type HttpPolicy } from '@isthmus/contrail'
import {
  startAgentSimulator,
  startContrailSimulator,
  type AgentSimulator,
  type ContrailSimulator,
  type ContrailSimulatorOptions
} from '@isthmus/contrail/testing'

/** Short timeouts and back-off, so failure tests are fast; still 2 retries. */
export const FAST: HttpPolicy = { timeoutMs: 400, retries: 2, baseDelayMs: 5, maxDelayMs: 20 }

export const TENANT = 'demo'
export const VN = 'blue'
export const CIDR = '10.253.10.0/24'
export const USER = { username: 'isthmus', password: 's3cret-Passw0rd', project: 'admin' }

/** One sentence: no line break, some words, ends without a dangling separator. */
export const assertOneSentence = (s: string): void => {
  assert.ok(!/[\r\n]/.test(s), `not one line: ${s}`)
  assert.ok(s.length > 15 && s.length < 400, `length ${s.length}: ${s}`)
  assert.ok(!/[:,;]\s*$/.test(s), `dangling: ${s}`)
}

export interface Sims {
  readonly contrail: ContrailSimulator
  readonly agent: AgentSimulator
  readonly projectId: string
  readonly networkId: string
  readonly close: () => Promise<void>
}

/** A Contrail simulator with project `demo`, its default SG and VN `blue` on CIDR, and an agent. */
export const startSims = async (o: ContrailSimulatorOptions = {}, cidr = CIDR): Promise<Sims> => {
  const contrail = await startContrailSimulator(o)
  const agent = await startAgentSimulator()
  const projectId = contrail.seedProject(TENANT)
  contrail.seedSecurityGroup(TENANT)
  const networkId = contrail.seedNetwork(TENANT, VN, [{ cidr }])
  return {
    contrail,
    agent,
    projectId,
    networkId,
    close: async () => {
      await contrail.close()
      await agent.close()
    }
  }
}

export const api = (sims: Sims, auth: Auth = { kind: 'none' }, policy: HttpPolicy = FAST): ConfigApi =>
  configApi({ url: sims.contrail.url, auth, policy })

export const NET = 'contrail-net-1' as NetworkId

export const contrailSpec = (over: Partial<NetworkSpec> = {}): NetworkSpec => ({
  id: NET,
  name: 'contrail-net-1',
  subnets: [{ family: 4, subnet: CIDR as Subnet }],
  managedAddresses: true,
  internal: false,
  ipMasquerade: false,
  controller: { tenant: TENANT, network: VN },
  options: {},
  ...over
})

export const epId = (s: string): EndpointId => s as EndpointId

/** A 127.0.0.1 port nothing listens on (bound, then released). */
export const closedPort = async (): Promise<number> => {
  const { createServer } = await import('node:net')
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  const port = (s.address() as { port: number }).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

// One pair for every suite: @isthmus/core/testing's.
export { left, right } from '@isthmus/core/testing'
