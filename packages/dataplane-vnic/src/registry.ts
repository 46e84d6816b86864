/**
 * The VNIC registry: which VNICs an integrator made, and which endpoint uses each. It is the
 * dataplane's whole state, and the integrator's handle on it (register before `docker run`,
 * unregister after `docker rm`). The interface lets an integrator keep it where it keeps its own
 * state (ciao: BoltDB); `memoryVnicRegistry` serves a process that registers again at start.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import {
  alreadyExists,
  decodeWith,
  invalidConfig,
  type AddressSpace,
  type CoreError,
  type EndpointId,
  type IfName,
  type IpAddress
} from '@isthmus/core'
import { sameVnic, VnicSpec, type Vnic } from './Vnic.js'

/** @category ports */
export interface VnicRegistry {
  /**
   * Add a VNIC (decoded: it comes from the integrator's own input). The same VNIC again succeeds;
   * another one with the same container-side name, or the same address in the same space, is
   * refused.
   */
  readonly register: (spec: unknown) => TE.TaskEither<CoreError, Vnic>
  /** Forget a VNIC by its container-side name; refused while an endpoint uses it; absent succeeds. */
  readonly unregister: (peerIfName: IfName) => TE.TaskEither<CoreError, void>
  readonly list: () => TE.TaskEither<CoreError, ReadonlyArray<Vnic>>
  /**
   * Bind the VNIC of `address` in `space` to `endpointId` (the same endpoint again succeeds).
   * InvalidConfig when no VNIC has that address; AlreadyExists when another endpoint holds it.
   */
  readonly claim: (space: AddressSpace, address: IpAddress, endpointId: EndpointId) => TE.TaskEither<CoreError, Vnic>
  /** Unbind the VNIC the endpoint holds, keeping it registered; none succeeds. */
  readonly release: (endpointId: EndpointId) => TE.TaskEither<CoreError, void>
}

const key = (space: AddressSpace, address: IpAddress): string => `${space}\0${address}`

/**
 * A registry in this process's memory.
 *
 * @category constructors
 */
export const memoryVnicRegistry = (): VnicRegistry => {
  // by container-side name, the one name unique on the host
  const vnics = new Map<IfName, Vnic>()
  const byAddress = (space: AddressSpace, address: IpAddress): Vnic | undefined =>
    [...vnics.values()].find((v) => key(v.addressSpace, v.address) === key(space, address))

  const add = (spec: VnicSpec): E.Either<CoreError, Vnic> => {
    const named = vnics.get(spec.peerIfName)
    if (named !== undefined) {
      return sameVnic(named, spec)
        ? E.right(named)
        : E.left(invalidConfig(`a different VNIC named ${spec.peerIfName} is registered already`))
    }
    const holder = byAddress(spec.addressSpace, spec.address)
    if (holder !== undefined) {
      return E.left(
        alreadyExists(
          'address',
          spec.address,
          `is the address of VNIC ${holder.peerIfName} in address space ${spec.addressSpace}`
        )
      )
    }
    const vnic: Vnic = { ...spec }
    vnics.set(spec.peerIfName, vnic)
    return E.right(vnic)
  }

  return {
    register: (spec) => TE.fromEither(pipe(decodeWith(VnicSpec, 'VNIC')(spec), E.chain(add))),

    unregister: (name) =>
      TE.fromEither(
        ((): E.Either<CoreError, void> => {
          const v = vnics.get(name)
          if (v?.endpointId !== undefined) {
            return E.left(alreadyExists('endpoint', v.endpointId, `uses VNIC ${name}; remove its container first`))
          }
          vnics.delete(name)
          return E.right(undefined)
        })()
      ),

    list: () => TE.right([...vnics.values()]),

    claim: (space, address, endpointId) =>
      TE.fromEither(
        ((): E.Either<CoreError, Vnic> => {
          const v = byAddress(space, address)
          // a configuration mistake, not an absence to shrug off: NotFound reads as "already gone"
          if (v === undefined) {
            return E.left(invalidConfig(`no VNIC is registered for ${address} in address space ${space}`))
          }
          if (v.endpointId !== undefined && v.endpointId !== endpointId) {
            return E.left(alreadyExists('endpoint', v.endpointId, `holds VNIC ${v.peerIfName} of ${address}`))
          }
          const bound: Vnic = { ...v, endpointId }
          vnics.set(v.peerIfName, bound)
          return E.right(bound)
        })()
      ),

    release: (endpointId) =>
      TE.fromIO(() => {
        for (const v of vnics.values()) {
          if (v.endpointId !== endpointId) continue
          const { endpointId: _bound, ...free } = v
          vnics.set(v.peerIfName, free)
        }
      })
  }
}
