/**
 * The Docker calls of a network and an endpoint, sent to a running daemon's plugin socket the way
 * dockerd 20.10 sends them (IPAM first, then the network driver), for the daemon-level tests.
 */
import { pluginCall } from '@isthmus/testkit'

type Body = Record<string, unknown>

const call = async (socket: string, path: string, body: unknown): Promise<Body> => {
  const r = await pluginCall(socket, path, body)
  const b = (r.body ?? {}) as Body
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${JSON.stringify(b)}`)
  return b
}

/**
 * What `docker network create -o com.docker.network.bridge.name=B` sends; the pool id, the gateway and
 * CreateNetwork's reply.
 */
export const createNetwork = async (
  socket: string,
  p: { readonly id: string; readonly subnet: string; readonly bridge: string }
): Promise<{ readonly poolId: string; readonly gateway: string; readonly status: number; readonly body: Body }> => {
  const pool = await call(socket, '/IpamDriver.RequestPool', {
    AddressSpace: 'isthmus-local',
    Pool: p.subnet,
    SubPool: '',
    Options: {},
    V6: false
  })
  const gw = await call(socket, '/IpamDriver.RequestAddress', {
    PoolID: pool['PoolID'],
    Address: '',
    Options: { RequestAddressType: 'com.docker.network.gateway' }
  })
  const r = await pluginCall(socket, '/NetworkDriver.CreateNetwork', {
    NetworkID: p.id,
    Options: {
      'com.docker.network.enable_ipv6': false,
      'com.docker.network.generic': { 'com.docker.network.bridge.name': p.bridge }
    },
    IPv4Data: [{ AddressSpace: 'isthmus-local', Gateway: gw['Address'], Pool: p.subnet }],
    IPv6Data: []
  })
  return {
    poolId: String(pool['PoolID']),
    gateway: String(gw['Address']),
    status: r.status,
    body: (r.body ?? {}) as Body
  }
}

/** What `docker network rm` sends. */
export const deleteNetwork = async (socket: string, id: string, poolId: string): Promise<void> => {
  await call(socket, '/NetworkDriver.DeleteNetwork', { NetworkID: id })
  await call(socket, '/IpamDriver.ReleasePool', { PoolID: poolId })
}

/** What `docker network rm` sends, in dockerd's order: the gateway and the pool back, then DeleteNetwork. */
export const removeNetwork = async (
  socket: string,
  p: { readonly id: string; readonly poolId: string; readonly gateway: string }
): Promise<void> => {
  await call(socket, '/IpamDriver.ReleaseAddress', { PoolID: p.poolId, Address: p.gateway.split('/')[0] })
  await call(socket, '/IpamDriver.ReleasePool', { PoolID: p.poolId })
  await call(socket, '/NetworkDriver.DeleteNetwork', { NetworkID: p.id })
}

/**
 * What `docker run` sends before Join: an address, then CreateEndpoint; `publish` adds one
 * published port (`-p <hostPort>:80`), which keeps the endpoint from taking a spare pair.
 */
export const createEndpoint = async (
  socket: string,
  p: { readonly networkId: string; readonly id: string; readonly poolId: string; readonly publish?: number }
): Promise<{ readonly address: string }> => {
  const a = await call(socket, '/IpamDriver.RequestAddress', { PoolID: p.poolId, Address: '', Options: {} })
  await call(socket, '/NetworkDriver.CreateEndpoint', {
    NetworkID: p.networkId,
    EndpointID: p.id,
    Interface: { Address: a['Address'], AddressIPv6: '', MacAddress: '' },
    Options:
      p.publish === undefined
        ? {}
        : { 'com.docker.network.portmap': [{ Proto: 6, Port: 80, HostPort: p.publish, HostIP: '' }] }
  })
  return { address: String(a['Address']) }
}

/** What `docker start` sends after CreateEndpoint; resolves the link dockerd would move (SrcName). */
export const join = async (socket: string, p: { readonly networkId: string; readonly id: string }): Promise<string> => {
  const r = await call(socket, '/NetworkDriver.Join', {
    NetworkID: p.networkId,
    EndpointID: p.id,
    SandboxKey: `/var/run/docker/netns/${p.id.slice(0, 12)}`,
    Options: {}
  })
  return String((r['InterfaceName'] as Record<string, unknown> | undefined)?.['SrcName'])
}

export const leave = async (socket: string, p: { readonly networkId: string; readonly id: string }): Promise<void> => {
  await call(socket, '/NetworkDriver.Leave', { NetworkID: p.networkId, EndpointID: p.id })
}

/** What `docker rm` sends after Leave: DeleteEndpoint, then the address back. */
export const deleteEndpoint = async (
  socket: string,
  p: { readonly networkId: string; readonly id: string; readonly poolId: string; readonly address: string }
): Promise<void> => {
  await call(socket, '/NetworkDriver.DeleteEndpoint', { NetworkID: p.networkId, EndpointID: p.id })
  await call(socket, '/IpamDriver.ReleaseAddress', { PoolID: p.poolId, Address: p.address.split('/')[0] })
}
