/** Multi-host: the cluster agent, the dataplane decorator of cluster networks, the hosts report. */
export * from './hosts.js'
