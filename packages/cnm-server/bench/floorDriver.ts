/**
 * The bench's floor: a remote network + IPAM driver doing the least dockerd needs to start a
 * container. Addresses come from a counter, each Join gets a veth pair made ahead on one bridge,
 * and a pair is deleted after its DeleteEndpoint has been answered. No records, no locks, no
 * checks, no log lines, plain node:http.
 *
 * No remote driver can start a container faster than this on the machine, so the distance
 * between it and isthmus is what isthmus's own work costs; the distance between it and the builtin
 * bridge is what dockerd's remote driver path costs (HTTP round trips, EndpointOperInfo).
 * Bench-only: it serves one network of one /24 and forgets everything when it stops.
 */
import { execFile } from 'node:child_process'
import { rmSync } from 'node:fs'
import { createServer } from 'node:http'
import * as E from 'fp-ts/lib/Either.js'
import { describe, parseJson } from '@isthmus/core'

export interface FloorDriver {
  /** Stop serving and remove the bridge and every pair it made. */
  readonly close: () => Promise<void>
}

export interface FloorOptions {
  /** The plugin socket, `/run/docker/plugins/<name>.sock`. */
  readonly socket: string
  /** The first three octets of the network's /24, e.g. `10.252.230`. */
  readonly net24: string
  /** At most 6 characters that start every link name, unique to this run. */
  readonly tag: string
}

const ip = (...args: string[]): Promise<void> => new Promise((resolve) => execFile('ip', args, () => resolve()))

/** Start serving on `socket`. */
export const startFloorDriver = async ({ socket, net24, tag }: FloorOptions): Promise<FloorDriver> => {
  const bridge = `${tag}br`
  const gateway = `${net24}.1`
  const spares: string[] = []
  const byEndpoint = new Map<string, string>()
  const made = new Set<string>()
  const pending = new Set<Promise<void>>()
  let next = 2
  let seq = 0
  let refilling = false

  const track = (p: Promise<void>) => {
    pending.add(p)
    void p.finally(() => pending.delete(p))
  }
  const refill = () => {
    if (refilling) return
    refilling = true
    track(
      (async () => {
        while (spares.length < 3) {
          const host = `${tag}v${seq}`
          const peer = `${tag}c${seq++}`
          made.add(peer)
          await ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer)
          await ip('link', 'set', host, 'master', bridge, 'up')
          spares.push(peer)
        }
        refilling = false
      })()
    )
  }

  type Handler = (body: Record<string, unknown>) => object | Promise<object>
  const handlers: Record<string, Handler> = {
    'Plugin.Activate': () => ({ Implements: ['NetworkDriver', 'IpamDriver'] }),
    'NetworkDriver.GetCapabilities': () => ({ Scope: 'local', ConnectivityScope: 'local' }),
    'IpamDriver.GetCapabilities': () => ({ RequiresMACAddress: false }),
    'IpamDriver.GetDefaultAddressSpaces': () => ({
      LocalDefaultAddressSpace: 'floor',
      GlobalDefaultAddressSpace: 'floor-global'
    }),
    'IpamDriver.RequestPool': () => ({ PoolID: 'floor', Pool: `${net24}.0/24`, Data: {} }),
    'IpamDriver.RequestAddress': (b) => {
      const options = b['Options'] as Record<string, unknown> | null | undefined
      if (options?.['RequestAddressType'] === 'com.docker.network.gateway') {
        return { Address: `${gateway}/24`, Data: {} }
      }
      next = next >= 254 ? 2 : next + 1
      return { Address: `${net24}.${next}/24`, Data: {} }
    },
    'IpamDriver.ReleaseAddress': () => ({}),
    'IpamDriver.ReleasePool': () => ({}),
    'NetworkDriver.CreateNetwork': async () => {
      await ip('link', 'add', bridge, 'type', 'bridge')
      await ip('addr', 'add', `${gateway}/24`, 'dev', bridge)
      await ip('link', 'set', bridge, 'up')
      refill()
      return {}
    },
    'NetworkDriver.DeleteNetwork': async () => {
      await ip('link', 'del', bridge)
      return {}
    },
    'NetworkDriver.CreateEndpoint': (b) => {
      const peer = spares.shift()
      if (peer === undefined) throw new Error('no veth pair ready')
      byEndpoint.set(String(b['EndpointID']), peer)
      refill()
      return {}
    },
    'NetworkDriver.Join': (b) => ({
      InterfaceName: { SrcName: byEndpoint.get(String(b['EndpointID'])), DstPrefix: 'eth' },
      Gateway: gateway
    }),
    'NetworkDriver.Leave': () => ({}),
    'NetworkDriver.DeleteEndpoint': (b) => {
      const id = String(b['EndpointID'])
      const peer = byEndpoint.get(id)
      byEndpoint.delete(id)
      if (peer !== undefined) {
        made.delete(peer)
        track(ip('link', 'del', peer))
      }
      return {}
    },
    'NetworkDriver.EndpointOperInfo': () => ({ Value: {} }),
    'NetworkDriver.ProgramExternalConnectivity': () => ({}),
    'NetworkDriver.RevokeExternalConnectivity': () => ({})
  }

  const server = createServer((req, res) => {
    let text = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => (text += c))
    req.on('end', () => {
      const handler = handlers[(req.url ?? '').slice(1)]
      const reply = (status: number, body: object) => {
        const out = JSON.stringify(body)
        res.writeHead(status, {
          'Content-Type': 'application/vnd.docker.plugins.v1.2+json',
          'Content-Length': Buffer.byteLength(out)
        })
        res.end(out)
      }
      if (handler === undefined) return reply(404, { Err: `${req.url ?? ''} is not implemented` })
      const parsed = text === '' ? E.right({}) : parseJson('request')(text)
      if (E.isLeft(parsed)) return reply(500, { Err: describe(parsed.left) })
      Promise.resolve()
        .then(() => handler(parsed.right as Record<string, unknown>))
        .then(
          (body) => reply(200, body),
          (e: unknown) => reply(500, { Err: String(e) })
        )
    })
  })
  rmSync(socket, { force: true })
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socket, resolve))

  return {
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()))
      rmSync(socket, { force: true })
      await Promise.all([...pending])
      for (const peer of [...made, ...spares]) await ip('link', 'del', peer)
      await ip('link', 'del', bridge)
    }
  }
}
