import { memoryStore } from '@isthmus/core/testing'
import { storeContract } from '@isthmus/core/testing/store-contract'

// The in-memory store is the reference semantics of the Store port: it passes the same contract
// as every real adapter.
storeContract('memoryStore', async () => ({ store: memoryStore(), cleanup: async () => undefined }), { modelRuns: 100 })
