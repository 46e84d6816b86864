/**
 * Run the demo: `pnpm --filter @isthmus/example-ciao-launcher start [image]` (root, dockerd
 * running, an image with `ping` and `sleep`, default `busybox`). Two tenants on 10.243.250.0/24,
 * two containers each, a ping from each container to its peer and to the other tenant's, then
 * everything is torn down again.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createCnci, deleteCnci } from './host.js'
import { startLauncher, type Instance, type Tenant } from './launcher.js'
import { docker } from './run.js'

const image = process.argv[2] ?? 'busybox'
const stateDir = await mkdtemp(join(tmpdir(), 'ciao-launcher-'))
const launcher = await startLauncher({ pluginName: 'ciaodemo', stateDir, linkPrefix: 'cdemo' })
console.log(`plugin ciaodemo on ${launcher.plugin.address} (${launcher.plugin.specFile})`)
const tenants: Tenant[] = []
const instances: Instance[] = []
const reaches = (from: Instance, address: string) =>
  docker('exec', from.name, 'ping', '-c1', '-W1', address).then(
    () => 'reaches',
    () => 'does not reach'
  )
try {
  for (const id of ['red', 'blue']) {
    const tenant = await launcher.addTenant({ id, subnet: '10.243.250.0/24', gateway: '10.243.250.1' })
    tenants.push(tenant)
    await createCnci(`cdemo-${id}`, tenant.bridge, `cdemog${id}`, '10.243.250.1/24')
  }
  const [red, blue] = tenants as [Tenant, Tenant]
  for (const [tenant, n, mac] of [
    [red, 2, '02:c1:a0:00:01:02'],
    [red, 3, '02:c1:a0:00:01:03'],
    [blue, 3, '02:c1:a0:00:02:03'],
    [blue, 4, '02:c1:a0:00:02:04']
  ] as const) {
    const name = `ciaodemo-${tenant.id}${n}`
    instances.push(
      await launcher.startInstance(tenant, { name, address: `10.243.250.${n}`, mac, image, command: ['sleep', '600'] })
    )
  }
  for (const from of instances) {
    for (const n of [2, 3, 4]) {
      if (from.address !== `10.243.250.${n}`) {
        console.log(`${from.name} ${await reaches(from, `10.243.250.${n}`)} 10.243.250.${n}`)
      }
    }
  }
} finally {
  for (const i of instances) await launcher.stopInstance(i)
  for (const i of instances) await launcher.destroyInstance(i)
  for (const t of tenants) {
    await deleteCnci(`cdemo-${t.id}`, `cdemog${t.id}`)
    await launcher.removeTenant(t)
  }
  await launcher.close()
  await rm(stateDir, { recursive: true, force: true })
}
