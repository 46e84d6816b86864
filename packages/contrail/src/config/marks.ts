/**
 * How isthmus marks what it creates in Contrail: `annotations` naming the owner (the host) and
 * the endpoint on every object, and the lease owner ref of a Docker reservation. Reconciliation
 * only ever touches objects carrying this host's owner.
 */
import type * as Obj from './Objects.js'

/** @category constants */
export const DEFAULT_DOMAIN = 'default-domain'
/** Annotation keys on objects isthmus creates. @category constants */
export const OWNER_KEY = 'isthmus-owner'
/** @category constants */
export const ENDPOINT_KEY = 'isthmus-endpoint'
/** Lease owner refs of Docker reservations: `contrail-iip:<instance-ip uuid>`. @category constants */
export const RESERVATION_PREFIX = 'contrail-iip:'

/** Annotation key marking a Docker reservation (value: `docker`). @category constants */
export const RESERVATION_KEY = 'isthmus-reservation'

/** `annotations` marking an object as this owner's, for this endpoint. @category utils */
export const ownership = (owner: string, endpoint: string): Obj.KeyValuePairs => ({
  key_value_pair: [
    { key: OWNER_KEY, value: owner },
    { key: ENDPOINT_KEY, value: endpoint }
  ]
})

/** The value of an annotation key, if the object has it. @category utils */
export const annotation = (
  o: { readonly annotations?: Obj.KeyValuePairs | undefined },
  key: string
): string | undefined => o.annotations?.key_value_pair.find((p) => p.key === key)?.value
