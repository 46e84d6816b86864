/**
 * Side by side with the reference plugins (bridge + host-local v1.1.1 in /usr/lib/cni): the same
 * netconf (only `type`, bridge name, subnet and host-local's dataDir differ) and the same
 * environment give results of the same shape and equivalent kernel state: addresses, routes,
 * link state and MTU inside the namespace, bridge membership and state of the host end, the
 * gateway on the bridge; and after DEL, the same nothing.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import {
  addresses,
  cniEnv,
  execPlugin,
  invoke,
  link,
  linkNames,
  pings,
  realRuntime,
  requireRoot,
  routes,
  Scope
} from './support.js'

const scope = new Scope()
const runtime = realRuntime()
const dataDir = scope.tmpDir('hostlocal')
const stateDir = scope.tmpDir('state')

interface Side {
  readonly name: 'reference' | 'isthmus'
  readonly octet: number
  readonly bridge: string
  readonly run: (
    env: Record<string, string | undefined>,
    conf: unknown
  ) => Promise<{ exitCode: number; doc: Record<string, unknown> | undefined; stdout: string }>
  readonly conf: (version: string) => Record<string, unknown>
}

const common = (version: string, octet: number, bridge: string) => ({
  cniVersion: version,
  name: `side-${scope.id}-${octet}`,
  bridge,
  isGateway: true,
  ipMasq: false,
  mtu: 1400,
  ipam: { ranges: [[{ subnet: `10.231.${octet}.0/24` }]], routes: [{ dst: '10.231.0.0/16', gw: `10.231.${octet}.1` }] },
  dns: { nameservers: [`10.231.${octet}.1`], search: ['example.test'] }
})

const refBridge = scope.bridge('r')
const ourBridge = scope.bridge('i')
const sides: ReadonlyArray<Side> = [
  {
    name: 'reference',
    octet: 20,
    bridge: refBridge,
    run: (env, conf) => execPlugin('/usr/lib/cni/bridge', env, conf),
    conf: (v) => {
      const c = common(v, 20, refBridge)
      return { ...c, type: 'bridge', ipam: { ...c.ipam, type: 'host-local', dataDir } }
    }
  },
  {
    name: 'isthmus',
    octet: 21,
    bridge: ourBridge,
    run: (env, conf) => invoke(runtime, env, conf),
    conf: (v) => ({ ...common(v, 21, ourBridge), type: 'isthmus', stateDir, chainPrefix: scope.chainPrefix })
  }
]

/** A result or kernel view with what legitimately differs (subnet, names) replaced by placeholders. */
const normalise = (x: unknown, side: Side): unknown =>
  JSON.parse(
    JSON.stringify(x)
      .replaceAll(`10.231.${side.octet}.`, '10.231.X.')
      .replaceAll(side.bridge, 'BRIDGE')
      .replace(/"(veth[0-9a-f]{8}|istv[0-9a-f]{11})"/g, '"HOSTVETH"')
      .replace(/isthmus-cni-[0-9a-f]+-[a-z0-9-]+/g, 'NETNS')
      .replace(/"mac":"[0-9a-f:]{17}"/g, '"mac":"MAC"')
  )

const kernelView = (side: Side, ns: string, hostVeth: string) => {
  const eth0 = link('eth0', ns)
  const host = link(hostVeth)
  const br = link(side.bridge)
  return normalise(
    {
      eth0: {
        up: eth0?.flags.includes('UP'),
        mtu: eth0?.mtu,
        addresses: addresses('eth0', ns),
        hasMac: /^[0-9a-f:]{17}$/.test(eth0?.address ?? '')
      },
      routes: routes(ns, 4),
      links: linkNames(ns).sort(),
      host: { master: host?.master, up: host?.flags.includes('UP'), mtu: host?.mtu },
      bridge: { up: br?.flags.includes('UP'), addresses: addresses(side.bridge) }
    },
    side
  )
}

describe('side by side with the reference bridge + host-local', () => {
  before(requireRoot)
  after(() => scope.cleanup())

  for (const version of ['1.0.0', '0.4.0']) {
    it(`cniVersion ${version}: same result shape, same kernel state, same state after DEL`, async () => {
      const seen: Array<{ result: unknown; kernel: unknown; afterDel: unknown }> = []
      for (const side of sides) {
        const ns = scope.addNetns(`${side.name.slice(0, 3)}${version.replaceAll('.', '')}`)
        const env = cniEnv('ADD', { cid: `side-${version}`, netns: ns.path, ifName: 'eth0' })
        const add = await side.run(env, side.conf(version))
        assert.equal(add.exitCode, 0, `${side.name}: ${add.stdout}`)
        const interfaces = add.doc?.['interfaces'] as Array<{ name: string; mac?: string }>
        const hostVeth = interfaces[1]?.name ?? ''
        assert.ok(pings(ns.name, `10.231.${side.octet}.1`), `${side.name}: the gateway answers`)
        const kernel = kernelView(side, ns.name, hostVeth)
        const del = await side.run({ ...env, CNI_COMMAND: 'DEL' }, side.conf(version))
        assert.deepEqual([del.exitCode, del.stdout], [0, ''], side.name)
        seen.push({
          result: normalise(add.doc, side),
          kernel,
          afterDel: { links: linkNames(ns.name), hostVethGone: link(hostVeth) === undefined }
        })
      }
      const [ref, ours] = seen
      assert.deepEqual(ours?.result, ref?.result, 'results of the same shape and content')
      assert.deepEqual(ours?.kernel, ref?.kernel, 'equivalent kernel state')
      assert.deepEqual(ours?.afterDel, ref?.afterDel)
      assert.deepEqual(ref?.afterDel, { links: ['lo'], hostVethGone: true })
    })
  }
})
