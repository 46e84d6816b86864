/**
 * 200 attachments to one isthmus network from both frontends, interleaved and four at a time,
 * against the real dockerd 20.10, `isthmus serve` and the kernel: 50 `docker run -d --net`, 50
 * `docker network connect` of `--net=none` containers, and 100 CNI ADDs (`dockerNetwork`) into
 * namespaces made here. No address is handed out twice; removing everything (interleaved too)
 * leaves no link, namespace, endpoint record or lease.
 *
 * Subnet: a random /23 of 10.242.64.0/19; names start with this run's prefix.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import {
  containerNetworks,
  ensureBusyboxImage,
  ensureDockerd,
  hostLinks,
  mustDocker,
  removeDockerObjects,
  startPlugin,
  uniquePrefix,
  type DockerDaemon,
  type PluginProcess
} from '@isthmus/testkit'
import type { Cni } from '@isthmus/cni-exec'
import { cniEnv, invoke, realRuntime, requireRoot, Scope, sh } from './support.js'
import { endpointRecords, leasesIn } from './dockerSupport.js'

const prefix = uniquePrefix('ismx')
const name = (s: string) => `${prefix}-${s}`
const subnet = `10.242.${64 + 2 * Math.floor(Math.random() * 16)}.0/23`
const net = name('net')
const scope = new Scope()
const runtime = realRuntime()
const PARALLEL = 4

type Job = { readonly kind: 'run' | 'connect' | 'cni'; readonly i: number }

/** Run `jobs` with at most `n` at a time; the first failure rejects once all started ones ended. */
const pool = async <A>(items: ReadonlyArray<A>, n: number, f: (a: A) => Promise<void>): Promise<void> => {
  let next = 0
  const worker = async () => {
    while (next < items.length) await f(items[next++] as A)
  }
  const results = await Promise.allSettled(Array.from({ length: n }, worker))
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed !== undefined) throw failed.reason
}

/** A fixed interleaving: run, cni, connect, cni, run, cni, … */
const interleaved = (): Job[] => {
  const jobs: Job[] = []
  for (let i = 0; i < 50; i++) {
    jobs.push({ kind: 'run', i }, { kind: 'cni', i: 2 * i }, { kind: 'connect', i }, { kind: 'cni', i: 2 * i + 1 })
  }
  return jobs
}

const ours = (links: ReadonlyArray<string>, before: ReadonlySet<string>) =>
  links.filter((l) => /^ist[vc]/.test(l) && !before.has(l))

describe('200 mixed attachments from Docker and CNI on one network', { timeout: 300_000 }, () => {
  let daemon: DockerDaemon | undefined
  let plugin: PluginProcess | undefined
  let image = ''
  // the daemon's state directory and chain prefix: the Docker network's own store and rules
  const conf = () => ({
    cniVersion: '1.0.0',
    name: name('cni'),
    type: 'isthmus',
    stateDir: plugin?.stateDir,
    chainPrefix: plugin?.chainPrefix,
    dockerNetwork: { network: net }
  })
  const sandboxes = new Map<number, { readonly name: string; readonly path: string }>()
  const cniEnvOf = (command: string, i: number) =>
    cniEnv(command, { cid: name(`s${i}`), netns: sandboxes.get(i)?.path ?? '', ifName: 'eth0' })
  const addresses = new Map<string, string>()
  let linksBefore = new Set<string>()

  before(async () => {
    requireRoot()
    daemon = await ensureDockerd()
    image = await ensureBusyboxImage()
    plugin = await startPlugin(name('p'))
    linksBefore = new Set(await hostLinks())
    await mustDocker('network', 'create', '-d', plugin.name, '--ipam-driver', plugin.name, '--subnet', subnet, net)
  })
  after(async () => {
    // CNI attachments first: the daemon refuses to delete a network that still has some.
    await pool([...sandboxes.keys()], PARALLEL, async (i) => {
      await invoke(runtime, cniEnvOf('DEL', i), conf())
    })
    await removeDockerObjects(prefix)
    await plugin?.dispose()
    await scope.cleanup()
    await daemon?.stop()
  })

  it('200 attachments, interleaved, four at a time: 200 distinct addresses; removed, nothing is left', async () => {
    const started = Date.now()
    const attach = async (job: Job): Promise<void> => {
      if (job.kind === 'cni') {
        const ns = scope.addNetns(`s${job.i}`)
        sandboxes.set(job.i, ns)
        const out = await invoke(runtime, cniEnvOf('ADD', job.i), conf())
        assert.equal(out.exitCode, 0, out.stdout)
        addresses.set(`cni ${job.i}`, ((out.doc as Cni.Result100).ips?.[0]?.address ?? '').split('/')[0] ?? '')
        return
      }
      const ctr = name(`${job.kind}${job.i}`)
      if (job.kind === 'run') await mustDocker('run', '-d', '--name', ctr, '--net', net, image, 'sleep', '600')
      else {
        await mustDocker('run', '-d', '--name', ctr, '--net=none', image, 'sleep', '600')
        await mustDocker('network', 'disconnect', 'none', ctr)
        await mustDocker('network', 'connect', net, ctr)
      }
      addresses.set(ctr, (await containerNetworks(ctr))[net]?.IPAddress ?? '')
    }
    await pool(interleaved(), PARALLEL, attach)
    const all = [...addresses.values()]
    assert.equal(all.length, 200)
    assert.ok(
      all.every((a) => a !== ''),
      'every attachment has an address'
    )
    assert.equal(new Set(all).size, 200, 'no address twice')
    assert.deepEqual(await leasesIn(plugin!.stateDir), [...all].sort(), 'the leases are exactly the 200 addresses')
    const attachedMs = Date.now() - started

    const detach = async (job: Job): Promise<void> => {
      if (job.kind === 'cni') {
        const out = await invoke(runtime, cniEnvOf('DEL', job.i), conf())
        assert.equal(out.exitCode, 0, out.stdout)
        const ns = sandboxes.get(job.i)!
        scope.dropNetns(ns.name)
        sandboxes.delete(job.i)
      } else await mustDocker('rm', '-f', name(`${job.kind}${job.i}`))
    }
    await pool(interleaved().reverse(), PARALLEL, detach)
    assert.deepEqual(await leasesIn(plugin!.stateDir), [], 'no lease left')
    assert.deepEqual(endpointRecords(plugin!.stateDir), [], 'no endpoint record left')
    await mustDocker('network', 'rm', net)
    assert.deepEqual(ours(await hostLinks(), linksBefore), [], 'no isthmus link left')
    assert.deepEqual(
      sh('ip', ['netns', 'list'])
        .split('\n')
        .filter((l) => l.includes(scope.id)),
      [],
      'no namespace left'
    )
    process.stderr.write(`200 attachments in ${attachedMs} ms, removed in ${Date.now() - started - attachedMs} ms\n`)
  })
})
