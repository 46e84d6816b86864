/** The Docker modes' ports on Linux: the Engine API client, node:fs `stat`, `ip -json` inside the namespace. */
import { stat } from 'node:fs/promises'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import * as t from 'io-ts'
import { causeText, decodeJson, invalidNetns, type CoreError, type DockerPorts, type SandboxRoute } from '@isthmus/core'
import { decodeLinks, inNetns, runIp, type Tools } from '@isthmus/dataplane-linux'
import { dockerClient } from '@isthmus/docker-engine'

const IpRoutes = t.array(t.intersection([t.type({ dst: t.string }), t.partial({ gateway: t.string })]), 'IpRoutes')

const asCidr = (dst: string, family: 4 | 6): string =>
  dst === 'default'
    ? family === 4
      ? '0.0.0.0/0'
      : '::/0'
    : dst.includes('/')
      ? dst
      : `${dst}/${family === 4 ? 32 : 128}`

const routesOf = (
  tools: Tools,
  netns: string,
  dev: string,
  family: 4 | 6
): TE.TaskEither<CoreError, ReadonlyArray<SandboxRoute>> =>
  pipe(
    runIp(tools, inNetns(netns), [`-${family}`, '-json', 'route', 'show', 'dev', dev]),
    TE.chainEitherK((out) => decodeJson(IpRoutes, 'ip -json route')(out.trim() === '' ? '[]' : out)),
    TE.map((rs) =>
      rs.map((r) => ({ dst: asCidr(r.dst, family), ...(r.gateway === undefined ? {} : { gw: r.gateway }) }))
    )
  )

/** @category constructors */
export const linuxDockerPorts = (tools: Tools): DockerPorts => ({
  client: dockerClient,
  namespaceOf: (path) =>
    TE.tryCatch(
      async () => {
        const s = await stat(path, { bigint: true })
        return { dev: s.dev, ino: s.ino }
      },
      (e): CoreError => invalidNetns(path, causeText(e))
    ),
  links: (netns) =>
    pipe(
      runIp(tools, inNetns(netns), ['-json', 'link', 'show']),
      TE.chainEitherK((out) => decodeLinks(out)),
      TE.map((ls) => ls.map((l) => ({ name: l.ifname, ...(l.address === undefined ? {} : { mac: l.address }) })))
    ),
  routes: (netns, dev) =>
    pipe(
      TE.sequenceArray([routesOf(tools, netns, dev, 4), routesOf(tools, netns, dev, 6)]),
      TE.map((both) => both.flat())
    )
})
