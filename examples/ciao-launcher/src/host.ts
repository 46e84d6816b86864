/**
 * What the launcher makes on the host, as ciao-launcher does through libsnnet: a bridge per
 * tenant subnet, a VNIC (veth pair) per instance with its host side on that bridge and its
 * container side carrying the instance's MAC, and (for the demo and the test) a stand-in for the
 * tenant's CNCI: a network namespace on the bridge holding the gateway address. No tenant address
 * is ever configured in the host's namespace: the tenants share one subnet.
 */
import { run, runAbsentOk } from './run.js'

const GONE = /Cannot find device|does not exist|No such file|Bad rule|Invalid argument/

/** Tag of the launcher's iptables rules, so that each is found and removed exactly. */
const ruleTag = (bridge: string) => `isthmus-ciao:${bridge}`

// With br_netfilter loaded (any Docker host), bridged frames cross iptables FORWARD, whose policy
// Docker sets to DROP: the tenant bridge's own traffic must be let through, and only that.
const forwardRule = (bridge: string) => [
  'FORWARD',
  '-i',
  bridge,
  '-o',
  bridge,
  '-m',
  'comment',
  '--comment',
  ruleTag(bridge),
  '-j',
  'ACCEPT'
]

/** A tenant bridge, up, with no address, and its frames allowed to cross it. */
export const createBridge = async (bridge: string): Promise<void> => {
  await run(['ip', 'link', 'add', bridge, 'type', 'bridge'])
  await run(['ip', 'link', 'set', bridge, 'up'])
  await run(['iptables', '-I', ...forwardRule(bridge)])
}

/** Undo `createBridge`; what is already gone is fine. */
export const deleteBridge = async (bridge: string): Promise<void> => {
  await runAbsentOk(['iptables', '-D', ...forwardRule(bridge)], GONE)
  await deleteLink(bridge)
}

export const deleteLink = (name: string): Promise<void> => runAbsentOk(['ip', 'link', 'del', name], GONE)

/** The links of one VNIC: `host` on the tenant bridge, `peer` for the container. */
export interface VnicLinks {
  readonly host: string
  readonly peer: string
}

/** A veth pair: the host side up on `bridge`, the container side with `mac`, left down for Docker. */
export const createVnic = async (links: VnicLinks, bridge: string, mac: string): Promise<void> => {
  await run(['ip', 'link', 'add', links.host, 'type', 'veth', 'peer', 'name', links.peer])
  await run(['ip', 'link', 'set', links.peer, 'address', mac])
  await run(['ip', 'link', 'set', links.host, 'master', bridge, 'up'])
}

/** A tenant's CNCI stand-in: namespace `netns`, its end `cnci0` with `gatewayCidr`, on `bridge` through `hostIf`. */
export const createCnci = async (netns: string, bridge: string, hostIf: string, gatewayCidr: string): Promise<void> => {
  await run(['ip', 'netns', 'add', netns])
  await run(['ip', 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'cnci0', 'netns', netns])
  await run(['ip', 'link', 'set', hostIf, 'master', bridge, 'up'])
  await run(['ip', '-n', netns, 'addr', 'add', gatewayCidr, 'dev', 'cnci0'])
  await run(['ip', '-n', netns, 'link', 'set', 'cnci0', 'up'])
  await run(['ip', '-n', netns, 'link', 'set', 'lo', 'up'])
}

/** Undo `createCnci` (deleting the namespace deletes its end of the pair, and so the pair). */
export const deleteCnci = async (netns: string, hostIf: string): Promise<void> => {
  await runAbsentOk(['ip', 'netns', 'del', netns], GONE)
  await deleteLink(hostIf)
}
