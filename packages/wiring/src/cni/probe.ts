/** The CNI frontend's Probe port on Linux: links read with `ip -json`, MACs from sysfs. */
import { readFileSync, statSync } from 'node:fs'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { IfName, type CoreError } from '@isthmus/core'
import type { LinkState, Probe } from '@isthmus/cni-exec'
import { decodeLinks, findLink, host, inNetns, runIp, type IpLink, type Tools } from '@isthmus/dataplane-linux'

const linkState = (l: IpLink): LinkState => ({
  name: l.ifname,
  up: l.flags.includes('UP'),
  addresses: (l.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`),
  ...(l.address === undefined ? {} : { mac: l.address }),
  ...(l.master === undefined ? {} : { master: l.master })
})

/** The Probe port over `ip -json`. @category constructors */
export const ipProbe = (tools: Tools): Probe => ({
  hostLink: (name) =>
    pipe(
      findLink(tools, host, name),
      TE.map((l) => (l === undefined ? undefined : linkState(l)))
    ),
  // sysfs answers without starting `ip` (two of them on every ADD); a name that cannot be a link
  // name, or no such link, is undefined.
  hostMac: (name) =>
    TE.right(
      IfName.is(name) && !name.includes('/') && !name.startsWith('.')
        ? (() => {
            try {
              return readFileSync(`/sys/class/net/${name}/address`, 'utf8').trim()
            } catch {
              return undefined
            }
          })()
        : undefined
    ),
  sandboxLink: (netns, name) =>
    pipe(
      TE.tryCatch(
        async () => statSync(netns),
        (): CoreError => ({ _tag: 'InvalidNetns', path: netns, detail: 'no such file or directory' })
      ),
      TE.chain(() => findLink(tools, inNetns(netns), name)),
      TE.map((l) => (l === undefined ? undefined : linkState(l)))
    ),
  bridgePorts: (bridge) =>
    pipe(
      runIp(tools, host, ['-json', 'link', 'show', 'master', bridge]),
      TE.chainEitherK((out) => decodeLinks(out === '' ? '[]' : out)),
      TE.map((links) => links.map((l) => l.ifname)),
      // No such bridge: no ports.
      TE.orElse((e) =>
        e._tag === 'Dataplane' && /does not exist|Cannot find device/.test(e.stderr) ? TE.right([]) : TE.left(e)
      )
    )
})
