import { uniquePrefix } from '@isthmus/testkit'
import { startCluster, buildSea } from './cluster.js'
const prefix = uniquePrefix('imx')
buildSea()
const t0 = Date.now()
const c = await startCluster(prefix, { hosts: 3 })
console.log(
  'started in',
  Date.now() - t0,
  c.hosts.map((h) => [h.name, h.pid(), h.underlayIp])
)
const sb = c.sandbox('a')
const out = await c.hosts[0]!.cni(
  'ADD',
  'x1',
  sb.path,
  c.conf(c.hosts[0]!, 'n1', { ipam: { ranges: [[{ subnet: `10.${c.underlay.octet}.64.0/24` }]] } })
)
console.log(out.code, out.stdout.slice(0, 300), out.ms)
console.log((await c.etcdGet('')).length)
await c.cleanup()
console.log('cleaned')
