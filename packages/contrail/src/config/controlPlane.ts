/**
 * The Contrail ControlPlane: a network is an existing Contrail virtual network (project = the
 * tenant, `network.ts`), an endpoint is a virtual-machine-interface, a virtual-machine and an
 * instance-ip (`endpoint.ts`), deleted in the order of `removal.ts` (docs/contrail.md).
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import type { ControlPlane, Store } from '@isthmus/core'
import type { ConfigApi } from './client.js'
import { createContrailEndpoint } from './endpoint.js'
import { DEFAULT_DOMAIN } from './marks.js'
import { resolveNetwork } from './network.js'
import { removeEndpointObjects } from './removal.js'

export * from './marks.js'
export { subnetsOf, type VnSubnet } from './network.js'
export { removeEndpointObjects } from './removal.js'

/** @category model */
export interface ContrailControlPlaneOptions {
  /** Its logger is where a rollback that could not undo a step is reported. */
  readonly api: ConfigApi
  /** Written into every object's annotations, so reconcile knows what this host created. */
  readonly owner: string
  /**
   * Where Docker's address reservations are found (see `contrailIpam`); without it, every Assigned address is
   * asked for as a static one.
   */
  readonly store?: Store
  readonly domain?: string
  /** The project's security group every interface joins; skipped when the project has none. */
  readonly securityGroup?: string
}

/**
 * The ControlPlane over the Contrail config API.
 *
 * @category constructors
 */
export const contrailControlPlane = (options: ContrailControlPlaneOptions): ControlPlane => {
  const { api, owner, store } = options
  const domain = options.domain ?? DEFAULT_DOMAIN
  return {
    ensureNetwork: resolveNetwork(api, domain),
    // the virtual network is the operator's: nothing to give back
    deleteNetwork: () => TE.right(undefined),
    createEndpoint: createContrailEndpoint({
      api,
      owner,
      domain,
      securityGroup: options.securityGroup ?? 'default',
      store
    }),
    deleteEndpoint: (network, endpoint) =>
      network.controller === undefined
        ? TE.right(undefined)
        : removeEndpointObjects(api, domain, network.controller.tenant, endpoint.id, endpoint.controller ?? {})
  }
}
