/**
 * Network namespace paths (CNI_NETNS, Docker's SandboxKey): checked in process before any command
 * runs, the way the reference plugins do (`failed to Statfs "/var/run/netns/x"`), so a bad path
 * is `InvalidNetns` (CNI code 8) rather than an `ip` failure.
 */
import { statfsSync } from 'node:fs'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { causeText, invalidNetns, type CoreError } from '@isthmus/core'

/** `statfs(2)` f_type of a namespace file (NSFS_MAGIC, linux/magic.h). */
const NSFS_MAGIC = 0x6e736673

/**
 * Succeeds when `path` is a namespace file: a bind mount made by `ip netns add`/`unshare
 * --net=FILE`, or `/proc/<pid>/ns/net`. A mount point whose namespace was released (a plain file
 * on tmpfs) or a missing path is `InvalidNetns`. Whether it is a *network* namespace is left to
 * the kernel: moving a link into another kind fails there.
 *
 * @category utils
 */
export const checkNetns = (path: string): TE.TaskEither<CoreError, void> =>
  pipe(
    TE.tryCatch(
      // In process: statfs of a namespace file takes microseconds, less than a trip through
      // libuv's thread pool (a CNI ADD checks its namespace twice).
      async () => statfsSync(path),
      (e) => invalidNetns(path, causeText(e))
    ),
    TE.chain((s) =>
      s.type === NSFS_MAGIC
        ? TE.right(undefined)
        : TE.left(invalidNetns(path, `not a namespace file (filesystem type 0x${s.type.toString(16)})`))
    )
  )
