/**
 * Test support for the native client: building it, the program headers of an ELF file, and a
 * process run with stdin as raw bytes. The host helpers (Scope, namespaces, execPlugin) are
 * cni-plugin's test support.
 */
import { strict as assert } from 'node:assert'
import { execFileSync, spawn } from 'node:child_process'
import { closeSync, openSync, readSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { RawEnv } from '@isthmus/cni-exec/protocol'

export const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..')
/** Where `pnpm build` puts the client (other packages' tests run it from here). */
export const CLIENT = join(root, 'packages/cni-native/dist/isthmus')
/** The Node plugin, which `isthmus cni install --fallback` installs as the client's fallback. */
export const SEA = join(root, 'packages/cni-plugin/dist/sea/isthmus')

/** Build the client (incremental: a no-op after `pnpm build`); `args` as build.mjs takes them. */
export const buildClient = (args: ReadonlyArray<string> = []): void => {
  execFileSync(process.execPath, [join(root, 'packages/cni-native/scripts/build.mjs'), ...args], { stdio: 'pipe' })
}

/** Build the Node plugin (incremental too). */
export const buildSea = (): void => {
  execFileSync(process.execPath, [join(root, 'packages/cni-plugin/scripts/build.mjs')], { stdio: 'pipe' })
}

/** ELF program header types: PT_DYNAMIC and PT_INTERP make a file need the dynamic loader. */
export const PT_DYNAMIC = 2
export const PT_INTERP = 3

/** The program header types of a 64-bit little-endian ELF file. */
export const programHeaderTypes = (file: string): number[] => {
  const fd = openSync(file, 'r')
  try {
    const head = Buffer.alloc(64)
    readSync(fd, head, 0, 64, 0)
    assert.deepEqual([...head.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], `${file} is an ELF file`)
    assert.deepEqual([head[4], head[5]], [2, 1], `${file} is 64-bit little-endian`)
    const phoff = Number(head.readBigUInt64LE(0x20))
    const size = head.readUInt16LE(0x36)
    const count = head.readUInt16LE(0x38)
    const table = Buffer.alloc(size * count)
    readSync(fd, table, 0, table.length, phoff)
    return Array.from({ length: count }, (_, i) => table.readUInt32LE(i * size))
  } finally {
    closeSync(fd)
  }
}

export interface Run {
  /** -1 when a signal ended it. */
  readonly exitCode: number
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  /** stdout parsed, when it is JSON. */
  readonly doc: Record<string, unknown> | undefined
}

/**
 * Run `file` with exactly `env` and `stdin` (bytes as given; undefined: stdin stays open and
 * unwritten, as a terminal's would), until it exits or `timeoutMs` passes (then SIGKILL).
 */
export const run = (file: string, env: RawEnv, stdin: string | Buffer | undefined, timeoutMs = 60_000): Promise<Run> =>
  new Promise((done) => {
    const clean: Record<string, string> = {}
    for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v
    const child = spawn(file, [], { env: clean, stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    child.stdin.on('error', () => undefined)
    if (stdin !== undefined) child.stdin.end(stdin)
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer)
      child.stdin.destroy()
      const stdout = Buffer.concat(out).toString('utf8')
      let doc: Record<string, unknown> | undefined
      try {
        doc = JSON.parse(stdout) as Record<string, unknown>
      } catch {
        doc = undefined
      }
      done({ exitCode: exitCode ?? -1, signal, stdout, stderr: Buffer.concat(err).toString('utf8'), doc })
    })
  })
