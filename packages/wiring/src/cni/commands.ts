/**
 * Finding executables by absolute path: a runtime may run the plugin with a minimal PATH
 * (containerd's and podman's do not always include /usr/sbin, where iptables lives), and a
 * delegated plugin is a file in CNI_PATH.
 */
import { accessSync, constants, statSync } from 'node:fs'
import { join } from 'node:path'

const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']

const isExecutableFile = (p: string): boolean => {
  try {
    if (!statSync(p).isFile()) return false
    accessSync(p, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The first executable `name` in `dirs`. @category utils */
export const findExecutable = (name: string, dirs: ReadonlyArray<string>): string | undefined => {
  // A plugin type is a file name, never a path (libcni refuses separators too).
  if (name === '' || name.includes('/') || name === '.' || name === '..') return undefined
  for (const d of dirs) {
    const p = join(d, name)
    if (isExecutableFile(p)) return p
  }
  return undefined
}

// Commands found, by name and PATH: the daemon builds a runtime per call, and a search is a stat
// per directory (each a blocking syscall). Bounded: PATH is the daemon's own, never a caller's.
const found = new Map<string, string>()
const MAX_FOUND = 256

/**
 * A system command by absolute path: PATH first, then the usual system directories; remembered
 * once found.
 *
 * @category utils
 */
export const systemCommand = (name: string, pathVar: string | undefined): string => {
  const key = `${name}\0${pathVar ?? ''}`
  const known = found.get(key)
  if (known !== undefined) return known
  const path = findExecutable(name, [...(pathVar ?? '').split(':').filter((d) => d.startsWith('/')), ...SYSTEM_DIRS])
  if (path === undefined) return name
  if (found.size < MAX_FOUND) found.set(key, path)
  return path
}
