/**
 * An endpoint's veth pair: the host end (`istv…`) on the network's bridge; the sandbox end
 * (`istc…`) either left in the host namespace for Docker (CNM: the link must exist there when
 * Join returns; dockerd sets it down, moves it, renames it with DstPrefix and configures it), or
 * put into CNI_NETNS as CNI_IFNAME with its addresses and routes (CNI ADD, as the reference bridge
 * plugin does).
 *
 * Process budget (each process costs 2-3 ms, the kernel work far less): ensure = 1 `ip -batch`;
 * place for CNI = 1 `ip -batch` inside the namespace when ensure was told the placement (the
 * sandbox end is then made in the sandbox, as the reference plugin does), else 1 failed rename,
 * 1 `ip link set … netns PATH name IF` (which waits ~20 ms in the kernel) and 1 batch; delete =
 * 1 `ip -batch`.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import {
  alreadyExists,
  dataplane,
  EndpointId,
  familyOf,
  invalidConfig,
  isIfName,
  MacAddress,
  notFound,
  splitCidr,
  type CoreError,
  type Endpoint,
  type IfName,
  type Network,
  type PlacedInterface,
  type Placement,
  type Route,
  type SandboxKey
} from '@isthmus/core'
import { decodeLinks, isUp, type IpLink } from './iproute.js'
import {
  deleteAll,
  findLink,
  host,
  inNetns,
  ip,
  ipBatch,
  ipArgv,
  ipBatchForced,
  isExists,
  isNoDevice,
  isSafeToken,
  type IpCommand,
  type Tools
} from './ip.js'
import { checkNetns } from './netns.js'

// -------------------------------------------------------------------------------------
// names
// -------------------------------------------------------------------------------------

// core's one interface-name rule, which every name passed to ip or iptables meets.
const checkName = (what: string, name: string): E.Either<CoreError, string> =>
  isIfName(name) ? E.right(name) : E.left(invalidConfig(`bad ${what} name ${JSON.stringify(name)}`))

/** Prefix of the alias a host end carries: the endpoint it was made for. @category constants */
export const ENDPOINT_MARK_PREFIX = 'isthmus:endpoint:'

// The kernel keeps at most 255 bytes of alias (IFALIASZ - 1); ids are ASCII.
const MAX_ALIAS = 255

/**
 * The alias of an endpoint's host end, `isthmus:endpoint:<id>`: the link says which endpoint it
 * was made for, so gc can hold that endpoint's lock before judging it (a link whose creation is
 * still in flight has no record yet). None for an id too long to fit (never Docker's or CNI's).
 *
 * @category utils
 */
export const endpointMark = (id: EndpointId): string | undefined => {
  const mark = `${ENDPOINT_MARK_PREFIX}${id}`
  return mark.length <= MAX_ALIAS ? mark : undefined
}

/** The endpoint an alias names, if it is an endpoint mark. @category utils */
export const markedEndpoint = (alias: string | undefined): EndpointId | undefined => {
  if (!alias?.startsWith(ENDPOINT_MARK_PREFIX)) return undefined
  const id = alias.slice(ENDPOINT_MARK_PREFIX.length)
  return EndpointId.is(id) ? id : undefined
}

const markLine = (hostEnd: string, id: EndpointId): ReadonlyArray<IpCommand> => {
  const mark = endpointMark(id)
  return mark === undefined ? [] : [['link', 'set', 'dev', hostEnd, 'alias', mark]]
}

/** The endpoint's two link names, checked before they reach a command. @category utils */
export const pairNames = (endpoint: Endpoint): E.Either<CoreError, { readonly host: string; readonly peer: string }> =>
  pipe(
    E.Do,
    E.bind('host', () => checkName('host interface', endpoint.hostIfName)),
    E.bind('peer', () => checkName('sandbox interface', endpoint.peerIfName))
  )

const macOf = (link: IpLink | undefined): E.Either<CoreError, MacAddress> =>
  link?.address !== undefined && MacAddress.is(link.address)
    ? E.right(link.address)
    : E.left(invalidConfig(`${link?.ifname ?? 'link'} has no Ethernet address`))

// -------------------------------------------------------------------------------------
// ensure
// -------------------------------------------------------------------------------------

/**
 * Hairpin on the host end's bridge port. With br_netfilter loaded (Docker hosts, and this one),
 * a sandbox calling its own published port is DNATed while the frame is still being bridged and
 * must go back out of the port it came in on; without hairpin the bridge drops it. Docker sets it
 * for the same reason when it runs without userland-proxy. Looped-back IPv6 DAD probes are
 * recognised by their nonce (enhanced_dad), so hairpin does not break DAD.
 */
export const hairpin = (hostEnd: string): IpCommand => [
  'link',
  'set',
  'dev',
  hostEnd,
  'type',
  'bridge_slave',
  'hairpin',
  'on'
]

/** A random locally administered unicast MAC: what the kernel gives a veth end (eth_random_addr). @category utils */
export const randomMac = (): MacAddress => {
  const b = randomBytes(6)
  b[0] = ((b[0] ?? 0) & 0xfe) | 0x02
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':') as MacAddress
}

/**
 * Permanent neighbour entries on the bridge for the endpoint's addresses. With br_netfilter, a
 * sandbox calling another one through a published port is DNATed while the frame is being bridged,
 * and the kernel then needs the target's neighbour entry: when the host has none yet (it never
 * talked to that sandbox), the frame is dropped and every SYN retransmit with it (seen here for
 * IPv6 and for IPv4). Entries made up front close that gap; `replace` fixes an entry left by an
 * earlier endpoint with the same address, and deleteVeth removes them.
 */
const neighbours = (
  endpoint: Endpoint,
  bridge: string,
  mac: string,
  placement: Placement | undefined
): ReadonlyArray<IpCommand> =>
  wantsNeighbours(endpoint, placement)
    ? endpoint.addresses.map((a) => [
        'neigh',
        'replace',
        splitCidr(a.cidr).address,
        'lladdr',
        mac,
        'dev',
        bridge,
        'nud',
        'permanent'
      ])
    : []

/**
 * Only an endpoint that is a DNAT target needs them. A CNI endpoint (PluginMoves) publishes ports
 * only when created with its port mappings; without them it gets none, because a permanent entry
 * also pins the MAC: a chained plugin that changes it later (the reference `tuning`, CNI `mac`
 * capability) would leave the host sending to the old MAC, and ARP cannot correct a permanent
 * entry. Docker endpoints learn their ports after creation, so they always get them.
 */
const wantsNeighbours = (endpoint: Endpoint, placement: Placement | undefined): boolean =>
  placement?._tag !== 'PluginMoves' || endpoint.portMappings.length > 0

/**
 * Make the pair: the host end on `bridge` and up, the sandbox end with the endpoint's MAC (or a
 * random one) and the network's MTU, and the host's neighbour entries for its addresses; return
 * the sandbox end's MAC. An existing pair is repaired (bridge, up, hairpin, neighbours) and its MAC
 * returned. One `ip -batch` process.
 *
 * The MAC is chosen here when none is given, at random like the kernel's own (eth_random_addr),
 * so the neighbour entries can name it in the same batch. The sandbox end is made in the host
 * namespace, named `peerIfName`, unless the placement is already known to be a sandbox (CNI):
 * then it is made directly inside that namespace, still under its unique `peerIfName` and down,
 * and `placeInSandbox` only renames and configures it. Moving a link between namespaces makes the
 * kernel wait for an RCU grace period (~20 ms measured here); making it there costs nothing extra.
 *
 * @category utils
 */
export const ensureVeth = (
  tools: Tools,
  network: Network,
  endpoint: Endpoint,
  bridge: string,
  placement?: Placement
): TE.TaskEither<CoreError, MacAddress> =>
  pipe(
    TE.fromEither(pairNames(endpoint)),
    TE.chain((n) => {
      // A path that cannot go on a batch line falls back to making the end in the host namespace.
      const target = placement?._tag === 'PluginMoves' && isSafeToken(placement.sandbox) ? placement.sandbox : undefined
      const mac = endpoint.mac ?? randomMac()
      // The alias cannot ride on the add itself (the kernel ignores IFLA_IFALIAS on a new link):
      // it is the next line of the same process.
      const lines: IpCommand[] = [
        vethAdd(n, bridge, network.mtu, mac, target),
        ...markLine(n.host, endpoint.id),
        hairpin(n.host),
        ...neighbours(endpoint, bridge, mac, placement)
      ]
      return pipe(
        target === undefined ? TE.right(undefined) : checkNetns(target),
        TE.chain(() => ipBatch(tools, host, lines)),
        TE.map(() => mac),
        TE.orElse((e) => {
          if (e._tag === 'InvalidNetns') return TE.left<CoreError, MacAddress>(e)
          if (isExists(e) && e._tag === 'Dataplane' && e.argv.includes('veth')) {
            return adoptPair(tools, endpoint, bridge, n, placement)
          }
          if (isNoDevice(e) && e._tag === 'Dataplane' && e.stderr.includes(`"${bridge}"`)) {
            return TE.left(notFound('network', network.id))
          }
          // Whatever was made is removed before the error goes back.
          return pipe(
            deleteVeth(tools, endpoint, bridge),
            TE.chain(() => TE.left<CoreError, MacAddress>(e))
          )
        })
      )
    })
  )

/**
 * One netlink request for a pair: both ends, the master and the host end up (no window in which
 * the host end exists off the bridge), the sandbox end down with `mac`, in `netns` when given.
 *
 * @category utils
 */
export const vethAdd = (
  n: { readonly host: string; readonly peer: string },
  bridge: string,
  mtu: number | undefined,
  mac: MacAddress,
  netns?: string
): IpCommand => {
  const m = mtu === undefined ? [] : ['mtu', String(mtu)]
  return [
    'link',
    'add',
    'name',
    n.host,
    ...m,
    'master',
    bridge,
    'up',
    'type',
    'veth',
    'peer',
    'name',
    n.peer,
    ...m,
    'address',
    mac,
    ...(netns === undefined ? [] : ['netns', netns])
  ]
}

const adoptPair = (
  tools: Tools,
  endpoint: Endpoint,
  bridge: string,
  n: { readonly host: string; readonly peer: string },
  placement: Placement | undefined
): TE.TaskEither<CoreError, MacAddress> =>
  pipe(
    ipBatchForced(
      tools,
      host,
      [
        ['link', 'show', 'dev', n.host],
        ['link', 'show', 'dev', n.peer]
      ],
      { json: true }
    ),
    TE.chainEitherK((r) => decodeLinks(r.stdout)),
    TE.chain((links) => {
      const h = links.find((l) => l.ifname === n.host)
      const p = links.find((l) => l.ifname === n.peer)
      const notOurs = (why: string): TE.TaskEither<CoreError, MacAddress> =>
        TE.left(alreadyExists('endpoint', endpoint.id, why))
      if (h === undefined) return notOurs(`${n.peer} exists without its host end ${n.host}`)
      if (p !== undefined && h.link !== n.peer) {
        return notOurs(`${n.host} and ${n.peer} exist but are not one veth pair`)
      }
      if (p === undefined && h.link_netnsid === undefined) {
        return notOurs(`${n.host} exists but its peer is not ${n.peer}`)
      }
      const fixes: IpCommand[] = [
        ...(h.master !== bridge || !isUp(h) ? [['link', 'set', 'dev', n.host, 'master', bridge, 'up']] : []),
        ...(h.ifalias !== endpointMark(endpoint.id) ? markLine(n.host, endpoint.id) : []),
        hairpin(n.host),
        ...(p !== undefined && endpoint.mac !== undefined && p.address !== endpoint.mac
          ? [['link', 'set', 'dev', n.peer, 'address', endpoint.mac]]
          : [])
      ]
      // The sandbox end is in a sandbox already: the recorded MAC, else the one the sandbox shows.
      const mac: TE.TaskEither<CoreError, MacAddress> =
        p !== undefined
          ? TE.fromEither(endpoint.mac !== undefined ? E.right(endpoint.mac) : macOf(p))
          : endpoint.mac !== undefined
            ? TE.right(endpoint.mac)
            : placement?._tag === 'PluginMoves'
              ? macInSandbox(tools, h, n.peer, placement)
              : notOurs(`${n.peer} has already been moved into a sandbox and no MAC was recorded`)
      return pipe(
        mac,
        TE.chainFirst((m) => ipBatch(tools, host, [...fixes, ...neighbours(endpoint, bridge, m, placement)]))
      )
    })
  )

/** The MAC of our host end's peer inside the sandbox, under its own or its final name. */
const macInSandbox = (
  tools: Tools,
  h: IpLink,
  peer: string,
  placement: Extract<Placement, { _tag: 'PluginMoves' }>
): TE.TaskEither<CoreError, MacAddress> =>
  pipe(
    checkNetns(placement.sandbox),
    TE.chain(() =>
      ipBatchForced(
        tools,
        inNetns(placement.sandbox),
        [
          ['link', 'show', 'dev', peer],
          ['link', 'show', 'dev', placement.ifName]
        ],
        { json: true }
      )
    ),
    TE.chainEitherK((r) => decodeLinks(r.stdout)),
    TE.chainEitherK((links) => macOf(links.find((l) => l.ifindex === h.link_index)))
  )

// -------------------------------------------------------------------------------------
// place
// -------------------------------------------------------------------------------------

/**
 * Docker (RuntimeMoves): the sandbox end stays in the host namespace, down; dockerd sets it down
 * anyway before moving it, then renames it, sets MAC and addresses and brings it up. Only checks
 * that it is there and reports its MAC.
 *
 * @category utils
 */
export const placeForRuntime = (endpoint: Endpoint): TE.TaskEither<CoreError, PlacedInterface> =>
  pipe(
    TE.fromEither(pairNames(endpoint)),
    // dockerd needs SrcName in the host namespace when Join returns. sysfs answers that, and the
    // MAC, without starting a process (Join is on every `docker run`).
    TE.chain((n) => TE.fromEither(sysfsMac(n.peer, endpoint))),
    TE.map((mac): PlacedInterface => ({ ifName: endpoint.peerIfName, mac }))
  )

const sysfsMac = (name: string, endpoint: Endpoint): E.Either<CoreError, MacAddress> => {
  let text: string
  try {
    text = readFileSync(`/sys/class/net/${name}/address`, 'utf8').trim()
  } catch {
    return E.left(notFound('endpoint', endpoint.id))
  }
  return pipe(
    MacAddress.decode(text),
    E.mapLeft(() => invalidConfig(`link ${name} has no Ethernet address (${text})`))
  )
}

const routeLine = (verb: 'add' | 'replace', r: Route, ifName: string): IpCommand => [
  'route',
  verb,
  r.dst,
  ...(r.gw === undefined ? [] : ['via', r.gw]),
  'dev',
  ifName
]

/**
 * The commands that configure the moved link inside the sandbox. `replace` rather than `add`, so a
 * retried ADD converges instead of failing on what the first one did; except a route marked
 * `ifNone` (a default nobody asked for), which is added last, so that a sandbox's existing default
 * route (eth0's, when this is net1) stops it with "File exists" instead of being replaced.
 */
const configureLines = (endpoint: Endpoint, ifName: string): ReadonlyArray<IpCommand> => {
  const addrs = endpoint.addresses.map((a): IpCommand => [
    'addr',
    'replace',
    a.cidr,
    'dev',
    ifName,
    // The sandbox is the only holder of its address (IPAM says so); DAD would only delay the
    // IPv6 address by a second, which is why the reference plugin sets accept_dad=0.
    ...(familyOf(a.cidr) === 6 ? ['nodad'] : [])
  ])
  // Exactly the endpoint's routes: the caller's (a CNI netconf's explicit `routes` must be all
  // there is, as the reference bridge plugin installs only ipam.routes), or its defaults.
  const routes = endpoint.routes.filter((r) => r.ifNone !== true).map((r) => routeLine('replace', r, ifName))
  const soft = endpoint.routes.filter((r) => r.ifNone === true).map((r) => routeLine('add', r, ifName))
  return [...addrs, ['link', 'set', 'dev', ifName, 'up'], ...routes, ...soft, ['link', 'show', 'dev', ifName]]
}

const failedLine = (stderr: string): number | undefined => {
  const m = /Command failed -:(\d+)/.exec(stderr)
  return m === null ? undefined : Number(m[1]) - 1
}

/**
 * `head`, then the configuration of `ifName`, in one process inside the sandbox; returns what
 * `ip -json` printed and, when the sandbox kept a default route of its own, the routes it got.
 * Only when an `ifNone` route met one ("File exists"): one more process adds those of them that
 * can go (every one is tried) and reads the link. A retried ADD whose first try installed such a
 * route takes it for the sandbox's own; DEL removes it with the link either way.
 */
const configureIn = (
  tools: Tools,
  sandbox: SandboxKey,
  head: ReadonlyArray<IpCommand>,
  endpoint: Endpoint,
  ifName: string
): TE.TaskEither<CoreError, { readonly stdout: string; readonly routes?: ReadonlyArray<Route> }> => {
  const lines = [...head, ...configureLines(endpoint, ifName)]
  const soft = endpoint.routes.filter((r) => r.ifNone === true)
  const firstSoft = lines.length - 1 - soft.length
  return pipe(
    ipBatch(tools, inNetns(sandbox), lines, { json: true }),
    TE.map((stdout) => ({ stdout })),
    TE.orElse((e) => {
      const at = e._tag === 'Dataplane' ? failedLine(e.stderr) : undefined
      if (!isExists(e) || at === undefined || at < firstSoft || at >= lines.length - 1) return TE.left(e)
      const retry: ReadonlyArray<IpCommand> = [
        ...soft.map((r) => routeLine('add', r, ifName)),
        ['link', 'show', 'dev', ifName]
      ]
      return pipe(
        ipBatchForced(tools, inNetns(sandbox), retry, { json: true }),
        TE.chain((r) => {
          const exists = (r.stderr.match(/File exists/g) ?? []).length
          if (r.failed.some((i) => i >= soft.length) || exists < r.failed.length) {
            const [file, argv] = ipArgv(tools, inNetns(sandbox), retry[r.failed[0] ?? 0] ?? [])
            return TE.left(dataplane([file, ...argv], 1, r.stderr))
          }
          const kept = soft.filter((_, i) => r.failed.includes(i))
          return TE.right({ stdout: r.stdout, routes: endpoint.routes.filter((x) => !kept.includes(x)) })
        })
      )
    })
  )
}

/**
 * CNI (PluginMoves): the sandbox end becomes `ifName` inside the namespace at `sandbox`, addressed,
 * up, with the endpoint's routes (createEndpoint's defaults, or the caller's);
 * returns its MAC as the sandbox shows it. If ensureVeth made it there already, one batch inside
 * the namespace renames and configures it; otherwise it is moved in from the host namespace,
 * renamed in the same netlink request (so it never clashes with a host link of that name), and
 * then configured. `lo` is left alone, as the reference bridge plugin does. On any failure the
 * pair is deleted (both ends, wherever the sandbox end is) before the error is returned.
 *
 * @category utils
 */
export const placeInSandbox = (
  tools: Tools,
  endpoint: Endpoint,
  bridge: string,
  sandbox: SandboxKey,
  ifName: IfName
): TE.TaskEither<CoreError, PlacedInterface> =>
  pipe(
    TE.fromEither(pairNames(endpoint)),
    TE.chain((n) =>
      pipe(
        TE.fromEither(checkName('sandbox interface', ifName)),
        TE.chain(() => checkNetns(sandbox)),
        // Made in the sandbox by ensureVeth: rename it there and configure it, one process. The
        // rename is the first line and names our unique peerIfName, so a sandbox without our link
        // fails the batch before anything of its own is touched.
        TE.chain(() => configureIn(tools, sandbox, [['link', 'set', 'dev', n.peer, 'name', ifName]], endpoint, ifName)),
        TE.orElse((e) =>
          isNoDevice(e) && e._tag === 'Dataplane' && e.stderr.includes(`"${n.peer}"`)
            ? // Made in the host namespace (Docker-style, or ensureEndpoint without the placement):
              // move it in, renamed in the same request, then configure it.
              pipe(
                moveIn(tools, endpoint, n, sandbox, ifName),
                TE.chain(() => configureIn(tools, sandbox, [], endpoint, ifName))
              )
            : TE.left(e)
        ),
        TE.chain(({ stdout, routes }) =>
          pipe(
            TE.fromEither(decodeLinks(stdout)),
            TE.chainEitherK((links) => macOf(links.find((l) => l.ifname === ifName))),
            TE.map((mac): PlacedInterface => ({ ifName, mac, sandbox, ...(routes === undefined ? {} : { routes }) }))
          )
        ),
        TE.orElse((e) =>
          pipe(
            deleteVeth(tools, endpoint, bridge),
            TE.chain(() => TE.left<CoreError, PlacedInterface>(e))
          )
        )
      )
    )
  )

const moveIn = (
  tools: Tools,
  endpoint: Endpoint,
  n: { readonly host: string; readonly peer: string },
  sandbox: SandboxKey,
  ifName: string
): TE.TaskEither<CoreError, void> =>
  pipe(
    // Not a batch line: a namespace path may hold characters a batch line cannot carry.
    ip(tools, host, ['link', 'set', 'dev', n.peer, 'netns', sandbox, 'name', ifName]),
    TE.map(() => undefined),
    TE.orElse((e) =>
      isNoDevice(e)
        ? // A retried ADD: the sandbox end may already be in place. Go on only if the link named
          // ifName in the sandbox is the peer of our host end.
          alreadyPlaced(tools, endpoint, n, sandbox, ifName, e)
        : TE.left(e)
    )
  )

const alreadyPlaced = (
  tools: Tools,
  endpoint: Endpoint,
  n: { readonly host: string; readonly peer: string },
  sandbox: SandboxKey,
  ifName: string,
  original: CoreError
): TE.TaskEither<CoreError, void> =>
  pipe(
    TE.Do,
    TE.bind('h', () => findLink(tools, host, n.host)),
    TE.bind('inside', () => findLink(tools, inNetns(sandbox), ifName)),
    TE.chain(({ h, inside }) =>
      h !== undefined && inside?.link_index === h.ifindex && h.link_netnsid !== undefined
        ? TE.right(undefined)
        : TE.left(h === undefined ? notFound('endpoint', endpoint.id) : original)
    )
  )

// -------------------------------------------------------------------------------------
// delete
// -------------------------------------------------------------------------------------

/**
 * Delete the pair: deleting the host end removes the sandbox end wherever it is (host namespace,
 * or a sandbox); the sandbox end is named too in case only it is left. Absent succeeds. With
 * `neighbours` (default), also the bridge's neighbour entries for the endpoint's addresses; the
 * caller may leave that out for an endpoint that cannot have any (`mayHaveNeighbours`), which
 * spares a kept `ip` process its end (batchProcess.ts: `ip neigh` reads every link).
 *
 * @category utils
 */
export const deleteVeth = (
  tools: Tools,
  endpoint: Endpoint,
  bridge: string,
  neighbours = true
): TE.TaskEither<CoreError, void> =>
  pipe(
    TE.fromEither(pairNames(endpoint)),
    TE.chain((n) =>
      deleteAll(tools, host, [
        ['link', 'del', 'dev', n.host],
        ['link', 'del', 'dev', n.peer],
        // `flush`, not `del`: an entry that is not there (an endpoint that never had one) is no
        // error, where `neigh del` makes ip exit, ending the rest of its batch with it.
        ...(neighbours
          ? endpoint.addresses.map((a): IpCommand => [
              'neigh',
              'flush',
              'to',
              splitCidr(a.cidr).address,
              'dev',
              bridge,
              'nud',
              'all'
            ])
          : [])
      ])
    )
  )

/**
 * Whether `ensureVeth` may have made neighbour entries for the endpoint (`wantsNeighbours`): a
 * Docker endpoint, unless it took a spare pair (made before its addresses were known, and taken
 * only by endpoints that publish nothing), or one that publishes ports.
 *
 * @category utils
 */
export const mayHaveNeighbours = (endpoint: Endpoint, onSpare: boolean): boolean =>
  endpoint.portMappings.length > 0 || (endpoint.owner.kind === 'docker' && !onSpare)
