/**
 * @isthmus/contrail: Contrail (Tungsten Fabric) for isthmus. The VNC config API as a ControlPlane
 * (with keystone v2/v3), the Docker IPAM side of Contrail networks, the vRouter agent port
 * API as an Agent, reconciliation after restarts, and the names of the HNS networks the Contrail
 * Windows driver gives (the HNS dataplane itself is `@isthmus/dataplane-hns`).
 */
export * from './http.js'
export * from './secrets.js'
export * from './credentials.js'
export * from './config/Keystone.js'
export * from './config/tokens.js'
export * as Contrail from './config/Objects.js'
export * from './config/client.js'
export * from './config/controlPlane.js'
export * from './config/contrailIpam.js'
export * from './config/reconcile.js'
export * from './agent/Port.js'
export * from './agent/client.js'
export * from './hns/names.js'
