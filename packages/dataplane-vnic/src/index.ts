/**
 * @isthmus/dataplane-vnic: the isthmus Dataplane port over VNICs an integrator pre-creates and
 * registers (ciao mode). Endpoints adopt a registered VNIC by address and MAC; the host is never
 * changed by isthmus, and no tenant subnet is routed on it, so tenants may share subnets across
 * address spaces. docs/embedding.md shows it with the embedded Docker plugin server.
 */
export { Vnic, VnicSpec, sameVnic } from './Vnic.js'
export { memoryVnicRegistry, type VnicRegistry } from './registry.js'
export { vnicDataplane } from './vnicDataplane.js'
