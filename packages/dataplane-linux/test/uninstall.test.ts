/**
 * Which links `isthmus uninstall` takes as an installation's (`ownLinks`), from what `ip -json
 * -details link` shows: only what the kernel marks and the store records as its own. The removal
 * itself runs against the kernel in packages/cli/test/uninstall.test.ts.
 */
import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import { ownLinks } from '../src/uninstall.js'
import type { IpLink } from '../src/iproute.js'
import { network } from './helpers.js'

const link = (ifname: string, kind: string, more: Partial<IpLink> = {}): IpLink => ({
  ifindex: 1,
  ifname,
  flags: [],
  mtu: 1500,
  linkinfo: { info_kind: kind },
  ...more
})

describe('ownLinks', () => {
  const mine = network({ id: 'net-a', bridge: 'br-a' })
  const adopted = network({ id: 'net-b', bridge: 'cni0' })
  const records = { networks: [mine, adopted], hostIfNames: ['istvrecorded'] }

  it('takes its marked bridges, their endpoint ports and spares, recorded host ends, masterless spares, its overlays', () => {
    const links = [
      link('br-a', 'bridge', { ifalias: 'isthmus:net:net-a' }),
      link('istv1', 'veth', { master: 'br-a', ifalias: 'isthmus:endpoint:e1' }),
      link('istvspare', 'veth', { master: 'br-a', ifalias: 'isthmus-spare' }),
      link('istvrecorded', 'veth', { master: 'elsewhere' }),
      link('istvlost', 'veth', { ifalias: 'isthmus-spare', link: 'istclost' }),
      link('istx2a', 'vxlan', { ifalias: 'isthmus:overlay:net-a' })
    ]
    assert.deepEqual(ownLinks(links, records), {
      bridges: ['br-a'],
      veths: ['istv1', 'istvspare', 'istvrecorded', 'istvlost'],
      overlays: ['istx2a']
    })
  })

  it("leaves an adopted bridge, another isthmus network's bridge and its ports, and other links", () => {
    const links = [
      link('cni0', 'bridge'),
      link('istv2', 'veth', { master: 'cni0' }),
      link('br-a', 'bridge', { ifalias: 'isthmus:net:net-other' }),
      link('istv3', 'veth', { master: 'br-a', ifalias: 'isthmus-spare' }),
      link('br-x', 'bridge', { ifalias: 'isthmus:net:net-x' }),
      link('istv4', 'veth', { master: 'br-x', ifalias: 'isthmus-spare' }),
      link('vethabc', 'veth', { master: 'br-x' }),
      // a spare whose peer was moved to another namespace is a taken one, a container's
      link('istv5', 'veth', { ifalias: 'isthmus-spare', link: 'istc5', link_netnsid: 0 }),
      link('istx2b', 'vxlan', { ifalias: 'isthmus:overlay:net-x' }),
      link('eth0', 'device')
    ]
    assert.deepEqual(ownLinks(links, records), { bridges: [], veths: [], overlays: [] })
  })
})
