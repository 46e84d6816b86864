/**
 * The vRouter agent's port API messages (docs/contrail.md, "The vRouter agent"), kebab-case as
 * on the wire.
 */
import * as t from 'io-ts'

/** `POST /port`: one port (a VM interface) the agent must forward for. @category codecs */
export const AgentPort = t.intersection(
  [
    t.type({
      id: t.string,
      'instance-id': t.string,
      'vn-id': t.string,
      'vm-project-id': t.string,
      'display-name': t.string,
      'system-name': t.string,
      'ip-address': t.string,
      'ip6-address': t.string,
      'mac-address': t.string,
      type: t.number,
      'rx-vlan-id': t.number,
      'tx-vlan-id': t.number
    }),
    t.partial({ time: t.string, author: t.string })
  ],
  'AgentPort'
)
/** @category model */
export type AgentPort = t.TypeOf<typeof AgentPort>

/** What isthmus sends: exactly the named fields. @category codecs */
export const AgentPortOut = t.exact(AgentPort, 'AgentPortOut')

/** Every agent failure body: `{"error":"{ <message> }"}`. @category codecs */
export const AgentError = t.type({ error: t.string }, 'AgentError')

/** Port types: 0 is a VM (container) port. @category constants */
export const PORT_TYPE_VM = 0
/** A VLAN id of -1 means none. @category constants */
export const NO_VLAN = -1
