/**
 * @isthmus/core: the container-networking model (Network, Endpoint, Placement, IPAM pools and
 * address spaces), the ports through which it reaches the world, and the flows that both the
 * Docker (CNM) and the CNI frontends drive.
 */
export * from './errors.js'
export * from './decode.js'
export * from './ids.js'
export * from './model/Address.js'
export * from './model/Ipam.js'
export * from './model/Network.js'
export * from './model/Endpoint.js'
export * from './model/Sandbox.js'
export * from './model/Cluster.js'
export * from './ports/Store.js'
export * from './ports/Dataplane.js'
export * from './ports/ControlPlane.js'
export * from './ports/Agent.js'
export * from './ports/Logger.js'
export * from './ports/Clock.js'
export * from './ports/Env.js'
export * from './ports/DockerEngine.js'
export * from './ports/Cluster.js'
export * from './ports/Overlay.js'
export * from './ipam/index.js'
export * from './controlplane/composite.js'
export * from './controlplane/credentials.js'
export * from './flows/index.js'
export * from './cluster/index.js'
