/**
 * Which dataplane the daemon runs on: the Linux bridge (the default on Linux) or HNS (Windows
 * hosts, the default there), and for HNS how its calls reach it: HNSCall through the PowerShell
 * helper of @isthmus/dataplane-hns on Windows, or HTTP (a URL or a unix socket path) to an HNS
 * simulator or relay, as the tests do on Linux.
 *
 * HNS is offered only with the Contrail control plane: its networks are the Contrail Windows
 * driver's transparent networks, named from the controller's tenant, network and subnet, whose
 * gateway is the vRouter; nothing else on a Windows host would route them.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { causeText, type CoreError, type Dataplane } from '@isthmus/core'
import type * as DataplaneHns from '@isthmus/dataplane-hns'

/** @category constants */
export const DATAPLANE_KINDS = ['linux', 'hns'] as const
/** @category model */
export type DataplaneKind = (typeof DATAPLANE_KINDS)[number]

/** @category model */
export type DataplaneSettings =
  | { readonly kind: 'linux' }
  /** `hnsUrl`: `http://host:port` or a unix socket path; absent: HNSCall on this Windows host. */
  | { readonly kind: 'hns'; readonly hnsUrl?: string | undefined }

/** The dataplane a host runs by default: HNS on Windows, the Linux bridge elsewhere. @category utils */
export const defaultDataplane = (platform: NodeJS.Platform = process.platform): DataplaneKind =>
  platform === 'win32' ? 'hns' : 'linux'

/** What decides whether a dataplane choice makes sense. @category model */
export interface DataplaneChoice {
  readonly dataplane: DataplaneKind
  readonly hnsUrl?: string | undefined
  readonly contrailApi?: string | undefined
  readonly cluster?: string | undefined
  readonly platform: NodeJS.Platform
}

const isHnsUrl = (url: string): boolean => url.startsWith('/') || /^http:\/\/[^/]+\/?$/.test(url)

/**
 * Why the choice makes no sense, as one sentence naming the flags; undefined when it does.
 *
 * @category utils
 */
export const dataplaneRefusal = (c: DataplaneChoice): string | undefined => {
  const url = c.hnsUrl ?? ''
  if (c.dataplane !== 'hns') {
    return url === '' ? undefined : '--hns-url: only with --dataplane hns'
  }
  if ((c.contrailApi ?? '') === '') {
    return '--dataplane hns: only with --contrail-api (HNS networks here are the Contrail driver’s transparent networks, routed by the vRouter)'
  }
  if ((c.cluster ?? '') !== '') {
    return '--dataplane hns: not with --cluster (the multi-host overlay is Linux VXLAN)'
  }
  if (url === '' && c.platform !== 'win32') {
    return '--dataplane hns: HNS itself is only on Windows; elsewhere give --hns-url (an HNS simulator or relay)'
  }
  if (url !== '' && !isHnsUrl(url)) {
    return `--hns-url: http://host:port or an absolute unix socket path (got ${JSON.stringify(url)})`
  }
  return undefined
}

// The HNS adapter is imported when a daemon first opens it, as the etcd one is (etcd.ts): the CNI
// executable (one bundled CommonJS file, which never runs on HNS) leaves it out.
let loaded: Promise<typeof DataplaneHns> | undefined

/**
 * The HNS dataplane of the settings, reached over HTTP at `hnsUrl` (TCP or a unix socket), else
 * through HNSCall on this Windows host.
 *
 * @category constructors
 */
export const openHnsDataplane = (hnsUrl: string | undefined): TE.TaskEither<CoreError, Dataplane> =>
  pipe(
    TE.tryCatch(
      () => (loaded ??= import('@isthmus/dataplane-hns')),
      (e): CoreError => ({ _tag: 'Io', op: 'load the HNS adapter (@isthmus/dataplane-hns)', cause: causeText(e) })
    ),
    TE.map((m) => {
      const transport =
        hnsUrl === undefined || hnsUrl === ''
          ? m.windowsHnsTransport()
          : hnsUrl.startsWith('/')
            ? m.httpHnsTransport({ socketPath: hnsUrl })
            : m.httpHnsTransport({ baseUrl: hnsUrl })
      return m.hnsDataplane({ hns: m.hnsClient(transport) })
    })
  )
