/** `/Plugin.Activate`: the handshake of a legacy (v1) plugin (docs/extend/plugin_api.md). */
import * as t from 'io-ts'

export const ActivateResponse = t.type({ Implements: t.array(t.string) }, 'ActivateResponse')
export type ActivateResponse = t.TypeOf<typeof ActivateResponse>

export const IMPLEMENTS: ActivateResponse = { Implements: ['NetworkDriver', 'IpamDriver'] }
