/**
 * A process that holds something in etcd until it is killed: `register <endpoint> <prefix> <host>
 * <ttl>` registers a host; `lock <endpoint> <prefix> <name> <ttl>` holds a lock. It prints
 * `ready` once it holds it, then waits for its SIGKILL.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import { describe, type HostRecord } from '@isthmus/core'
import { etcdCluster, etcdStore } from '../../src/index.js'

const [mode, endpoint, prefix, name, ttl] = process.argv.slice(2)
if (endpoint === undefined || prefix === undefined || name === undefined || ttl === undefined) {
  process.stderr.write('usage: child.ts register|lock <endpoint> <prefix> <name> <ttl>\n')
  process.exit(2)
}
const fail = (e: Parameters<typeof describe>[0]): never => {
  process.stderr.write(`${describe(e)}\n`)
  process.exit(1)
}
const forever = () => new Promise<never>(() => setInterval(() => undefined, 60_000))

if (mode === 'register') {
  const cluster = await etcdCluster({ endpoints: [endpoint], prefix })()
  if (cluster._tag === 'Left') fail(cluster.left)
  else {
    const host = {
      name,
      underlay: '192.0.2.10',
      vtepMac: '02:00:00:00:00:0a',
      since: new Date().toISOString()
    } as HostRecord
    const r = await cluster.right.hosts.register(host, Number(ttl))()
    if (r._tag === 'Left') fail(r.left)
    process.stdout.write('ready\n')
    await forever()
  }
} else if (mode === 'lock') {
  const store = await etcdStore({ endpoints: [endpoint], prefix, lockTtlSeconds: Number(ttl) })()
  if (store._tag === 'Left') fail(store.left)
  else {
    await store.right.withLock(
      name,
      TE.fromTask(async () => {
        process.stdout.write('ready\n')
        await forever()
      })
    )()
  }
} else {
  process.stderr.write(`unknown mode ${mode}\n`)
  process.exit(2)
}
