/**
 * Restart recovery: a createEndpoint run in a child process (file store, real Linux dataplane,
 * the simulators) is SIGKILLed between two steps; a fresh process then reconciles the host (core
 * gc), the controller (reconcileController) and the agent (agent.reconcile), and the three end
 * consistent with the store: an endpoint the store does not hold has nothing left anywhere, and
 * one it holds has its controller objects, its agent port and its link.
 */
import { strict as assert } from 'node:assert'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import {
  compositeControlPlane,
  bridgeIfName,
  builtinControlPlane,
  deleteEndpoint,
  deleteNetwork,
  describe as describeError,
  ensureNetwork,
  gc,
  hostIfName,
  makeIpam,
  peerIfName,
  systemClock,
  type EndpointId,
  type Env,
  type NetworkId,
  type Store,
  type Subnet
} from '@isthmus/core'
import { recordingLogger } from '@isthmus/core/testing'
import { linuxDataplane } from '@isthmus/dataplane-linux'
import { fileStore } from '@isthmus/store-fs'
import { configApi, contrailControlPlane, reconcileController, vrouterAgent } from '@isthmus/contrail'
import { contrailSpec, FAST, right, startSims, type Sims } from './support/helpers.js'

const CHILD = fileURLToPath(new URL('./support/createChild.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const CIDR = '10.253.40.0/24'
const OWNER = `recovery-${randomBytes(3).toString('hex')}`
// This run's own iptables chains, removed at the end.
const CHAINS = `ITR${randomBytes(4).toString('hex')}`
const dataplane = linuxDataplane({ chainPrefix: CHAINS })

const linkExists = (name: string): boolean => {
  try {
    execFileSync('ip', ['link', 'show', name], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

interface Run {
  readonly proc: ChildProcess
  readonly out: () => string
  readonly waitFor: (text: string) => Promise<void>
  readonly exited: Promise<void>
}

const runChild = (args: object): Run => {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=@isthmus/source', CHILD, JSON.stringify(args)],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }
  )
  let out = ''
  let err = ''
  proc.stdout.setEncoding('utf8').on('data', (c: string) => (out += c))
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (err += c))
  const exited = new Promise<void>((r) => proc.once('exit', () => r()))
  return {
    proc,
    out: () => out,
    exited,
    waitFor: async (text) => {
      const end = Date.now() + 30_000
      while (!out.includes(text)) {
        if (proc.exitCode !== null || Date.now() > end) throw new Error(`child never printed ${text}: ${out} ${err}`)
        await new Promise((r) => setTimeout(r, 20))
      }
    }
  }
}

describe('restart recovery after a createEndpoint killed between steps', { timeout: 120_000 }, () => {
  let sims: Sims
  let stateDir: string
  let store: Store
  let env: Env
  const networkId = `rec-${randomBytes(4).toString('hex')}` as NetworkId
  const children: ChildProcess[] = []

  before(async () => {
    sims = await startSims({}, CIDR)
    stateDir = await mkdtemp(join(tmpdir(), 'isthmus-contrail-recovery-'))
    const opened = await fileStore({ stateDir, lockStaleMs: 2_000 })()
    if (E.isLeft(opened)) throw new Error(describeError(opened.left))
    store = opened.right
    const api = configApi({ url: sims.contrail.url, auth: { kind: 'none' }, policy: FAST })
    env = {
      store,
      dataplane,
      controlPlane: compositeControlPlane({
        controller: contrailControlPlane({ api, owner: OWNER, store }),
        builtin: builtinControlPlane(makeIpam({ store, clock: systemClock }), store)
      }),
      agent: vrouterAgent({ url: sims.agent.url, policy: FAST }),
      log: recordingLogger().port,
      clock: systemClock
    }
    await right(
      ensureNetwork(
        contrailSpec({
          id: networkId,
          name: networkId,
          bridge: bridgeIfName(networkId),
          subnets: [{ family: 4, subnet: CIDR as Subnet }]
        })
      )(env)()
    )
  })

  after(async () => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) process.kill(c.pid, 'SIGKILL')
    }
    if (env !== undefined) {
      const left = await env.store.endpoints.list()()
      for (const e of E.isRight(left) ? left.right : []) await deleteEndpoint(e.id)(env)()
      await deleteNetwork(networkId)(env)()
    }
    await store?.close()
    await dataplane.removeFirewall()()
    if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true })
    await sims?.close()
  })

  const recover = async (): Promise<void> => {
    const api = configApi({ url: sims.contrail.url, auth: { kind: 'none' }, policy: FAST })
    const host = await right(gc({ valid: 'keep-all-endpoints' })(env)())
    assert.deepEqual(host.failures, [])
    const ctl = await right(reconcileController({ api, store, owner: OWNER })())
    assert.deepEqual(ctl.failures, [])
    assert.deepEqual(ctl.missing, [])
    const ag = await right(vrouterAgent({ url: sims.agent.url, policy: FAST }).reconcile(store)())
    assert.deepEqual(ag.failures, [])
    sims.agent.runStaleCleaner()
  }

  const points: ReadonlyArray<{
    readonly after: string
    readonly stop: { http?: { method: string; path: RegExp | string; agent?: boolean }; step?: string }
    readonly stored: boolean
  }> = [
    { after: 'the interface', stop: { http: { method: 'POST', path: '/virtual-machines' } }, stored: false },
    { after: 'the VM', stop: { http: { method: 'POST', path: '/ref-update' } }, stored: false },
    { after: 'the interface→VM reference', stop: { http: { method: 'POST', path: '/instance-ips' } }, stored: false },
    { after: 'the instance-ip', stop: { step: 'dataplane.ensureEndpoint' }, stored: false },
    { after: 'the veth pair', stop: { step: 'store.endpoints.put' }, stored: false },
    { after: 'the store record', stop: { http: { method: 'POST', path: '/port', agent: true } }, stored: true }
  ]

  for (const p of points) {
    it(`killed after ${p.after}: reconcile leaves controller, agent and host as the store says`, async () => {
      const endpointId = `rec-ep-${randomBytes(6).toString('hex')}` as EndpointId
      const h = p.stop.http
      if (h !== undefined) {
        ;(h.agent === true ? sims.agent : sims.contrail).inject({ method: h.method, path: h.path, hang: true })
      }
      const hung = h === undefined ? undefined : (h.agent === true ? sims.agent : sims.contrail).nextHang()
      const run = runChild({
        contrailUrl: sims.contrail.url,
        agentUrl: sims.agent.url,
        stateDir,
        networkId,
        endpointId,
        owner: OWNER,
        ...(p.stop.step === undefined ? {} : { hangAt: p.stop.step })
      })
      children.push(run.proc)
      try {
        if (hung !== undefined) await hung
        else await run.waitFor(`HANG ${p.stop.step}`)
        process.kill(run.proc.pid!, 'SIGKILL')
        await run.exited
      } finally {
        sims.contrail.clearFaults()
        sims.agent.clearFaults()
      }
      assert.ok(!run.out().includes('DONE'), 'the child was killed before finishing')

      await recover()

      const stored = await right(store.endpoints.list()())
      const mine = sims.contrail.created().filter((o) => o.fq_name.at(-1) === endpointId)
      if (p.stored) {
        const ep = stored.find((e) => e.id === endpointId)
        assert.ok(ep !== undefined)
        assert.deepEqual(mine.map((o) => o.type).sort(), [
          'instance-ip',
          'virtual-machine',
          'virtual-machine-interface'
        ])
        assert.ok(sims.agent.has(ep.controller!.interfaceId!), 'the agent holds the stored endpoint’s port')
        assert.ok(linkExists(hostIfName(endpointId)), 'its link is on the host')
        await right(deleteEndpoint(endpointId)(env)())
      } else {
        assert.equal(
          stored.find((e) => e.id === endpointId),
          undefined
        )
        assert.deepEqual(
          mine.map((o) => o.type),
          [],
          'nothing of it in the controller'
        )
        assert.equal(sims.agent.ports().size, 0)
        assert.ok(
          !linkExists(hostIfName(endpointId)) && !linkExists(peerIfName(endpointId)),
          'no link of it on the host'
        )
      }
      // whatever happened, nothing else is left either
      assert.deepEqual(
        sims.contrail.created().filter((o) => o.fq_name.at(-1) !== endpointId),
        []
      )
    })
  }
})
