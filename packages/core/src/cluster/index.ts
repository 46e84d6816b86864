/** Multi-host: the cluster agent, the dataplane of cluster networks, the hosts report and removal. */
export * from './agent.js'
export * from './dataplane.js'
export * from './hosts.js'
