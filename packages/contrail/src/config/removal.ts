/**
 * Deleting an endpoint's Contrail objects, in the one order the server accepts: every
 * instance-ip on its interface, then the interface (it refers to the VM), then the VM. 404
 * anywhere means already gone.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import type { ControllerEndpoint, CoreError } from '@isthmus/core'
import { isControllerNotFound, type ConfigApi } from './client.js'
import * as Obj from './Objects.js'

/** The uuid of `fq`, or undefined when the controller has no such object. */
const lookup = (
  api: ConfigApi,
  type: Obj.ObjectType,
  fq: ReadonlyArray<string>
): TE.TaskEither<CoreError, string | undefined> =>
  pipe(
    api.fqNameToId(type, fq),
    TE.map((uuid): string | undefined => uuid),
    TE.orElse((e) => (isControllerNotFound(e) ? TE.right(undefined) : TE.left(e)))
  )

/** `known`, or else the uuid the name finds. */
const knownOr = (
  api: ConfigApi,
  known: string | undefined,
  type: Obj.ObjectType,
  fq: ReadonlyArray<string>
): TE.TaskEither<CoreError, string | undefined> => (known !== undefined ? TE.right(known) : lookup(api, type, fq))

/** The instance-ips on an interface (none when it is gone). */
const instanceIpsOf = (api: ConfigApi, vmi: string | undefined): TE.TaskEither<CoreError, ReadonlyArray<string>> =>
  vmi === undefined
    ? TE.right([])
    : pipe(
        api.read('virtual-machine-interface', vmi, Obj.VirtualMachineInterface, { fields: ['instance_ip_back_refs'] }),
        TE.map((r) => (r.instance_ip_back_refs ?? []).flatMap((b) => (b.uuid === undefined ? [] : [b.uuid]))),
        TE.orElse((e) => (isControllerNotFound(e) ? TE.right<CoreError, ReadonlyArray<string>>([]) : TE.left(e)))
      )

const removeIf = (api: ConfigApi, type: Obj.ObjectType, uuid: string | undefined): TE.TaskEither<CoreError, void> =>
  uuid === undefined ? TE.right(undefined) : api.remove(type, uuid)

/**
 * Delete an endpoint's objects: every instance-ip on its interface (and the one recorded), then
 * the interface, then the VM. Ids not recorded (a run killed before the record) are found by the
 * names isthmus gives. The first failure stops it.
 *
 * @category utils
 */
export const removeEndpointObjects = (
  api: ConfigApi,
  domain: string,
  tenant: string,
  endpointId: string,
  known: ControllerEndpoint
): TE.TaskEither<CoreError, void> =>
  pipe(
    knownOr(api, known.interfaceId, 'virtual-machine-interface', [domain, tenant, endpointId]),
    TE.bindTo('vmi'),
    TE.bind('onVmi', ({ vmi }) => instanceIpsOf(api, vmi)),
    TE.bind('named', () => lookup(api, 'instance-ip', [endpointId])),
    TE.chainFirst(({ onVmi, named }) => {
      const iips = new Set([...(known.instanceIpId === undefined ? [] : [known.instanceIpId]), ...onVmi])
      if (named !== undefined) iips.add(named)
      return TE.traverseSeqArray((iip: string) => api.remove('instance-ip', iip))([...iips])
    }),
    TE.chainFirst(({ vmi }) => removeIf(api, 'virtual-machine-interface', vmi)),
    TE.chain(() => knownOr(api, known.vmId, 'virtual-machine', [endpointId])),
    TE.chain((vm) => removeIf(api, 'virtual-machine', vm))
  )
