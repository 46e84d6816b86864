/**
 * A ciao-launcher in miniature: the isthmus Docker plugin runs inside this process (embedded, on
 * TCP loopback with its discovery file, as ciao's does) over the VNIC dataplane, and the launcher
 * decides everything Docker is then told: each tenant's bridge, network and address space, each
 * instance's VNIC, address and MAC.
 *
 * Order, as in ciao: tenant (bridge, Docker network in the tenant's address space), then per
 * instance VNIC (created, registered) and `docker run --ip --mac-address`. `docker rm` leaves the
 * VNIC; `destroyInstance` unregisters and deletes it; `removeTenant` removes network and bridge.
 */
import { createHash } from 'node:crypto'
import * as E from 'fp-ts/lib/Either.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import { describe, type CoreError, type IfName, type Logger } from '@isthmus/core'
import { embeddedEnv, startPluginServer, type EmbeddedPlugin, type TcpListen } from '@isthmus/cnm-server'
import { memoryVnicRegistry, vnicDataplane, type Vnic, type VnicRegistry } from '@isthmus/dataplane-vnic'
import { fileStore } from '@isthmus/store-fs'
import { createBridge, createVnic, deleteBridge, deleteLink, type VnicLinks } from './host.js'
import { DOCKER, docker, runAbsentOk } from './run.js'

export interface LauncherOptions {
  /** The Docker driver name (`-d`, `--ipam-driver`). */
  readonly pluginName: string
  /** Where isthmus keeps networks, endpoints, pools and leases. */
  readonly stateDir: string
  /** Start of every link name the launcher makes (at most 7 characters: names are 15 at most). */
  readonly linkPrefix: string
  /** Loopback port and discovery file; default: a free port, `/etc/docker/plugins/<name>.spec`. */
  readonly listen?: TcpListen
  readonly log?: Logger
}

export interface TenantSpec {
  /** The tenant's id: its IPAM address space and the middle of its Docker network's name. */
  readonly id: string
  readonly subnet: string
  /** The tenant's gateway (its CNCI), first address of the subnet in ciao. */
  readonly gateway: string
}

export interface Tenant extends TenantSpec {
  readonly bridge: string
  /** The Docker network's name. */
  readonly network: string
}

export interface InstanceSpec {
  readonly name: string
  readonly address: string
  readonly mac: string
  readonly image: string
  readonly command: ReadonlyArray<string>
}

export interface Instance extends InstanceSpec {
  readonly tenant: Tenant
  readonly vnic: VnicLinks
}

export interface Launcher {
  readonly plugin: EmbeddedPlugin
  readonly registry: VnicRegistry
  readonly addTenant: (spec: TenantSpec) => Promise<Tenant>
  /** Create and register the instance's VNIC, then `docker run` the container on it. */
  readonly startInstance: (tenant: Tenant, spec: InstanceSpec) => Promise<Instance>
  /** `docker rm -f`: the VNIC stays, registered, for the launcher to reuse or destroy. */
  readonly stopInstance: (instance: Instance) => Promise<void>
  /** Unregister and delete the VNIC (after `stopInstance`). */
  readonly destroyInstance: (instance: Instance) => Promise<void>
  /** `docker network rm`, then the bridge. */
  readonly removeTenant: (tenant: Tenant) => Promise<void>
  /** Stop the embedded plugin (its discovery file goes) and close the store. */
  readonly close: () => Promise<void>
}

/** A TaskEither's success, or an Error carrying the core's sentence. */
const must = async <A>(te: TE.TaskEither<CoreError, A>): Promise<A> => {
  const r = await te()
  if (E.isLeft(r)) throw new Error(describe(r.left))
  return r.right
}

const short = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 6)

/** Start the embedded plugin over a fresh VNIC registry; nothing on the host is made yet. */
export const startLauncher = async (options: LauncherOptions): Promise<Launcher> => {
  if (!/^[a-z][a-z0-9]{0,6}$/.test(options.linkPrefix)) {
    throw new Error('linkPrefix: 1 to 7 lowercase letters and digits')
  }
  const store = await must(fileStore({ stateDir: options.stateDir }))
  const registry = memoryVnicRegistry()
  const { env, ipam } = embeddedEnv({
    store,
    dataplane: vnicDataplane(registry),
    ...(options.log === undefined ? {} : { log: options.log })
  })
  const plugin = await startPluginServer({
    env,
    ipam,
    pluginName: options.pluginName,
    listen: options.listen ?? { port: 0 }
  }).catch(async (e: unknown) => {
    await store.close()
    throw e
  })
  const P = options.pluginName
  const pre = options.linkPrefix

  const addTenant = async (spec: TenantSpec): Promise<Tenant> => {
    const tenant: Tenant = { ...spec, bridge: `${pre}b${short(spec.id)}`, network: `${P}-${spec.id}` }
    await createBridge(tenant.bridge)
    // The same --subnet for every tenant: the address space keeps their pools apart, and the
    // VNIC dataplane routes none of them on the host.
    await docker(
      'network',
      'create',
      '-d',
      P,
      '--ipam-driver',
      P,
      '--subnet',
      spec.subnet,
      '--gateway',
      spec.gateway,
      '--ipam-opt',
      `address-space=${spec.id}`,
      '-o',
      `address-space=${spec.id}`,
      '-o',
      `bridge=${tenant.bridge}`,
      tenant.network
    ).catch(async (e: unknown) => {
      await deleteBridge(tenant.bridge)
      throw e
    })
    return tenant
  }

  const startInstance = async (tenant: Tenant, spec: InstanceSpec): Promise<Instance> => {
    const id = short(`${tenant.id}/${spec.name}`)
    const vnic: VnicLinks = { host: `${pre}n${id}`, peer: `${pre}p${id}` }
    await createVnic(vnic, tenant.bridge, spec.mac)
    await must(
      registry.register({
        hostIfName: vnic.host,
        peerIfName: vnic.peer,
        address: spec.address,
        mac: spec.mac,
        addressSpace: tenant.id,
        bridge: tenant.bridge,
        instance: spec.name
      })
    )
    await docker(
      'run',
      '-d',
      '--name',
      spec.name,
      '--net',
      tenant.network,
      '--ip',
      spec.address,
      '--mac-address',
      spec.mac,
      spec.image,
      ...spec.command
    )
    return { ...spec, tenant, vnic }
  }

  const stopInstance = async (instance: Instance): Promise<void> => {
    await runAbsentOk([DOCKER, 'rm', '-f', instance.name], /No such container/)
  }

  const destroyInstance = async (instance: Instance): Promise<void> => {
    await must(registry.unregister(instance.vnic.peer as IfName))
    // deleting either end of a veth pair deletes both
    await deleteLink(instance.vnic.host)
    await deleteLink(instance.vnic.peer)
  }

  const removeTenant = async (tenant: Tenant): Promise<void> => {
    await runAbsentOk([DOCKER, 'network', 'rm', tenant.network], /not found|No such network/)
    await deleteBridge(tenant.bridge)
  }

  return {
    plugin,
    registry,
    addTenant,
    startInstance,
    stopInstance,
    destroyInstance,
    removeTenant,
    close: async () => {
      await plugin.close()
      await store.close()
    }
  }
}

/** The VNICs registered now, by container-side name, with the endpoint using each. */
export const vnics = async (launcher: Launcher): Promise<ReadonlyArray<Vnic>> => must(launcher.registry.list())
