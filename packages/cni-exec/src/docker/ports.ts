/**
 * What the Docker modes need from the outside world besides the Engine API: the identity of a
 * network namespace (to tell whether CNI_NETNS is the container's), and the links and routes
 * inside one (Docker picks the interface's name; the result must say which it is).
 */
import type * as TE from 'fp-ts/lib/TaskEither.js'
import type { CoreError } from '@isthmus/core'
import type { DockerClient, DockerClientOptions } from './client.js'

/** A namespace file's device and inode: two paths name one namespace when both are equal. @category model */
export interface NamespaceId {
  readonly dev: bigint
  readonly ino: bigint
}

/** A link inside a sandbox, as far as the result needs it. @category model */
export interface SandboxLink {
  readonly name: string
  readonly mac?: string
}

/** A route inside a sandbox through one device; `dst` is a CIDR (`default` made `0.0.0.0/0` or `::/0`). @category model */
export interface SandboxRoute {
  readonly dst: string
  readonly gw?: string
}

/** @category ports */
export interface DockerPorts {
  readonly client: (options: DockerClientOptions) => DockerClient
  /** `stat` of a namespace path, following `/proc/<pid>/ns/net` links; InvalidNetns when it cannot be read. */
  readonly namespaceOf: (path: string) => TE.TaskEither<CoreError, NamespaceId>
  readonly links: (netns: string) => TE.TaskEither<CoreError, ReadonlyArray<SandboxLink>>
  /** Routes of both families through `dev`. */
  readonly routes: (netns: string, dev: string) => TE.TaskEither<CoreError, ReadonlyArray<SandboxRoute>>
}
