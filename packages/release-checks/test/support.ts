/** What both release checks need: the workspace's paths, a child process run to its end, a supported Node. */
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = fileURLToPath(new URL('../../..', import.meta.url))

export interface Ran {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

export interface RunOptions {
  readonly cwd?: string
  readonly env?: NodeJS.ProcessEnv
  readonly timeoutMs?: number
}

/** Run `file` to its end; never rejects, so a test can show the output of a failed run. */
export const run = (file: string, args: ReadonlyArray<string>, options: RunOptions = {}): Promise<Ran> =>
  new Promise((resolve) => {
    execFile(
      file,
      [...args],
      {
        cwd: options.cwd ?? root,
        env: options.env ?? process.env,
        timeout: options.timeoutMs ?? 300_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8'
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1
        resolve({ code, stdout, stderr: error !== null && code === 1 && stderr === '' ? error.message : stderr })
      }
    )
  })

/** A failed run as one message: the command and the end of what it printed. */
export const explain = (what: string, ran: Ran): string =>
  `${what} exited ${ran.code}\n--- stdout (end)\n${ran.stdout.slice(-6000)}\n--- stderr (end)\n${ran.stderr.slice(-6000)}`

/** The path of the pinned Node of `major` in the workspace's cache (fetched from npm when missing). */
export const supportedNode = async (major: number): Promise<string> => {
  const ran = await run(process.execPath, [join(root, 'scripts/node-lts.mjs'), String(major)])
  if (ran.code !== 0) throw new Error(explain(`scripts/node-lts.mjs ${major}`, ran))
  return ran.stdout.trim()
}

export interface Manifest {
  readonly name: string
  readonly version: string
  readonly private?: boolean
  readonly dependencies?: Readonly<Record<string, string>>
  readonly devDependencies?: Readonly<Record<string, string>>
}

export interface WorkspacePackage {
  readonly dir: string
  readonly manifest: Manifest
}

/** Every package under packages/ (folder name and manifest). */
export const workspacePackages = (): ReadonlyArray<WorkspacePackage> =>
  readdirSync(join(root, 'packages'))
    .sort()
    .flatMap((dir) => {
      try {
        return [
          { dir, manifest: JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8')) as Manifest }
        ]
      } catch {
        return []
      }
    })
