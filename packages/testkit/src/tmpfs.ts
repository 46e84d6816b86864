/**
 * A small tmpfs of a test's own, for disk faults: filled to the last page (ENOSPC) or remounted
 * read-only (EROFS), touching no other file system. Needs root.
 */
import { execFileSync } from 'node:child_process'
import { appendFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rmdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Mount a tmpfs of `size` (`1m`) on a fresh directory under the temp dir; its path. */
export const mountTmpfs = async (size: string): Promise<string> => {
  const mnt = await mkdtemp(join(tmpdir(), 'isthmus-tmpfs-'))
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'isthmus-test-tmpfs', mnt])
  return mnt
}

/** Unmount (lazily if something still holds it) and remove the mount point. */
export const unmountTmpfs = async (mnt: string): Promise<void> => {
  try {
    execFileSync('umount', [mnt])
  } catch {
    execFileSync('umount', ['-l', mnt])
  }
  await rmdir(mnt)
}

/** Run `f` on a tmpfs of `size`, unmounted afterwards, also on failure. */
export const withTmpfs = async (size: string, f: (mnt: string) => Promise<void>): Promise<void> => {
  const mnt = await mountTmpfs(size)
  try {
    await f(mnt)
  } finally {
    await unmountTmpfs(mnt)
  }
}

/**
 * Make the file system of `mnt` read-only, or writable again. A file open for writing makes the
 * kernel refuse `ro` ("mount point is busy"): a daemon's store refills its spare files in the
 * background, so the remount is tried again for up to a second.
 */
export const remount = (mnt: string, mode: 'ro' | 'rw'): void => {
  for (let attempt = 1; ; attempt++) {
    try {
      execFileSync('mount', ['-o', `remount,${mode}`, mnt], { stdio: ['ignore', 'ignore', 'pipe'] })
      return
    } catch (e) {
      const stderr = (e as { stderr?: Buffer | string }).stderr
      const busy = /busy/.test(stderr === undefined ? '' : stderr.toString())
      if (!busy || attempt >= 50) throw e
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20)
    }
  }
}

/** Grow `file` until its file system has no page left (ENOSPC); removing it frees the space. */
export const fillFileSystem = (file: string): void => {
  const untilFull = (write: () => void) => {
    try {
      for (;;) write()
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOSPC') throw e
    }
  }
  untilFull(() => writeFileSync(file, Buffer.alloc(8 << 20)))
  untilFull(() => appendFileSync(file, Buffer.alloc(4096)))
  untilFull(() => appendFileSync(file, 'x'))
}
