/**
 * @isthmus/dataplane-hns: the isthmus Dataplane port over the Windows Host Network Service (HNS
 * v1). HNS's JSON as io-ts codecs, the Hns client over a transport (the shipped PowerShell helper
 * on Windows, HTTP to the simulator of `@isthmus/dataplane-hns/testing` elsewhere), the requests
 * the Contrail Windows driver made, and `hnsDataplane`.
 */
export * from './Hns.js'
export * from './client.js'
export * from './requests.js'
export * from './httpTransport.js'
export * from './windowsTransport.js'
export * from './hnsDataplane.js'
