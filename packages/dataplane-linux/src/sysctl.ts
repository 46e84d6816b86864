/**
 * Kernel settings under /proc/sys of the host namespace, read and written in process (no `sysctl`
 * process: a read and a write cost microseconds, a process milliseconds). The calls are
 * synchronous on purpose: /proc/sys is served from kernel memory, and a synchronous read of a few
 * bytes is cheaper than a round trip through libuv's thread pool.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as TE from 'fp-ts/lib/TaskEither.js'
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import { io, type CoreError } from '@isthmus/core'

/** A setting as path segments under /proc/sys, e.g. `['net', 'ipv4', 'ip_forward']`. @category model */
export type SysctlKey = ReadonlyArray<string>

/** How isthmus reads and writes kernel settings; injectable for tests. @category model */
export interface Sysctl {
  readonly read: (key: SysctlKey) => TE.TaskEither<CoreError, string>
  readonly write: (key: SysctlKey, value: string) => TE.TaskEither<CoreError, void>
}

// Interface names may contain dots, which the `sysctl` tool would read as separators; segments
// keep them literal. A segment never contains a slash (IfName forbids it).

/** @category constructors */
export const procSysctl = (root = '/proc/sys'): Sysctl => ({
  read: (key) =>
    TE.fromEither(
      E.tryCatch(
        () => readFileSync(join(root, ...key), 'utf8').trim(),
        (e) => io(`read sysctl ${key.join('.')}`, e)
      )
    ),
  write: (key, value) =>
    TE.fromEither(
      E.tryCatch(
        () => writeFileSync(join(root, ...key), value),
        (e) => io(`write sysctl ${key.join('.')}=${value}`, e)
      )
    )
})

/**
 * Set `key` to `value` unless it already has it (a write can wake work in the kernel, and on a
 * read-only /proc/sys an unneeded write would fail for nothing).
 *
 * @category utils
 */
export const ensureSysctl = (sysctl: Sysctl, key: SysctlKey, value: string): TE.TaskEither<CoreError, void> =>
  pipe(
    sysctl.read(key),
    TE.chain((current) => (current === value ? TE.right(undefined) : sysctl.write(key, value)))
  )
