/**
 * Docker's IPAM side of a Contrail network: RequestAddress makes the controller allocate (an
 * instance-ip reservation held by a local lease), CreateEndpoint takes the reservation over,
 * ReleaseAddress drops it; reconcile removes reservations no lease holds.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, it } from 'node:test'
import * as O from 'fp-ts/lib/Option.js'
import {
  createEndpoint,
  DEFAULT_LOCAL_SPACE,
  deleteEndpoint,
  DOCKER_RUNTIME_OWNER,
  ensureNetwork,
  makeIpam,
  type Cidr,
  type Subnet
} from '@isthmus/core'
import { contrailIpam, reconcileController } from '@isthmus/contrail'
import { CIDR, contrailSpec, epId, NET, right, startSims, type Sims } from './support/helpers.js'
import { contrailEnv, OWNER } from './support/env.js'

describe('contrailIpam: Docker RequestAddress asks the controller', () => {
  let sims: Sims
  before(async () => {
    sims = await startSims()
  })
  after(async () => sims.close())

  it('reserves the controller’s address, hands it to the endpoint, and releases it', async () => {
    const c = contrailEnv(sims)
    const store = c.env.store
    const base = makeIpam({ store, clock: c.env.clock })
    const ipam = contrailIpam(base, { api: c.api, store, owner: OWNER })
    const pool = await right(
      ipam.requestPool({ addressSpace: DEFAULT_LOCAL_SPACE, family: 4, subnet: CIDR as Subnet })()
    )
    // the gateway stays with the built-in IPAM
    const gw = await right(ipam.allocate(pool.id, { kind: 'gateway' })())
    assert.equal(gw.address, '10.253.10.1')
    await right(
      c.run(
        ensureNetwork(
          contrailSpec({ managedAddresses: false, subnets: [{ family: 4, subnet: CIDR as Subnet, poolId: pool.id }] })
        )
      )
    )

    const lease = await right(ipam.allocate(pool.id, DOCKER_RUNTIME_OWNER)())
    assert.equal(lease.address, '10.253.10.3', 'the controller’s first free address, not the pool’s')
    const iip = sims.contrail.objects('instance-ip')[0]!
    assert.match(iip.fq_name[0]!, /^isthmus-reservation-/)
    assert.deepEqual(lease.owner, { kind: 'runtime', ref: `contrail-iip:${iip.uuid}` })

    const ep = await right(
      c.run(
        createEndpoint(NET, {
          id: epId('ep-docker-1'),
          owner: { kind: 'docker', endpointId: epId('ep-docker-1') },
          addresses: [{ _tag: 'Assigned', cidr: '10.253.10.3/24' as Cidr }]
        })
      )
    )
    assert.equal(ep.controller?.instanceIpId, iip.uuid, 'the reservation was taken over')
    assert.equal(sims.contrail.objects('instance-ip').length, 1)
    const vmi = sims.contrail.objects('virtual-machine-interface')[0]!
    assert.deepEqual(
      (sims.contrail.get(iip.uuid)!.props['virtual_machine_interface_refs'] as Array<{ uuid: string }>).map(
        (r) => r.uuid
      ),
      [vmi.uuid]
    )

    await right(c.run(deleteEndpoint(ep.id)))
    assert.equal(sims.contrail.created().length, 0)
    await right(ipam.release(DEFAULT_LOCAL_SPACE, lease.address, DOCKER_RUNTIME_OWNER)())
    assert.ok(O.isNone(await right(store.leases.get(DEFAULT_LOCAL_SPACE, lease.address)())))

    // a reservation Docker released before any endpoint (CreateEndpoint failed) goes at once
    const again = await right(ipam.allocate(pool.id, DOCKER_RUNTIME_OWNER)())
    assert.equal(sims.contrail.objects('instance-ip').length, 1)
    await right(ipam.release(DEFAULT_LOCAL_SPACE, again.address, DOCKER_RUNTIME_OWNER)())
    assert.equal(sims.contrail.objects('instance-ip').length, 0)

    // reconcile: a reservation whose lease never got written (a crash in between) is removed,
    // one a lease holds is kept
    const kept = await right(ipam.allocate(pool.id, DOCKER_RUNTIME_OWNER)())
    const lost = await right(ipam.allocate(pool.id, DOCKER_RUNTIME_OWNER)())
    await right(store.leases.release(DEFAULT_LOCAL_SPACE, lost.address, lost.owner)())
    const report = await right(reconcileController({ api: c.api, store, owner: OWNER })())
    const lostUuid = lost.owner.kind === 'runtime' ? lost.owner.ref.split(':')[1] : ''
    assert.deepEqual(report.reservationsRemoved, [lostUuid])
    assert.deepEqual(
      sims.contrail.objects('instance-ip').map((o) => o.props['instance_ip_address']),
      [kept.address]
    )
    await right(ipam.release(DEFAULT_LOCAL_SPACE, kept.address, DOCKER_RUNTIME_OWNER)())
    assert.equal(sims.contrail.created().length, 0)
  })
})
