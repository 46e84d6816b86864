#!/usr/bin/env node
// Build the kept spawner (spawner/*.go, Go standard library only) into dist/spawner/isthmus-spawner:
// static (CGO_ENABLED=0), stripped, no paths of this machine in it, offline (GOPROXY=off: it has no
// dependencies), with Go's build cache under node_modules/.cache (or $GOCACHE).
//
// Incremental: nothing is built when the binary is newer than every source and this script.
// `--force` rebuilds. Without a `go` on PATH it builds nothing and says so: the dataplane then runs
// its commands as processes of its own (spawner.ts falls back). Prints one JSON line:
// { spawner, bytes, ms, rebuilt } (or { spawner: null, reason }).
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const started = Date.now()
const script = fileURLToPath(import.meta.url)
const pkg = resolve(dirname(script), '..')
const src = join(pkg, 'spawner')
const out = join(pkg, 'dist/spawner/isthmus-spawner')
const force = process.argv.includes('--force')

const sources = readdirSync(src)
  .filter((n) => n.endsWith('.go') || n === 'go.mod')
  .map((n) => join(src, n))
const inputs = Math.max(...[...sources, script].map((f) => statSync(f).mtimeMs))
if (!force && existsSync(out) && statSync(out).mtimeMs > inputs) {
  console.log(JSON.stringify({ spawner: out, bytes: statSync(out).size, ms: Date.now() - started, rebuilt: false }))
  process.exit(0)
}

const go = (() => {
  try {
    execFileSync('go', ['version'], { stdio: 'ignore' })
    return 'go'
  } catch {
    return undefined
  }
})()
if (go === undefined) {
  console.log(JSON.stringify({ spawner: null, reason: 'no go on PATH: the dataplane will start its commands itself' }))
  process.exit(0)
}

const cache = process.env.GOCACHE ?? join(pkg, 'node_modules/.cache/go-build')
mkdirSync(cache, { recursive: true })
mkdirSync(dirname(out), { recursive: true })
const tmp = `${out}.tmp`
rmSync(tmp, { force: true })
execFileSync(go, ['build', '-trimpath', '-buildvcs=false', '-ldflags', '-s -w', '-o', tmp, '.'], {
  cwd: src,
  stdio: ['ignore', 'inherit', 'inherit'],
  env: {
    ...process.env,
    CGO_ENABLED: '0',
    GOCACHE: cache,
    // A HOME-less build environment still needs a GOPATH; nothing is downloaded into it.
    GOPATH: process.env.GOPATH ?? join(pkg, 'node_modules/.cache/go'),
    GOPROXY: 'off',
    GOFLAGS: '-mod=mod',
    GOWORK: 'off',
    GOTOOLCHAIN: 'local'
  }
})
renameSync(tmp, out)
console.log(JSON.stringify({ spawner: out, bytes: statSync(out).size, ms: Date.now() - started, rebuilt: true }))
