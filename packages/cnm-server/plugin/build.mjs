#!/usr/bin/env node
// Assemble the managed (v2) Docker plugin directory from this host's files, without `docker build`:
//
//   <outdir>/config.json   plugin/config.json
//   <outdir>/rootfs/       the daemon as one esbuild bundle (/opt/isthmus/bin/plugin.mjs), the host's
//                          `node`, the commands the dataplane runs (ip, nsenter, iptables-save/-restore,
//                          ip6tables-save/-restore, and mount for entry.ts), every shared library they
//                          load (ldd), the xtables extensions, and the /etc files they read.
//
// Usage: node packages/cnm-server/plugin/build.mjs [outdir]   (default packages/cnm-server/plugin/out)
// then:  docker plugin create isthmus:latest <outdir> && docker plugin enable isthmus:latest
// Prints one JSON line: { outdir, bytes, files, ms }.
import { execFileSync } from 'node:child_process'
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync
} from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const started = Date.now()
const here = dirname(fileURLToPath(import.meta.url))
const pkg = resolve(here, '..')
const root = resolve(pkg, '../..')
const outdir = resolve(process.argv[2] ?? join(here, 'out'))
const rootfs = join(outdir, 'rootfs')

// Refuse to wipe something that is not a plugin directory of ours.
if (existsSync(outdir)) {
  const entries = readdirSync(outdir)
  if (entries.some((e) => e !== 'config.json' && e !== 'rootfs'))
    throw new Error(`${outdir} exists and is not a plugin directory`)
  rmSync(outdir, { recursive: true, force: true })
}
mkdirSync(rootfs, { recursive: true })

// ---------------------------------------------------------------------------------------------
// host files
// ---------------------------------------------------------------------------------------------

/** A command on PATH (the plugin gets dockerd's default PATH, which has both bin and sbin dirs). */
const which = (cmd) => {
  for (const dir of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    const p = join(dir, cmd)
    if (existsSync(p)) return p
  }
  throw new Error(`${cmd} not found; install it (iproute2, util-linux, iptables)`)
}

// Top-level links of a merged-/usr host (/lib -> usr/lib, ...) are recreated first, so that a
// file copied to its real path is also found under the path a program or ld.so asks for.
for (const top of ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']) {
  const p = `/${top}`
  if (existsSync(p) && lstatSync(p).isSymbolicLink()) symlinkSync(readlinkSync(p), join(rootfs, top))
}

const copied = new Set()
/** Copy host file `p` into the rootfs at its real path, and make `p` itself resolve to it. */
const copyHostFile = (p) => {
  const real = realpathSync(p)
  const mode = statSync(real).mode & 0o7777
  if (!copied.has(real)) {
    copied.add(real)
    const dst = join(rootfs, real)
    mkdirSync(dirname(dst), { recursive: true })
    copyFileSync(real, dst)
    chmodSync(dst, mode)
  }
  // `p` in the rootfs: the same path through the recreated top-level links, or a link to `real`.
  const viaDir = join(realpathSync(dirname(p)), basename(p))
  if (viaDir !== real && !copied.has(viaDir)) {
    copied.add(viaDir)
    const dst = join(rootfs, viaDir)
    mkdirSync(dirname(dst), { recursive: true })
    if (!existsSync(dst)) symlinkSync(real, dst)
  }
  return real
}

/** The shared libraries `file` loads, as ldd reports them (absolute paths, interpreter included). */
const libsOf = (file) =>
  execFileSync('ldd', [file], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /=>\s+(\/\S+)/.exec(l)?.[1] ?? /^\s*(\/\S+)\s+\(/.exec(l)?.[1])
    .filter((x) => x !== undefined)

const copyWithLibs = (file) => {
  const real = copyHostFile(file)
  for (const lib of libsOf(real)) copyHostFile(lib)
  return real
}

// node: the binary running this script, placed where config.json's Entrypoint expects it.
{
  const node = realpathSync(process.execPath)
  mkdirSync(join(rootfs, 'usr/bin'), { recursive: true })
  copyFileSync(node, join(rootfs, 'usr/bin/node'))
  chmodSync(join(rootfs, 'usr/bin/node'), 0o755)
  for (const lib of libsOf(node)) copyHostFile(lib)
}

// iproute2, util-linux (nsenter; mount for entry.ts).
for (const cmd of ['ip', 'nsenter', 'mount']) copyWithLibs(which(cmd))

// iptables: on Debian every name is a link (through /etc/alternatives) to one multi-call binary
// that picks its mode from argv[0]. Copy the binary the host's choice points at, then make each
// name a direct link to it; the binary loads its matches/targets from the xtables directory.
for (const cmd of ['iptables-save', 'iptables-restore', 'ip6tables-save', 'ip6tables-restore', 'iptables', 'ip6tables'])
  copyWithLibs(which(cmd))
for (const dir of [
  '/usr/lib/x86_64-linux-gnu/xtables',
  '/usr/lib/aarch64-linux-gnu/xtables',
  '/usr/lib/xtables',
  '/usr/lib64/xtables'
]) {
  if (!existsSync(dir)) continue
  for (const f of readdirSync(dir)) if (f.endsWith('.so')) copyWithLibs(join(dir, f))
}

// /etc: protocol and service names (iptables `-p tcp`), iproute2's tables. /etc/hosts and
// /etc/resolv.conf are bind-mounted by dockerd (Network.Type is set); their mount points exist.
for (const f of ['/etc/protocols', '/etc/services', '/etc/nsswitch.conf', '/etc/ethertypes'])
  if (existsSync(f)) copyHostFile(f)
const copyTree = (dir) => {
  if (!existsSync(dir)) return
  for (const f of readdirSync(dir)) {
    const p = join(dir, f)
    if (statSync(p).isDirectory()) copyTree(p)
    else copyHostFile(p)
  }
}
copyTree('/etc/iproute2')
copyTree('/usr/share/iproute2')
writeFileSync(join(rootfs, 'etc/hosts'), '')
writeFileSync(join(rootfs, 'etc/resolv.conf'), '')
writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/usr/sbin/nologin\n')
writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\n')
for (const d of ['tmp', 'root', 'var/lib/isthmus', 'run/docker/plugins', 'proc', 'sys', 'dev'])
  mkdirSync(join(rootfs, d), { recursive: true })
chmodSync(join(rootfs, 'tmp'), 0o1777)

// ---------------------------------------------------------------------------------------------
// the daemon
// ---------------------------------------------------------------------------------------------

// One ESM file. CommonJS dependencies (express, winston, yargs' helpers) call require() for Node's
// built-ins, which an ESM bundle has only through createRequire. The CLI reads its version from
// ../package.json next to the bundle's directory, so one is written there.
const cliPkg = JSON.parse(readFileSync(join(root, 'packages/cli/package.json'), 'utf8'))
const bundle = join(rootfs, 'opt/isthmus/bin/plugin.mjs')
await build({
  entryPoints: [join(here, 'entry.ts')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  conditions: ['@isthmus/source'],
  banner: {
    js: "import { createRequire as __isthmusCreateRequire } from 'node:module'; const require = __isthmusCreateRequire(import.meta.url);"
  },
  legalComments: 'none',
  logLevel: 'warning'
})
writeFileSync(
  join(rootfs, 'opt/isthmus/package.json'),
  `${JSON.stringify({ name: cliPkg.name, version: cliPkg.version, type: 'module', private: true }, null, 2)}\n`
)

// The dataplane's kept spawner (a static Go program: dataplane-linux/spawner), where the bundle's
// dataplane looks for it (`../dist/spawner/isthmus-spawner` from /opt/isthmus/bin). Without it
// (no Go on the build host) the daemon starts its commands from Node, as before.
execFileSync(process.execPath, [join(root, 'packages/dataplane-linux/scripts/build-spawner.mjs')], { stdio: 'ignore' })
const spawner = join(root, 'packages/dataplane-linux/dist/spawner/isthmus-spawner')
if (existsSync(spawner)) {
  const dst = join(rootfs, 'opt/isthmus/dist/spawner/isthmus-spawner')
  mkdirSync(dirname(dst), { recursive: true })
  copyFileSync(spawner, dst)
  chmodSync(dst, 0o755)
}

// dockerd stores a plugin's rootfs as a content-addressed layer and refuses to create a second
// plugin whose layer already exists ("content sha256:…: already exists"): a build stamp makes
// every build's layer its own, so two builds can be installed side by side.
writeFileSync(
  join(rootfs, 'opt/isthmus/build.json'),
  `${JSON.stringify({ version: cliPkg.version, builtAt: new Date().toISOString(), node: process.version, nonce: randomBytes(8).toString('hex') })}\n`
)

copyFileSync(join(here, 'config.json'), join(outdir, 'config.json'))

// ---------------------------------------------------------------------------------------------
// report
// ---------------------------------------------------------------------------------------------

let bytes = 0
let files = 0
const count = (dir) => {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f)
    const s = lstatSync(p)
    if (s.isDirectory()) count(p)
    else {
      files++
      if (s.isFile()) bytes += s.size
    }
  }
}
count(rootfs)
console.log(JSON.stringify({ outdir, bytes, files, ms: Date.now() - started }))
