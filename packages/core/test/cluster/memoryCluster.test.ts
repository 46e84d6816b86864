import { memoryCluster, clusterContract } from '@isthmus/core/testing'

// The in-memory cluster is the reference semantics of the Cluster port: it passes the same
// contract as the etcd adapter. Its leases run on its own clock, so `elapse` is instant.
clusterContract('memoryCluster', () => {
  const m = memoryCluster()
  return Promise.resolve({
    cluster: m.port,
    connect: () => Promise.resolve(m.state.connect().port),
    elapse: (seconds: number) => {
      m.state.advance(seconds * 1000)
      return Promise.resolve()
    },
    cleanup: () => Promise.resolve()
  })
})
