/**
 * A test's own multi-host topology: "hosts" are network namespaces joined by an underlay, a
 * bridge inside a namespace of its own (as the switch between real machines). Each host has a
 * veth `ul0` into that bridge with an address on the underlay subnet; the root namespace (where
 * dockerd lives) can join too. etcd can run inside the underlay namespace, on the bridge's own
 * address, so it is reachable from every host and from nowhere else.
 *
 * Names: namespaces `<prefix>-u` and `<prefix>-h<n>`, and in the root namespace only the joined
 * veth `ul<6 hex of the prefix>`. Addresses: 10.<octet>.0.0/24, the octet picked per prefix and
 * skipped when the root namespace already routes that subnet, so parallel tests do not clash.
 * The rest of 10.<octet>.0.0/16 is free for the test's cluster networks.
 */
import { createHash } from 'node:crypto'
import { mustParseJson } from './json.js'
import { startEtcd, type TestEtcd } from './etcd.js'
import { mustRun, run, type RunResult } from './proc.js'

/** One host of the underlay. */
export interface UnderlayHost {
  /** 1-based. */
  readonly index: number
  /** Its network namespace (`ip netns exec <netns> ...`). */
  readonly netns: string
  /** Its underlay address (no prefix length). */
  readonly address: string
  /** Its underlay device inside its namespace. */
  readonly dev: string
}

export interface UnderlayOptions {
  /** Also join the root namespace to the underlay (a veth from root into the bridge, with an address). */
  readonly joinRoot?: boolean
  /** MTU of every underlay link. Default 1500. */
  readonly mtu?: number
}

export interface Underlay {
  readonly prefix: string
  /** The second octet of this underlay's 10.<octet>.0.0/16. */
  readonly octet: number
  /** The underlay subnet, 10.<octet>.0.0/24. */
  readonly subnet: string
  /** The namespace holding the underlay bridge. */
  readonly netns: string
  /** The underlay bridge's own address (etcd listens here). */
  readonly bridgeAddress: string
  readonly hosts: ReadonlyArray<UnderlayHost>
  /** The root namespace's end and address, when joined. */
  readonly root?: { readonly dev: string; readonly address: string }
  /** `argv` as run inside a host's namespace. */
  readonly inHost: (host: UnderlayHost | number, argv: ReadonlyArray<string>) => ReadonlyArray<string>
  /** Run a command inside a host's namespace (never throws for a non-zero exit). */
  readonly run: (
    host: UnderlayHost | number,
    argv: ReadonlyArray<string>,
    opts?: Parameters<typeof run>[1]
  ) => Promise<RunResult>
  /** Start an etcd inside the underlay namespace, on the bridge's address (port 2379). */
  readonly startEtcd: () => Promise<TestEtcd>
  /**
   * Remove everything: processes still running inside these namespaces (the test's own; stop
   * yours first, this is the last resort), the namespaces with their links, the root veth.
   */
  readonly remove: () => Promise<void>
}

const BRIDGE = 'ulbr'
const HOST_DEV = 'ul0'

const tagOf = (prefix: string): string => createHash('sha256').update(prefix).digest('hex').slice(0, 6)

/** Subnets the root namespace routes now (IPv4), as [network, prefix length]. */
const rootRoutes = async (): Promise<ReadonlyArray<readonly [number, number]>> => {
  const out = (await mustRun(['ip', '-json', '-4', 'route', 'show', 'table', 'all'])).stdout
  const routes = mustParseJson('ip -json route show', out) as Array<{ dst?: string }>
  return routes.flatMap((r) => {
    const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)(?:\/(\d+))?$/.exec(r.dst ?? '')
    if (m === null) return []
    const n = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0
    return [[n, m[5] === undefined ? 32 : Number(m[5])] as const]
  })
}

const overlapsRoute = (octet: number, routes: ReadonlyArray<readonly [number, number]>): boolean => {
  const first = ((10 << 24) | (octet << 16)) >>> 0
  const last = (first + 0xffff) >>> 0
  // Only specific routes clash: a default route (or any /0-/8 covering all of 10/8) is not a subnet here.
  return routes.some(([n, len]) => {
    if (len <= 8) return false
    const size = 2 ** (32 - len)
    return n <= last && first <= n + size - 1
  })
}

// 10.160.0.0-10.223.0.0: away from the single-host tests' 10.240/16 and Docker's 172.16/12.
const pickOctet = async (prefix: string): Promise<number> => {
  const routes = await rootRoutes()
  const start = parseInt(tagOf(prefix), 16) % 64
  for (let i = 0; i < 64; i++) {
    const octet = 160 + ((start + i) % 64)
    if (!overlapsRoute(octet, routes)) return octet
  }
  throw new Error('no free 10.x.0.0/16 for an underlay (10.160-10.223 are all routed here)')
}

const hostOf = (hosts: ReadonlyArray<UnderlayHost>, h: UnderlayHost | number): UnderlayHost => {
  if (typeof h !== 'number') return h
  const found = hosts[h - 1]
  if (found === undefined) throw new Error(`no underlay host ${h} (hosts are 1..${hosts.length})`)
  return found
}

/**
 * Make an underlay of `count` hosts (1..50): a bridge in namespace `<prefix>-u` at 10.<octet>.0.2,
 * host n in namespace `<prefix>-h<n>` at 10.<octet>.0.<10+n> on `ul0`, the root namespace at
 * 10.<octet>.0.10 on `ul<hex>` when joined. Loopback is up everywhere. A failed set-up removes what
 * it made before it throws.
 */
export const makeUnderlay = async (prefix: string, count: number, options: UnderlayOptions = {}): Promise<Underlay> => {
  if (!Number.isInteger(count) || count < 1 || count > 50) {
    throw new Error(`an underlay has 1 to 50 hosts, not ${count}`)
  }
  const octet = await pickOctet(prefix)
  const net = `10.${octet}.0`
  const mtu = String(options.mtu ?? 1500)
  const underlayNs = `${prefix}-u`
  const hosts: UnderlayHost[] = Array.from({ length: count }, (_, i) => ({
    index: i + 1,
    netns: `${prefix}-h${i + 1}`,
    address: `${net}.${11 + i}`,
    dev: HOST_DEV
  }))
  const rootDev = `ul${tagOf(prefix)}`
  const root = options.joinRoot === true ? { dev: rootDev, address: `${net}.10` } : undefined
  const made: string[] = []

  const remove = async (): Promise<void> => {
    for (const ns of [...made].reverse()) {
      const pids = (await run(['ip', 'netns', 'pids', ns])).stdout.split('\n').filter((l) => /^\d+$/.test(l.trim()))
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL')
        } catch {
          // gone meanwhile
        }
      }
      await run(['ip', 'netns', 'del', ns])
    }
    if (root !== undefined) await run(['ip', 'link', 'del', 'dev', root.dev])
  }

  const batch = async (ns: string | undefined, lines: ReadonlyArray<string>): Promise<void> => {
    await mustRun(['ip', ...(ns === undefined ? [] : ['-n', ns]), '-batch', '-'], { input: `${lines.join('\n')}\n` })
  }

  try {
    for (const ns of [underlayNs, ...hosts.map((h) => h.netns)]) {
      await mustRun(['ip', 'netns', 'add', ns])
      made.push(ns)
    }
    await batch(underlayNs, [
      'link set lo up',
      `link add ${BRIDGE} mtu ${mtu} type bridge`,
      `addr add ${net}.2/24 dev ${BRIDGE}`,
      `link set ${BRIDGE} up`
    ])
    // Each pair is made with its ends already in their namespaces: nothing appears in root.
    await batch(undefined, [
      ...hosts.map(
        (h) =>
          `link add ${HOST_DEV} mtu ${mtu} netns ${h.netns} type veth peer name h${h.index} mtu ${mtu} netns ${underlayNs}`
      ),
      ...(root === undefined
        ? []
        : [`link add ${root.dev} mtu ${mtu} type veth peer name root mtu ${mtu} netns ${underlayNs}`])
    ])
    await batch(underlayNs, [
      ...hosts.map((h) => `link set h${h.index} master ${BRIDGE} up`),
      ...(root === undefined ? [] : [`link set root master ${BRIDGE} up`])
    ])
    for (const h of hosts) {
      await batch(h.netns, ['link set lo up', `addr add ${h.address}/24 dev ${HOST_DEV}`, `link set ${HOST_DEV} up`])
    }
    if (root !== undefined) {
      await batch(undefined, [`addr add ${root.address}/24 dev ${root.dev}`, `link set ${root.dev} up`])
    }
  } catch (e) {
    await remove()
    throw e
  }

  const inHost = (h: UnderlayHost | number, argv: ReadonlyArray<string>): ReadonlyArray<string> => [
    'ip',
    'netns',
    'exec',
    hostOf(hosts, h).netns,
    ...argv
  ]
  return {
    prefix,
    octet,
    subnet: `${net}.0/24`,
    netns: underlayNs,
    bridgeAddress: `${net}.2`,
    hosts,
    ...(root === undefined ? {} : { root }),
    inHost,
    run: (h, argv, opts) => run(inHost(h, argv), opts),
    startEtcd: () => startEtcd({ netns: underlayNs, host: `${net}.2` }),
    remove
  }
}
