/**
 * @isthmus/store-etcd: isthmus state on etcd v3. Filled in by the store and cluster adapters.
 */
export {}
