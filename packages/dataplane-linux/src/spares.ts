/**
 * Spare veth pairs, made ahead for a long-running daemon: Docker's CreateEndpoint then takes one
 * that is already on the bridge instead of starting `ip` (a process start plus the kernel work,
 * ~8-10 ms, on every `docker run`), and the pool is refilled in the background after the answer.
 *
 * A spare is an ordinary pair under the endpoint prefixes with a random suffix (`istv…`/`istc…`):
 * the endpoint record keeps the names it was given, and gc, removeLink and the inventory treat it
 * like any link on an isthmus bridge. Its host end carries the alias `isthmus-spare`, so a daemon
 * starting after a crash can tell the spares its predecessor left (`strays`) from the links of CNI
 * attachments that are being made at that moment and have no record yet.
 *
 * Only endpoints that need nothing more than the pair take one: no MAC asked for (the spare has
 * its own), no published ports (a DNAT target also needs neighbour entries, made with its
 * addresses), and the sandbox end staying in the host namespace (Docker moves it itself).
 */
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import {
  HOST_IF_PREFIX,
  isIfName,
  PEER_IF_PREFIX,
  type CoreError,
  type IfName,
  type MacAddress,
  type Network
} from '@isthmus/core'
import { deleteLinks, host, ipBatch, showLinks, type IpCommand, type Tools } from './ip.js'
import { hairpin, randomMac, vethAdd } from './veth.js'

/** A pair on a bridge, ready to be an endpoint's. @category model */
export interface SparePair {
  readonly hostIfName: IfName
  readonly peerIfName: IfName
  readonly mac: MacAddress
}

/** The alias of a spare's host end (kept after it is taken: the record then says whose it is). @category constants */
export const SPARE_ALIAS = 'isthmus-spare'

/**
 * The pools, one per network and bridge: a bridge name may pass from a removed network to a new
 * one, and neither may take or clear the other's pairs.
 *
 * @category model
 */
export interface Spares {
  /** A ready pair of the network on `bridge`, if one is there and still intact; the pool is refilled after. */
  readonly take: (network: Network, bridge: string) => SparePair | undefined
  /** Make pairs in the background until the network's pool on `bridge` has its count (no-op when the count is 0). */
  readonly refill: (network: Network, bridge: string) => void
  /** Remove the network's spares on `bridge` (the network goes), after any refill still running. */
  readonly clear: (network: Network, bridge: string) => TE.TaskEither<CoreError, void>
  /** Remove every pool's spares (the daemon stops). */
  readonly clearAll: () => TE.TaskEither<CoreError, void>
  /** The spares this process keeps on `bridge` (a take-over removes the others there). */
  readonly kept: (bridge: string) => ReadonlySet<string>
  /** Wait for the refills still running on `bridge`, or on every bridge. */
  readonly drain: (bridge?: string) => Promise<void>
}

/**
 * Spares an earlier process left on `bridges`: host ends with the spare alias whose name no
 * endpoint record holds. Other bridges are another state directory's business (tests run several
 * daemons side by side). Also, on no bridge at all, never-taken ones (peer still beside them):
 * a spare is made on its bridge in one netlink request, so one without a master lost its bridge
 * after its daemon died, and is nobody's.
 *
 * @category utils
 */
export const strayPairs = (
  tools: Tools,
  recorded: ReadonlySet<string>,
  bridges: ReadonlySet<string>
): TE.TaskEither<CoreError, ReadonlyArray<string>> =>
  pipe(
    showLinks(tools, host),
    TE.map((links) =>
      links
        .filter(
          (l) =>
            l.ifalias === SPARE_ALIAS &&
            !recorded.has(l.ifname) &&
            (l.master !== undefined
              ? bridges.has(l.master)
              : typeof l.link === 'string' && l.link_netnsid === undefined)
        )
        .map((l) => l.ifname)
    )
  )

/**
 * Whether `hostEnd` is a spare's (taken or not), by its alias in sysfs: no process, no error for
 * a link that is gone (false).
 *
 * @category utils
 */
export const isSpareEnd = (hostEnd: string): boolean => {
  if (!isIfName(hostEnd)) return false
  try {
    return readFileSync(`/sys/class/net/${hostEnd}/ifalias`, 'utf8').trim() === SPARE_ALIAS
  } catch {
    return false
  }
}

const REFILL_DELAY_MS = 50

const suffix = (): string => randomBytes(6).toString('hex').slice(0, 11)

// The pair is still whole and where it was made: the host end on the bridge, the peer beside it.
const intact = (p: SparePair, bridge: string): boolean => {
  try {
    return (
      existsSync(`/sys/class/net/${p.peerIfName}`) &&
      readFileSync(`/sys/class/net/${p.hostIfName}/master/uevent`, 'utf8').includes(`INTERFACE=${bridge}\n`)
    )
  } catch {
    return false
  }
}

/** @category constructors */
export const makeSpares = (tools: Tools, count: number): Spares => {
  const ready = new Map<string, { readonly bridge: string; readonly pairs: SparePair[] }>()
  const refilling = new Map<string, { readonly bridge: string; readonly done: Promise<void> }>()
  const keyOf = (network: Network, bridge: string): string => `${network.id}\0${bridge}`

  const make = async (network: Network, bridge: string): Promise<void> => {
    const key = keyOf(network, bridge)
    const have = ready.get(key)?.pairs.length ?? 0
    if (have >= count) return
    const pairs: SparePair[] = Array.from({ length: count - have }, () => {
      const s = suffix()
      return {
        hostIfName: `${HOST_IF_PREFIX}${s}` as IfName,
        peerIfName: `${PEER_IF_PREFIX}${s}` as IfName,
        mac: randomMac()
      }
    })
    const lines = pairs.flatMap((p): IpCommand[] => [
      vethAdd({ host: p.hostIfName, peer: p.peerIfName }, bridge, network.mtu, p.mac),
      ['link', 'set', 'dev', p.hostIfName, 'alias', SPARE_ALIAS],
      hairpin(p.hostIfName)
    ])
    const made = await ipBatch(tools, host, lines)()
    // A failure (the bridge just went, a name clash) leaves CreateEndpoint on its usual path; what
    // the batch made before failing is removed, so no link is left that nobody tracks.
    if (made._tag === 'Left') {
      await deleteLinks(
        tools,
        host,
        pairs.map((p) => p.hostIfName)
      )()
      return
    }
    ready.set(key, { bridge, pairs: [...(ready.get(key)?.pairs ?? []), ...pairs] })
  }

  const refill = (network: Network, bridge: string): void => {
    const key = keyOf(network, bridge)
    if (count <= 0 || refilling.has(key)) return
    // Started a little later, so the process start does not delay the answer being sent, nor the
    // next call of the same container start (dockerd's Join follows CreateEndpoint at once).
    const done = new Promise((resolve) => setTimeout(resolve, REFILL_DELAY_MS))
      .then(() => make(network, bridge))
      .finally(() => refilling.delete(key))
    refilling.set(key, { bridge, done })
  }

  const remove =
    (keys: ReadonlyArray<string>): TE.TaskEither<CoreError, void> =>
    async () => {
      await Promise.all(keys.flatMap((k) => refilling.get(k)?.done ?? []))
      const pairs = keys.flatMap((k) => ready.get(k)?.pairs ?? [])
      for (const k of keys) ready.delete(k)
      return deleteLinks(
        tools,
        host,
        pairs.map((p) => p.hostIfName)
      )()
    }

  return {
    take: (network, bridge) => {
      const pool = ready.get(keyOf(network, bridge))?.pairs ?? []
      let got: SparePair | undefined
      while (got === undefined && pool.length > 0) {
        const p = pool.shift()!
        if (intact(p, bridge)) got = p
      }
      refill(network, bridge)
      return got
    },
    refill,
    clear: (network, bridge) => remove([keyOf(network, bridge)]),
    clearAll: () => remove([...new Set([...ready.keys(), ...refilling.keys()])]),
    kept: (bridge) =>
      new Set([...ready.values()].filter((r) => r.bridge === bridge).flatMap((r) => r.pairs.map((p) => p.hostIfName))),
    drain: async (bridge) => {
      await Promise.all(
        [...refilling.values()].filter((r) => bridge === undefined || r.bridge === bridge).map((r) => r.done)
      )
    }
  }
}
