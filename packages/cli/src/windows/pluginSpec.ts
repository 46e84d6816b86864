/**
 * How Docker on Windows finds `isthmus serve`: there are no plugin sockets in /run/docker/plugins,
 * so the daemon listens on a named pipe and writes a discovery file naming it, `<name>.spec` in
 * `%ProgramData%\docker\plugins` (the only directory dockerd on Windows reads, moby
 * pkg/plugins/discovery_windows.go), holding `npipe:////./pipe/<name>`: dockerd parses it as a URL
 * and dials its path, `//./pipe/<name>`. The file is written aside and renamed in, and removed on
 * stop unless another daemon has replaced it meanwhile.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { basename, join, win32 } from 'node:path'

/** The pipe `isthmus serve` listens on under Windows by default (`--socket`). */
export const DEFAULT_PIPE = '\\\\.\\pipe\\isthmus'

// A local pipe as Node and Windows accept it: \\.\pipe\<name> or \\?\pipe\<name>, either slash.
const PIPE = /^[\\/]{2}[.?][\\/]pipe[\\/](.+)$/i

/** Whether `path` names a Windows named pipe rather than a unix socket. */
export const isNamedPipe = (path: string): boolean => PIPE.test(path)

/**
 * What the spec file holds for a listener: `npipe:////./pipe/<name>` for a pipe (forward slashes:
 * dockerd takes the URL's path as the pipe's name), `unix://<path>` for a unix socket.
 */
export const pluginSpecAddress = (listenPath: string): string => {
  const pipe = PIPE.exec(listenPath)
  return pipe === null ? `unix://${listenPath}` : `npipe:////./pipe/${pipe[1]!.replace(/\\/g, '/')}`
}

/**
 * The driver name dockerd knows the listener by: the pipe's name, or the socket file's name
 * without `.sock`, as on Linux (`/run/docker/plugins/<name>.sock`).
 */
export const pluginNameOf = (listenPath: string): string => {
  const pipe = PIPE.exec(listenPath)
  return pipe === null ? basename(listenPath).replace(/\.sock$/, '') : pipe[1]!.split(/[\\/]/).pop()!
}

/** `%ProgramData%\docker\plugins`; `C:\ProgramData` when the variable is not set. */
export const windowsPluginSpecDir = (env: Readonly<Record<string, string | undefined>>): string => {
  // Windows variables are case-insensitive; a copy of the environment may not be
  const key = Object.keys(env).find((k) => k.toLowerCase() === 'programdata')
  const programData = key === undefined || env[key] === '' ? undefined : env[key]
  return win32.join(programData ?? 'C:\\ProgramData', 'docker', 'plugins')
}

/**
 * Where the spec file goes: the `--plugin-spec-dir` given ('' for none); else, on a pipe,
 * Windows' plugin directory; else none (a socket in /run/docker/plugins needs no file).
 */
export const pluginSpecDirFor = (
  listenPath: string,
  flag: string | undefined,
  env: Readonly<Record<string, string | undefined>>
): string | undefined => {
  if (flag !== undefined) return flag === '' ? undefined : flag
  return isNamedPipe(listenPath) ? windowsPluginSpecDir(env) : undefined
}

/** A spec file written by `writePluginSpec`. */
export interface PluginSpecFile {
  readonly path: string
  readonly address: string
  /** Remove it, unless another daemon's address has replaced ours since. */
  readonly remove: () => Promise<void>
}

/** Write `<dir>/<name>.spec` for `listenPath` (the directory made if missing). */
export const writePluginSpec = async (dir: string, listenPath: string): Promise<PluginSpecFile> => {
  const name = pluginNameOf(listenPath)
  const address = pluginSpecAddress(listenPath)
  const path = join(dir, `${name}.spec`)
  await mkdir(dir, { recursive: true })
  // aside, then renamed in: dockerd may read it at any moment (a `network create` racing the start)
  const aside = `${path}.${process.pid}.tmp`
  await writeFile(aside, `${address}\n`, { mode: 0o644 })
  await rename(aside, path)
  const remove = async (): Promise<void> => {
    const now = await readFile(path, 'utf8').catch(() => undefined)
    if (now?.trim() === address) await rm(path, { force: true })
  }
  return { path, address, remove }
}
