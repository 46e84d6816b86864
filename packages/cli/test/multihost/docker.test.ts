/**
 * Docker and CNI on one cluster network across hosts (issue 15's acceptance): the test's dockerd
 * in the root namespace, with a fourth isthmus daemon there joined to the underlay (its plugin
 * socket the one dockerd looks up: /run/docker/plugins/<name>.sock, a name of this run's own), makes
 * `docker network create -d <it> --ipam-driver <it> -o isthmus.cluster=<net> --subnet S`; a
 * container on it and CNI sandboxes on two other hosts (of three) ping each other, both ways; a CNI sandbox on
 * the Docker host joins the Docker network (`dockerNetwork`) and reaches both.
 *
 * Runs when a dockerd answers at /var/run/docker.sock; under CI=true it never skips (a dockerd of
 * its own is started, and stopped by PID afterwards).
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import {
  containerNetwork,
  docker,
  ensureBusyboxImage,
  ensureDockerd,
  mustDocker,
  pings as containerPings,
  removeDockerObjects,
  uniquePrefix,
  type DockerDaemon
} from '@isthmus/testkit'
import { addressOf, buildSea, pings, startCluster, type TestCluster } from './cluster.js'

const prefix = uniquePrefix('imd')
const dockerAnswers = async (): Promise<boolean> => (await docker('info', '--format', '{{.ServerVersion}}')).code === 0

describe('multi-host: a Docker container and CNI sandboxes on three hosts', { timeout: 300_000 }, async () => {
  const ci = process.env['CI'] === 'true'
  const answers = await dockerAnswers()
  const skip = !answers && !ci ? 'no dockerd answers at /var/run/docker.sock (CI=true starts one)' : false

  let daemon: DockerDaemon | undefined
  let c: TestCluster | undefined
  let image = ''
  const network = `${prefix}-net`
  const dockerNet = `${prefix}-dnet`
  const container = `${prefix}-ctr`

  before(async () => {
    if (skip !== false) return
    buildSea()
    daemon = await ensureDockerd()
    image = await ensureBusyboxImage()
    c = await startCluster(prefix, { hosts: 3, rootHost: true, leaseTtl: 5 })
  })
  after(async () => {
    await removeDockerObjects(prefix).catch(() => undefined)
    await c?.cleanup()
    await daemon?.stop()
  })

  it(
    'docker network create -o isthmus.cluster=<net> on the root host; a container there and a CNI sandbox on h1 ping both ways',
    { skip },
    async () => {
      const cluster = c!
      const h0 = cluster.rootHost!
      const h1 = cluster.hosts[0]!
      const subnet = `10.${cluster.underlay.octet}.96.0/22`
      await mustDocker(
        'network',
        'create',
        '-d',
        h0.plugin,
        '--ipam-driver',
        h0.plugin,
        '-o',
        `isthmus.cluster=${network}`,
        '--subnet',
        subnet,
        dockerNet
      )
      await mustDocker('run', '-d', '--name', container, '--net', dockerNet, image, 'sleep', '600')
      const inDocker = (await containerNetwork(container, dockerNet)).IPAddress

      // The CNI netconf names the cluster network only: its subnet is the cluster's.
      const sb = cluster.sandbox('c1')
      const out = await h1.cni('ADD', `${prefix}-c1`, sb.path, cluster.conf(h1, network))
      assert.equal(out.code, 0, `${out.stdout} ${out.stderr}`)
      const inCni = addressOf(out)!
      assert.notEqual(inCni, inDocker)

      assert.ok(
        await containerPings(container, inCni, 5),
        `the container (${inDocker}) pings the sandbox on h1 (${inCni})`
      )
      assert.ok(await pings(sb.name, inDocker, 5), `the sandbox on h1 (${inCni}) pings the container (${inDocker})`)

      // A third host: its sandbox and the container reach each other too, and it reaches h1's.
      const h2 = cluster.hosts[1]!
      const sb2 = cluster.sandbox('c2')
      const out2 = await h2.cni('ADD', `${prefix}-c2`, sb2.path, cluster.conf(h2, network))
      assert.equal(out2.code, 0, `${out2.stdout} ${out2.stderr}`)
      const inCni2 = addressOf(out2)!
      assert.ok(await containerPings(container, inCni2, 5), `the container pings the sandbox on h2 (${inCni2})`)
      assert.ok(await pings(sb2.name, inDocker, 5), 'the sandbox on h2 pings the container')
      assert.ok(await pings(sb2.name, inCni, 5), 'the sandbox on h2 pings the one on h1')
      const del2 = await h2.cni('DEL', `${prefix}-c2`, sb2.path, cluster.conf(h2, network))
      assert.equal(del2.code, 0, del2.stdout)

      // On the Docker host, CNI joins the Docker network (one network there): dockerNetwork, no cluster key.
      const sb0 = cluster.sandbox('c0')
      const onDocker = {
        cniVersion: '1.0.0',
        name: `${prefix}-on-docker`,
        type: 'isthmus',
        dockerNetwork: { network: dockerNet },
        daemon: h0.cniSocket,
        stateDir: h0.stateDir,
        chainPrefix: h0.chainPrefix
      }
      const out0 = await h0.cni('ADD', `${prefix}-c0`, sb0.path, onDocker)
      assert.equal(out0.code, 0, `${out0.stdout} ${out0.stderr}`)
      const inCni0 = addressOf(out0)!
      assert.ok(
        await pings(sb0.name, inCni, 5),
        `the sandbox on the Docker host (${inCni0}) pings the one on h1 (${inCni})`
      )
      assert.ok(await pings(sb.name, inCni0, 5), `the sandbox on h1 pings the one on the Docker host`)
      assert.ok(await containerPings(container, inCni0, 3), 'the container pings its CNI neighbour')
      const del0 = await h0.cni('DEL', `${prefix}-c0`, sb0.path, onDocker)
      assert.equal(del0.code, 0, del0.stdout)

      const del = await h1.cni('DEL', `${prefix}-c1`, sb.path, cluster.conf(h1, network))
      assert.equal(del.code, 0, del.stdout)
      await mustDocker('rm', '-f', container)
      const rm = await docker('network', 'rm', dockerNet)
      assert.equal(rm.code, 0, rm.stderr)
    }
  )

  it(
    "--ipam-opt isthmus.cluster=<net> (the IPAM driver's option) makes a cluster network too; CNI on h1 joins it by name",
    { skip },
    async () => {
      const cluster = c!
      const h0 = cluster.rootHost!
      const h1 = cluster.hosts[0]!
      const net2 = `${prefix}-net2`
      const docker2 = `${prefix}-dnet2`
      const ctr2 = `${prefix}-ctr2`
      await mustDocker(
        'network',
        'create',
        '-d',
        h0.plugin,
        '--ipam-driver',
        h0.plugin,
        '--ipam-opt',
        `isthmus.cluster=${net2}`,
        '--subnet',
        `10.${cluster.underlay.octet}.104.0/24`,
        docker2
      )
      await mustDocker('run', '-d', '--name', ctr2, '--net', docker2, image, 'sleep', '600')
      const inDocker = (await containerNetwork(ctr2, docker2)).IPAddress
      const sb = cluster.sandbox('n2')
      const out = await h1.cni('ADD', `${prefix}-n2`, sb.path, cluster.conf(h1, net2))
      assert.equal(out.code, 0, `${out.stdout} ${out.stderr}`)
      assert.ok(await containerPings(ctr2, addressOf(out)!, 5), 'the container pings the sandbox on h1')
      assert.ok(await pings(sb.name, inDocker, 5), 'the sandbox on h1 pings the container')
      const del = await h1.cni('DEL', `${prefix}-n2`, sb.path, cluster.conf(h1, net2))
      assert.equal(del.code, 0, del.stdout)
      await mustDocker('rm', '-f', ctr2)
      assert.equal((await docker('network', 'rm', docker2)).code, 0)
    }
  )
})
