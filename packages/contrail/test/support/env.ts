/** A core Env whose control plane is Contrail-or-built-in and whose agent is the vRouter client. */
import { builtinControlPlane, compositeControlPlane, makeIpam, type Env } from '@isthmus/core'
import { testEnv, type TestEnv } from '@isthmus/core/testing'
import { contrailControlPlane, vrouterAgent, type ConfigApi, type VRouterAgent } from '@isthmus/contrail'
import { api, FAST, type Sims } from './helpers.js'

export const OWNER = 'test-host'

export interface ContrailEnv {
  readonly t: TestEnv
  readonly env: Env
  readonly api: ConfigApi
  readonly agent: VRouterAgent
  readonly run: <A>(flow: (env: Env) => () => Promise<A>) => Promise<A>
}

export const contrailEnv = (sims: Sims): ContrailEnv => {
  const t = testEnv()
  const client = api(sims)
  const agent = vrouterAgent({ url: sims.agent.url, policy: FAST })
  const store = t.env.store
  const controlPlane = compositeControlPlane({
    controller: contrailControlPlane({ api: client, owner: OWNER, store }),
    builtin: builtinControlPlane(makeIpam({ store, clock: t.env.clock }), store)
  })
  const env: Env = { ...t.env, controlPlane, agent }
  return { t, env, api: client, agent, run: (flow) => flow(env)() }
}
