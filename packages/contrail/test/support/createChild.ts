/**
 * A process that runs one createEndpoint against the simulators, with the file store and the real
 * Linux dataplane, so that a parent can SIGKILL it between two steps. `hangAt` names a non-HTTP
 * step to stop before (`dataplane.ensureEndpoint`, `store.endpoints.put`): the child prints
 * `HANG <step>` and waits forever. HTTP steps are stopped by the simulators' `hang` faults.
 *
 * argv[2]: JSON {contrailUrl, agentUrl, stateDir, networkId, endpointId, hangAt?}
 */
import * as E from 'fp-ts/lib/Either.js'
import {
  builtinControlPlane,
  compositeControlPlane,
  createEndpoint,
  describe as describeError,
  makeIpam,
  systemClock,
  type EndpointId,
  type Env,
  type NetworkId
} from '@isthmus/core'
import { recordingLogger } from '@isthmus/core/testing'
import { linuxDataplane } from '@isthmus/dataplane-linux'
import { fileStore } from '@isthmus/store-fs'
import { configApi, contrailControlPlane, vrouterAgent } from '@isthmus/contrail'

interface Args {
  readonly contrailUrl: string
  readonly agentUrl: string
  readonly stateDir: string
  readonly networkId: string
  readonly endpointId: string
  readonly owner: string
  readonly hangAt?: string
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args
const policy = { timeoutMs: 60_000, retries: 0, baseDelayMs: 5, maxDelayMs: 5 }

const hang = <F extends (...a: never[]) => unknown>(step: string, f: F): F =>
  ((...a: never[]) =>
    args.hangAt === step
      ? () => {
          process.stdout.write(`HANG ${step}\n`)
          return new Promise(() => undefined)
        }
      : f(...a)) as unknown as F

const main = async (): Promise<void> => {
  const opened = await fileStore({ stateDir: args.stateDir, lockStaleMs: 2_000 })()
  if (E.isLeft(opened)) throw new Error(describeError(opened.left))
  const store = opened.right
  const api = configApi({ url: args.contrailUrl, auth: { kind: 'none' }, policy })
  const dp = linuxDataplane()
  const env: Env = {
    store: { ...store, endpoints: { ...store.endpoints, put: hang('store.endpoints.put', store.endpoints.put) } },
    dataplane: { ...dp, ensureEndpoint: hang('dataplane.ensureEndpoint', dp.ensureEndpoint) },
    controlPlane: compositeControlPlane({
      controller: contrailControlPlane({ api, owner: args.owner, store }),
      builtin: builtinControlPlane(makeIpam({ store, clock: systemClock }), store)
    }),
    agent: vrouterAgent({ url: args.agentUrl, policy }),
    log: recordingLogger().port,
    clock: systemClock
  }
  process.stdout.write('READY\n')
  const id = args.endpointId as EndpointId
  const r = await createEndpoint(args.networkId as NetworkId, {
    id,
    owner: { kind: 'docker', endpointId: id },
    addresses: [{ _tag: 'Any', family: 4 }]
  })(env)()
  process.stdout.write(E.isRight(r) ? 'DONE\n' : `FAILED ${describeError(r.left)}\n`)
  await store.close()
}

void main()
