/**
 * The built-in IPAM: the engine over a Store (`makeIpam`) and the control plane built on it,
 * at the top level; the pure building blocks (usable ranges, the bitmap, the candidate search,
 * pool records) as namespaces, for tests and tools.
 */
export * from './Ipam.js'
export { DEFAULT_V4_POOLS, DEFAULT_V6_POOLS, type PoolRequest } from './Pools.js'
export { poolRangeOfSubnet } from './Range.js'
export * as IpamRange from './Range.js'
export * as IpamBitmap from './Bitmap.js'
export * as IpamAllocator from './Allocator.js'
export * as IpamPools from './Pools.js'
export * from '../controlplane/builtin.js'
