/**
 * `isthmus uninstall [--purge]`: remove what this isthmus installation put on the host, and nothing
 * else: the links of its store's networks and endpoints and its spare pairs (dataplane-linux
 * `removeHostState`), its iptables chains and the jumps to them, the files `isthmus cni install`
 * wrote, its two sockets; with `--purge` its records too (store-fs `purgeStateDir`). A daemon that
 * still answers on either socket would make it all again on its next call: the command refuses
 * then (stop it first: `systemctl disable --now isthmus.socket isthmus.service`), unless `--force`.
 * A second run finds nothing and says so.
 */
import { existsSync, lstatSync, readFileSync, rmdirSync, rmSync } from 'node:fs'
import { createConnection } from 'node:net'
import { dirname, join } from 'node:path'
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import type { Argv } from 'yargs'
import { DEFAULT_STATE_DIR, describe, isChainPrefix, type CoreError, type Endpoint, type Network } from '@isthmus/core'
import { DEFAULT_SOCKET } from '@isthmus/cnm-server'
import { DEFAULT_CHAIN_PREFIX, removeHostState, type InstalledRecords } from '@isthmus/dataplane-linux'
import { DEFAULT_DAEMON_SOCKET, FALLBACK_FILE } from '@isthmus/handoff'
import { hasStore, purgeStateDir } from '@isthmus/store-fs'
import { openStore } from '@isthmus/wiring'
import { CONFLIST_FILE, DEFAULT_BIN_DIR, DEFAULT_CONF_DIR } from './cni.js'

export interface UninstallArgs {
  readonly stateDir: string
  readonly socket: string
  /** '' for none. */
  readonly cniSocket: string
  readonly chainPrefixes: ReadonlyArray<string>
  readonly binDir: string
  readonly confDir: string
  readonly purge: boolean
  readonly force: boolean
  readonly out: (line: string) => void
}

// A socket someone accepts on: a running daemon (or a systemd socket unit, which would start one).
const answers = (path: string): Promise<boolean> =>
  new Promise((resolve) => {
    if (!isSocket(path)) return resolve(false)
    const c = createConnection(path)
    c.once('connect', () => {
      c.destroy()
      resolve(true)
    })
    c.once('error', () => resolve(false))
  })

const isSocket = (path: string): boolean => {
  try {
    return lstatSync(path).isSocket()
  } catch {
    return false
  }
}

// The networks and endpoints the state directory records; none when it holds no store (opening
// one would make its directories).
const recordsOf = (stateDir: string): TE.TaskEither<CoreError, InstalledRecords> =>
  !hasStore(stateDir)
    ? TE.right({ networks: [], hostIfNames: [] })
    : pipe(
        openStore({ kind: 'file', stateDir, sweepOnOpen: false }),
        TE.chain((store) =>
          pipe(
            TE.Do,
            TE.apS('networks', store.networks.list()),
            TE.apS('endpoints', store.endpoints.list()),
            TE.chainFirst(() => TE.fromTask(() => store.close())),
            TE.orElse((e) =>
              pipe(
                TE.fromTask(() => store.close()),
                TE.chain(() =>
                  TE.left<CoreError, { networks: ReadonlyArray<Network>; endpoints: ReadonlyArray<Endpoint> }>(e)
                )
              )
            )
          )
        ),
        TE.map(({ networks, endpoints }) => ({ networks, hostIfNames: endpoints.map((e) => e.hostIfName) }))
      )

// Chain prefixes the installed conflist's networks name (`chainPrefix`): CNI calls made those chains.
const conflistPrefixes = (conf: string): ReadonlyArray<string> => {
  try {
    const doc = JSON.parse(readFileSync(conf, 'utf8')) as { plugins?: Array<{ type?: unknown; chainPrefix?: unknown }> }
    return (doc.plugins ?? []).flatMap((p) =>
      p.type === 'isthmus' && typeof p.chainPrefix === 'string' && isChainPrefix(p.chainPrefix) ? [p.chainPrefix] : []
    )
  } catch {
    return []
  }
}

const removeFile = (path: string, removed: string[]): void => {
  if (!existsSync(path) && !isSocket(path)) return
  rmSync(path, { force: true })
  removed.push(path)
}

/** Uninstall; returns the exit code. */
export const uninstall = async (a: UninstallArgs): Promise<number> => {
  const bad = a.chainPrefixes.find((p) => !isChainPrefix(p))
  if (bad !== undefined) {
    a.out(`isthmus uninstall: --chain-prefix: letters, digits and _, at most 16 (got ${JSON.stringify(bad)})`)
    return 1
  }
  const sockets = a.cniSocket === '' ? [a.socket] : [a.socket, a.cniSocket]
  for (const s of sockets) {
    if (!(await answers(s))) continue
    if (!a.force) {
      a.out(
        `isthmus uninstall: something answers on ${s} (a running isthmus serve, or systemd's isthmus.socket), ` +
          'and would make what is removed again: stop it first (`systemctl disable --now isthmus.socket isthmus.service`), ' +
          'or pass --force'
      )
      return 1
    }
    a.out(`warning: something answers on ${s}; removing anyway (--force)`)
  }
  const conflist = join(a.confDir, CONFLIST_FILE)
  const prefixes = [...new Set([...a.chainPrefixes, ...conflistPrefixes(conflist)])]
  const host = await pipe(
    recordsOf(a.stateDir),
    TE.chain((records) => removeHostState(records, { chainPrefixes: prefixes }))
  )()
  if (E.isLeft(host)) {
    a.out(`isthmus uninstall: ${describe(host.left)}`)
    return 1
  }
  const { links, bridges, chains } = host.right
  for (const l of links) a.out(`removed link ${l}`)
  for (const b of bridges) a.out(`removed bridge ${b}`)
  for (const c of chains) a.out(`removed iptables chain ${c}`)
  const files: string[] = []
  removeFile(join(a.binDir, 'isthmus'), files)
  removeFile(join(a.binDir, FALLBACK_FILE), files)
  removeFile(conflist, files)
  for (const s of sockets) if (isSocket(s)) removeFile(s, files)
  // The hand-off socket's directory is the daemon's own only at its default place.
  if (a.cniSocket === DEFAULT_DAEMON_SOCKET) {
    try {
      rmdirSync(dirname(DEFAULT_DAEMON_SOCKET))
      files.push(dirname(DEFAULT_DAEMON_SOCKET))
    } catch {
      // absent, or holds something that is not ours
    }
  }
  if (a.purge) {
    const purged = await purgeStateDir(a.stateDir)()
    if (E.isLeft(purged)) {
      a.out(`isthmus uninstall: ${describe(purged.left)}`)
      return 1
    }
    files.push(...purged.right.removed)
    if (purged.right.kept.length > 0) {
      a.out(`kept ${a.stateDir}: it also holds ${purged.right.kept.join(', ')}, which isthmus did not write`)
    }
  }
  for (const f of files) a.out(`removed ${f}`)
  const total = links.length + bridges.length + chains.length + files.length
  if (total === 0) a.out('nothing left to remove')
  else if (!a.purge && hasStore(a.stateDir)) a.out(`kept the records in ${a.stateDir} (--purge removes them)`)
  return 0
}

export const uninstallCommand = (y: Argv): Argv =>
  y.command(
    'uninstall',
    'Remove what isthmus made on this host: links, iptables chains, CNI files, sockets (--purge: also its records)',
    (c) =>
      c
        .option('state-dir', {
          type: 'string',
          default: DEFAULT_STATE_DIR,
          describe: "the store whose networks' bridges and endpoints' links are removed"
        })
        .option('socket', { type: 'string', default: DEFAULT_SOCKET, describe: 'the Docker plugin socket' })
        .option('cni-socket', {
          type: 'string',
          default: DEFAULT_DAEMON_SOCKET,
          describe: "the CNI hand-off socket ('' for none)"
        })
        .option('chain-prefix', {
          type: 'string',
          array: true,
          default: [DEFAULT_CHAIN_PREFIX],
          describe: 'iptables chain prefixes to remove (repeatable; the installed conflist adds its own)'
        })
        .option('bin-dir', { type: 'string', default: DEFAULT_BIN_DIR, describe: 'where `cni install` put the plugin' })
        .option('conf-dir', {
          type: 'string',
          default: DEFAULT_CONF_DIR,
          describe: 'where `cni install` put 10-isthmus.conflist'
        })
        .option('purge', { type: 'boolean', default: false, describe: 'also remove the records under --state-dir' })
        .option('force', {
          type: 'boolean',
          default: false,
          describe: 'go on although something answers on the sockets (it may make things again)'
        }),
    async (a) => {
      process.exitCode = await uninstall({
        stateDir: a.stateDir,
        socket: a.socket,
        cniSocket: a.cniSocket,
        chainPrefixes: a.chainPrefix.map(String),
        binDir: a.binDir,
        confDir: a.confDir,
        purge: a.purge,
        force: a.force,
        out: (l) => process.stdout.write(`${l}\n`)
      })
    }
  )
