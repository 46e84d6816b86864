import { storeContract } from '@isthmus/core/testing'
import { etcdStore } from '../src/index.js'
import { freshPrefix, right, sharedEtcd } from './support/etcd.js'

const etcd = sharedEtcd()

storeContract('etcdStore', async () => {
  const e = await etcd()
  return { store: await right(etcdStore({ endpoints: [e.endpoint], prefix: freshPrefix() })), cleanup: async () => {} }
})
