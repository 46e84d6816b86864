/**
 * The file-system edge: each node:fs call wrapped once with `TE.tryCatch`, errno mapped to a
 * CoreError, and the two atomic writes every record goes through. The calls are the synchronous
 * ones: each is a single syscall on a small file, and a round trip through libuv's thread pool
 * cost more than the syscall itself (a record write went from ~2.1 to ~0.8 ms, a read from ~0.5
 * to ~0.05 ms), which the daemon pays several times per Docker call. The price is that an fsync
 * holds the event loop for its duration.
 *
 *
 * - `replaceFile`: temp file in the same directory, write, fsync, rename over the target, fsync the
 *   directory. A reader sees the old or the new content, never a mix, and after the call returns
 *   the new content survives a crash of the process or of the machine.
 * - `createFile`: temp file, write, fsync, then link(2) to the target, which fails with EEXIST
 *   atomically. So creation is create-if-absent across processes (like host-local's O_EXCL), and
 *   unlike O_EXCL + write the target never exists with partial content: it appears complete or
 *   not at all.
 *
 * Both take `durable = false` for writes that may be lost with the machine (Store PutOptions):
 * no fsync. A power loss may then leave the new file empty (its data was never written back), so
 * an empty record file is one such cut write: readers take it as absent (`readText`), and
 * `occupied` clears it for the next create.
 */
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import { dirname, join } from 'node:path'
import { getSystemErrorMap } from 'node:util'
import * as E from 'fp-ts/lib/Either.js'
import * as O from 'fp-ts/lib/Option.js'
import * as TE from 'fp-ts/lib/TaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import { causeText, io, transient, type CoreError } from '@isthmus/core'
import { TEMP_PREFIX, TOMB_PREFIX } from './layout.js'

/** The errno code of a thrown value, if it has one. @category utils */
export const errnoOf = (e: unknown): string | undefined =>
  typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string'
    ? (e as { code: string }).code
    : undefined

// Conditions that go away by themselves: the caller may try again (CNI code 11).
const TRANSIENT = new Set(['EAGAIN', 'EWOULDBLOCK', 'EBUSY', 'EINTR', 'EMFILE', 'ENFILE', 'ETIMEDOUT'])

const SYSTEM_ERRORS = getSystemErrorMap()

/**
 * What went wrong, without where: node's message names the file (`ENOSPC: no space left on
 * device, write '/var/lib/isthmus/...'`), and the sentence reaches the Docker user.
 *
 * @category utils
 */
export const errnoText = (e: unknown): string => {
  const code = errnoOf(e)
  const errno = typeof e === 'object' && e !== null ? (e as { errno?: unknown }).errno : undefined
  const known = typeof errno === 'number' ? SYSTEM_ERRORS.get(errno) : undefined
  if (code !== undefined && known?.[0] === code) return `${code}: ${known[1]}`
  return code !== undefined && /^E[A-Z0-9]+$/.test(code) ? code : causeText(e)
}

/**
 * The CoreError of a failed file-system call `op` on the stored object `what` (`endpoint <id>`,
 * `the leases of isthmus-local`): it names the object, never the path.
 *
 * @category utils
 */
export const fsError =
  (op: string, what: string) =>
  (e: unknown): CoreError => {
    const code = errnoOf(e)
    return code !== undefined && TRANSIENT.has(code)
      ? transient(`${op} of ${what}: ${errnoText(e)}`)
      : io(`${op} of ${what}`, errnoText(e))
  }

/** One fs call on `what` as a TaskEither. @category utils */
export const attempt = <A>(op: string, what: string, f: () => Promise<A>): TE.TaskEither<CoreError, A> =>
  TE.tryCatch(f, fsError(op, what))

// Like `attempt`, but one errno is an expected answer rather than a failure.
const attemptUnless = <A, B>(
  op: string,
  what: string,
  f: () => Promise<A>,
  code: string,
  instead: B
): TE.TaskEither<CoreError, A | B> =>
  TE.tryCatch(
    () =>
      f().then(
        (a): A | B => a,
        (e: unknown) => {
          if (errnoOf(e) === code) return instead
          throw e
        }
      ),
    fsError(op, what)
  )

/**
 * On failure, run `cleanup` and keep the original error whatever the cleanup does (the first
 * error says what went wrong; a failed cleanup only leaves a temp file, which the sweep removes).
 *
 * @category utils
 */
export const cleanupOnError =
  (cleanup: () => TE.TaskEither<CoreError, unknown>) =>
  <A>(ma: TE.TaskEither<CoreError, A>): TE.TaskEither<CoreError, A> =>
    pipe(
      ma,
      TE.orElse((e): TE.TaskEither<CoreError, A> => async () => {
        await cleanup()()
        return E.left(e)
      })
    )

let counter = 0
// Drawn once per process: pids are reused across crashes, and a dead process's temp names must not
// be taken again by the next one with its pid.
const processNonce = randomBytes(6).toString('hex')
/** A name no other process or call uses: pid, this process's random nonce and a counter. */
const uniqueSuffix = (): string => `${process.pid}-${processNonce}-${(counter++).toString(36)}`

/** @category utils */
export const tempPath = (dir: string): string => join(dir, `${TEMP_PREFIX}${uniqueSuffix()}`)
/** @category utils */
export const tombPath = (dir: string): string => join(dir, `${TOMB_PREFIX}${uniqueSuffix()}`)

/**
 * The text of a file, or none when it does not exist, is empty (a cut write, above) or is a directory.
 *
 * @category utils
 */
export const readText = (what: string, path: string): TE.TaskEither<CoreError, O.Option<string>> =>
  attemptUnless(
    'read',
    what,
    async () => {
      try {
        const text = fs.readFileSync(path, 'utf8')
        return text === '' ? O.none : O.some(text)
      } catch (e) {
        // a directory (a lock directory copied by hand, say) is never a record
        if (errnoOf(e) === 'EISDIR') return O.none
        throw e
      }
    },
    'ENOENT',
    O.none as O.Option<string>
  )

/** The entries of a directory; a missing directory has none. @category utils */
export const readNames = (what: string, dir: string): TE.TaskEither<CoreError, ReadonlyArray<string>> =>
  attemptUnless('readdir', what, async () => fs.readdirSync(dir), 'ENOENT', [] as ReadonlyArray<string>)

/** The names of the entries of a directory that are not directories themselves. @category utils */
export const readFileNames = (what: string, dir: string): TE.TaskEither<CoreError, ReadonlyArray<string>> =>
  attemptUnless(
    'readdir',
    what,
    async () =>
      fs
        .readdirSync(dir, { withFileTypes: true })
        .filter((d) => !d.isDirectory())
        .map((d) => d.name),
    'ENOENT',
    [] as ReadonlyArray<string>
  )

/** @category utils */
export const mkdirp = (what: string, dir: string): TE.TaskEither<CoreError, void> =>
  attempt('mkdir', what, async () => mkdirs(dir))

// mkdir -p by hand: node's recursive mkdir reports ENOENT where a parent could not be made
// (EROFS, EACCES), which would send the reader looking for the wrong fault.
const mkdirs = (dir: string): void => {
  try {
    fs.mkdirSync(dir, { mode: 0o750 })
  } catch (e) {
    const code = errnoOf(e)
    if (code === 'EEXIST' && fs.statSync(dir).isDirectory()) return
    if (code !== 'ENOENT' || dirname(dir) === dir) throw e
    mkdirs(dirname(dir))
    mkdirs(dir)
  }
}

/**
 * Whether a record file is there to stay: an empty one, the remains of a cut write (above), is
 * removed and reported absent, so a create can take its place. Nothing else ever leaves a record
 * file empty: writes go to a temp file first.
 *
 * @category utils
 */
export const occupied = (what: string, path: string): TE.TaskEither<CoreError, boolean> =>
  attemptUnless(
    'stat',
    what,
    async () => {
      // absent is the common answer (a free address): no exception built for it
      const st = fs.lstatSync(path, { throwIfNoEntry: false })
      if (st === undefined) return false
      if (st.size > 0) return true
      try {
        fs.unlinkSync(path)
      } catch (e) {
        if (errnoOf(e) !== 'ENOENT') throw e
      }
      return false
    },
    'ENOENT',
    false
  )

/** Remove a file; absent is fine. @category utils */
export const removeFile = (what: string, path: string): TE.TaskEither<CoreError, void> =>
  attemptUnless('unlink', what, async () => fs.unlinkSync(path), 'ENOENT', undefined)

/** Rename; `false` when the source is gone. @category utils */
export const renameIfExists = (what: string, from: string, to: string): TE.TaskEither<CoreError, boolean> =>
  attemptUnless('rename', what, async () => (fs.renameSync(from, to), true), 'ENOENT', false)

/** Give `from` a second name `to`; `false` when `to` exists already. @category utils */
export const linkUnlessExists = (what: string, from: string, to: string): TE.TaskEither<CoreError, boolean> =>
  attemptUnless('link', what, async () => (fs.linkSync(from, to), true), 'EEXIST', false)

/**
 * fsync a directory, so that a rename, link or unlink in it is on disk. Filesystems that cannot
 * fsync a directory (EINVAL) have nothing more to offer, so that is not an error.
 *
 * @category utils
 */
export const syncDir = (what: string, dir: string): TE.TaskEither<CoreError, void> =>
  attemptUnless(
    'fsync',
    what,
    async () => {
      const fd = fs.openSync(dir, 'r')
      try {
        fs.fsyncSync(fd)
      } finally {
        fs.closeSync(fd)
      }
    },
    'EINVAL',
    undefined
  )

/** A source of empty temp files made ahead of time (spares.ts). @category model */
export interface SpareSource {
  readonly take: (dir: string) => string | undefined
}

// The spare sources of the stores open in this process (those opened with `spareFiles`).
const spareSources = new Set<SpareSource>()

/** Let writes and locks take spare files from `source` until the returned function is called. @category utils */
export const useSpares = (source: SpareSource): (() => void) => {
  spareSources.add(source)
  return () => {
    spareSources.delete(source)
  }
}

/** An empty spare file in `dir`, if a store keeps them there (spares.ts). @category utils */
export const spareIn = (dir: string): string | undefined => {
  for (const source of spareSources) {
    const path = source.take(dir)
    if (path !== undefined) return path
  }
  return undefined
}

// A spare opened for writing, or a temp file made now when there is none (or a sweep took it).
const openTemp = (dir: string): { readonly path: string; readonly fd: number } => {
  const spare = spareIn(dir)
  if (spare !== undefined) {
    try {
      return { path: spare, fd: fs.openSync(spare, fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW) }
    } catch {
      // swept meanwhile: a file of our own below
    }
  }
  const path = tempPath(dir)
  return { path, fd: fs.openSync(path, 'wx', 0o640) }
}

/**
 * Write `text` to a new temporary file in `dir` (fsynced when `durable`) and return its path: a
 * spare one when the store keeps them (spares.ts), else one made now. A failed write removes the
 * temp file.
 *
 * @category utils
 */
export const writeTemp = (
  what: string,
  dir: string,
  text: string,
  durable: boolean
): TE.TaskEither<CoreError, string> =>
  // The file is picked when the task runs, so one task value can run twice, even at once.
  attempt('write', what, async () => {
    const temp = openTemp(dir)
    try {
      try {
        fs.writeFileSync(temp.fd, text, 'utf8')
        if (durable) fs.fsyncSync(temp.fd)
      } finally {
        fs.closeSync(temp.fd)
      }
    } catch (e) {
      try {
        fs.unlinkSync(temp.path)
      } catch {
        // gone already; the error below is the answer
      }
      throw e
    }
    return temp.path
  })

/**
 * Replace (or create) `path` with `text` atomically; see the module comment. Without `durable`
 * the fsyncs are skipped: the rename is still atomic for readers, but a power loss may keep the
 * old content (used for the cursor, a hint).
 *
 * @category utils
 */
export const replaceFile = (
  what: string,
  path: string,
  dir: string,
  text: string,
  durable = true
): TE.TaskEither<CoreError, void> =>
  pipe(
    writeTemp(what, dir, text, durable),
    TE.chain((temp) =>
      pipe(
        attempt('rename', what, async () => fs.renameSync(temp, path)),
        cleanupOnError(() => removeFile(what, temp))
      )
    ),
    TE.chain(() => (durable ? syncDir(what, dir) : TE.right(undefined)))
  )

/**
 * Create `path` with `text` only if it does not exist: `true` if this call created it, `false`
 * if it was there. The temp file is removed either way; the directory is fsynced before `true`.
 *
 * @category utils
 */
export const createFile = (
  what: string,
  path: string,
  dir: string,
  text: string,
  durable = true
): TE.TaskEither<CoreError, boolean> =>
  pipe(
    writeTemp(what, dir, text, durable),
    TE.chain((temp) =>
      pipe(
        linkUnlessExists(what, temp, path),
        cleanupOnError(() => removeFile(what, temp)),
        TE.chainFirst(() => removeFile(what, temp))
      )
    ),
    TE.chainFirst((created) => (created && durable ? syncDir(what, dir) : TE.right(undefined)))
  )
