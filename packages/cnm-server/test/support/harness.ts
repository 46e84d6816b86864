/**
 * The plugin app over in-memory ports (`testEnv` from @isthmus/core/testing, the built-in IPAM
 * on its memory store), served on a real unix socket in a temp directory, called the way dockerd
 * calls it.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { builtinControlPlane, makeIpam, type Env, type Ipam } from '@isthmus/core'
import { testEnv, type TestEnv } from '@isthmus/core/testing'
import { pluginCall, pluginRequest } from '@isthmus/testkit'
import { createPluginApp, listen } from '../../src/index.js'

export interface Harness {
  readonly socket: string
  readonly t: TestEnv
  readonly env: Env
  readonly ipam: Ipam
  /** POST a JSON body (or none); status and parsed reply. */
  readonly call: (path: string, body?: unknown) => Promise<{ status: number; body: unknown }>
  /** POST exact bytes; status, headers and the reply text. */
  readonly raw: (path: string, text: string) => ReturnType<typeof pluginRequest>
  readonly close: () => Promise<void>
}

export const startHarness = async (): Promise<Harness> => {
  const t = testEnv()
  const ipam = makeIpam({ store: t.env.store, clock: t.env.clock })
  const env: Env = { ...t.env, controlPlane: builtinControlPlane(ipam, t.env.store) }
  const dir = await mkdtemp(join(tmpdir(), 'isthmus-cnm-'))
  const socket = join(dir, 'plugin.sock')
  const server = await listen(createPluginApp({ env, ipam }), { socket })
  return {
    socket,
    t,
    env,
    ipam,
    call: (path, body) => pluginCall(socket, path, body),
    raw: (path, text) => pluginRequest(socket, path, text),
    close: async () => {
      await server.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
}

/** A 64-hex id as dockerd makes them (network, endpoint). */
export const dockerId = (seed: string): string => {
  let h = ''
  let x = 0x811c9dc5
  while (h.length < 64) {
    for (const c of seed + h.length) x = Math.imul(x ^ c.charCodeAt(0), 0x01000193) >>> 0
    h += x.toString(16).padStart(8, '0')
  }
  return h.slice(0, 64)
}
