#!/usr/bin/env node
// Build the native CNI client, dist/isthmus: a static Go program (standard library only, no
// module to download: the build works offline) that `isthmus cni install` puts in the CNI bin
// directory. The values it shares with the TypeScript packages (protocol version, socket,
// variable names, CNI versions, limits) are read here from their built modules (`tsc -b` first)
// and linked in with `-ldflags -X`, so they are written once.
//
// Incremental: nothing is rebuilt when dist/isthmus is newer than the sources and was linked
// with the same values by the same Go. `--force` rebuilds. For tests: `--out FILE` builds
// elsewhere, `--set name=value` links another value (e.g. `--set defaultSocket=/tmp/x.sock`).
// Prints one JSON line: { client, bytes, ms, rebuilt }.
import { execFileSync } from 'node:child_process'
import { accessSync, chmodSync, constants, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const started = Date.now()
const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const src = join(pkg, 'src')

const argv = process.argv.slice(2)
const force = argv.includes('--force')
const valueOf = (flag) => {
  const i = argv.indexOf(flag)
  return i === -1 ? undefined : argv[i + 1]
}
const out = resolve(valueOf('--out') ?? join(pkg, 'dist/isthmus'))
const overrides = Object.fromEntries(argv.flatMap((a, i) => (a === '--set' ? [argv[i + 1].split(/=(.*)/s, 2)] : [])))

const { CNI_ENV_KEYS, DEFAULT_DAEMON_SOCKET, HANDOFF_ENV_KEYS, HANDOFF_TIMEOUT_MS, HANDOFF_VERSION } =
  await import('@isthmus/handoff')
const { CURRENT_VERSION, MAX_STDIN_BYTES, SUPPORTED_VERSIONS, internalError } =
  await import('@isthmus/cni-exec/protocol')
const { ABOUT } = await import('@isthmus/cni-exec')

const list = (name, values) => {
  for (const v of values) if (v === '' || v.includes(',')) throw new Error(`${name}: ${JSON.stringify(v)} in a list`)
  return values.join(',')
}
const linked = {
  handoffVersion: String(HANDOFF_VERSION),
  defaultSocket: DEFAULT_DAEMON_SOCKET,
  cniEnvKeys: list('CNI_ENV_KEYS', CNI_ENV_KEYS),
  handoffEnvKeys: list('HANDOFF_ENV_KEYS', HANDOFF_ENV_KEYS),
  handoffTimeoutMs: String(HANDOFF_TIMEOUT_MS),
  supportedVersions: list('SUPPORTED_VERSIONS', SUPPORTED_VERSIONS),
  currentVersion: CURRENT_VERSION,
  maxStdinBytes: String(MAX_STDIN_BYTES),
  internalErrorMsg: internalError(new Error('')).error.msg,
  aboutText: ABOUT,
  ...overrides
}
// `go build` splits -ldflags on spaces outside quotes; each value goes in single quotes.
for (const [k, v] of Object.entries(linked)) {
  if (!/^[a-zA-Z]+$/.test(k) || v.includes("'")) throw new Error(`cannot link ${k}=${JSON.stringify(v)}`)
}

const go = ['go', '/usr/lib/go/bin/go', '/usr/local/go/bin/go'].find((g) => {
  try {
    execFileSync(g, ['version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})
if (go === undefined) {
  console.error('isthmus: building the CNI client needs Go (Debian: apt-get install golang-go)')
  process.exit(1)
}

// Go's caches go under $HOME as usual; without a writable HOME, inside dist.
const homeWritable = (() => {
  try {
    accessSync(process.env.HOME ?? '', constants.W_OK)
    return true
  } catch {
    return false
  }
})()
const env = {
  ...process.env,
  CGO_ENABLED: '0',
  GO111MODULE: 'on',
  GOFLAGS: '',
  GOPROXY: 'off',
  GOSUMDB: 'off',
  GOTOOLCHAIN: 'local',
  ...(process.env.GOCACHE === undefined && !homeWritable ? { GOCACHE: join(pkg, 'dist/.gocache') } : {}),
  ...(process.env.GOPATH === undefined && !homeWritable ? { GOPATH: join(pkg, 'dist/.gopath') } : {})
}

const stamp = `${out}.linked.json`
const stampText = `${JSON.stringify({ go: execFileSync(go, ['version'], { encoding: 'utf8', env }).trim(), linked }, null, 2)}\n`
const newest = Math.max(
  statSync(fileURLToPath(import.meta.url)).mtimeMs,
  ...readdirSync(src).map((f) => statSync(join(src, f)).mtimeMs)
)
const fresh =
  existsSync(out) && statSync(out).mtimeMs > newest && existsSync(stamp) && readFileSync(stamp, 'utf8') === stampText
if (!force && fresh) {
  console.log(JSON.stringify({ client: out, bytes: statSync(out).size, ms: Date.now() - started, rebuilt: false }))
  process.exit(0)
}

mkdirSync(dirname(out), { recursive: true })
const tmp = `${out}.tmp-${process.pid}`
const ldflags = ['-s', '-w', ...Object.entries(linked).map(([k, v]) => `-X 'main.${k}=${v}'`)].join(' ')
try {
  execFileSync(go, ['build', '-trimpath', '-buildvcs=false', '-ldflags', ldflags, '-o', tmp, '.'], {
    cwd: src,
    env,
    stdio: ['ignore', 'inherit', 'inherit']
  })
  chmodSync(tmp, 0o755)
  // A rename, so that a client being run is never overwritten in place.
  renameSync(tmp, out)
} finally {
  rmSync(tmp, { force: true })
}
writeFileSync(stamp, stampText)
console.log(JSON.stringify({ client: out, bytes: statSync(out).size, ms: Date.now() - started, rebuilt: true }))
