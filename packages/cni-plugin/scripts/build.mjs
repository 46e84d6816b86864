#!/usr/bin/env node
// Build the installable CNI plugin: one executable file that needs no node_modules and no `node`
// on PATH (runtimes run plugins with their own, often minimal, PATH, so `#!/usr/bin/env node` fails).
//
//   dist/bundle/cni-exec.cjs   esbuild bundle of src/bin/cni-exec.ts (CommonJS: a SEA's main must be):
//                              the hand-off client, small so a call a daemon takes starts fast
//   dist/bundle/local.cjs      esbuild bundle of src/bin/local.ts: the whole plugin, run in the process
//                              when no daemon takes the call; a SEA asset, with its V8 code cache
//   dist/sea/isthmus           Node SEA: a copy of this `node` with both injected (postject)
//
// Incremental: nothing is rebuilt when both outputs are newer than every source file the bundle
// reads (this package's and those of the workspace packages it bundles) and than the node binary.
// `--force` rebuilds. Prints one JSON line: { bundle, sea, bytes, ms, rebuilt }.
import { execFileSync } from 'node:child_process'
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync
} from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const started = Date.now()
const here = dirname(fileURLToPath(import.meta.url))
const pkg = resolve(here, '..')
const root = resolve(pkg, '../..')
const bundle = join(pkg, 'dist/bundle/cni-exec.cjs')
const localBundle = join(pkg, 'dist/bundle/local.cjs')
const localCache = join(pkg, 'dist/bundle/local.cache')
const seaDir = join(pkg, 'dist/sea')
const sea = join(seaDir, 'isthmus')
const force = process.argv.includes('--force')

const newest = (dir) => {
  let t = 0
  if (!existsSync(dir)) return t
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    const s = statSync(p)
    t = Math.max(t, s.isDirectory() ? newest(p) : s.mtimeMs)
  }
  return t
}
const inputs = Math.max(
  ...[
    'cni-plugin',
    'cni-exec',
    'wiring',
    'handoff',
    'docker-engine',
    'core',
    'store-fs',
    'store-etcd',
    'dataplane-linux',
    'log',
    'contrail'
  ].map((p) => newest(join(root, 'packages', p, 'src'))),
  statSync(here).mtimeMs,
  statSync(realpathSync(process.execPath)).mtimeMs
)
const fresh = (f) => existsSync(f) && statSync(f).mtimeMs > inputs
if (!force && fresh(bundle) && fresh(sea)) {
  console.log(JSON.stringify({ bundle, sea, bytes: statSync(sea).size, ms: Date.now() - started, rebuilt: false }))
  process.exit(0)
}

// 1. The bundle. Sources through the @isthmus/source condition, so no `tsc -b` is needed first.
const require = createRequire(import.meta.url)
const { build } = await import('esbuild')
mkdirSync(dirname(bundle), { recursive: true })
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  conditions: ['@isthmus/source'],
  // Smaller source parses faster at every start of the plugin; names stay for stack traces.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
  // Only a cluster daemon talks to etcd, only a daemon on HNS to HNS (wiring imports each adapter
  // when first used); the plugin never does.
  external: ['@isthmus/store-etcd', '@isthmus/dataplane-hns']
}
// The client reaches local.ts through the SEA asset, not an import (bin/loadLocal.sea.ts).
const seaLoader = {
  name: 'sea-loader',
  setup(b) {
    b.onResolve({ filter: /[/\\]loadLocal\.js$/ }, () => ({ path: join(pkg, 'src/bin/loadLocal.sea.ts') }))
  }
}
await build({ ...common, entryPoints: [join(pkg, 'src/bin/cni-exec.ts')], outfile: bundle, plugins: [seaLoader] })
await build({ ...common, entryPoints: [join(pkg, 'src/bin/local.ts')], outfile: localBundle })
// V8's code cache for the wrapped local bundle, as loadLocal.sea.ts compiles it (same node binary).
{
  const { Script } = await import('node:vm')
  const { wrap } = (await import('node:module')).default
  const { readFileSync } = await import('node:fs')
  writeFileSync(
    localCache,
    new Script(wrap(readFileSync(localBundle, 'utf8')), { filename: 'local.cjs' }).createCachedData()
  )
}

// 2. The SEA (Node 20: --experimental-sea-config + postject). The code cache saves compiling the
//    bundle at each start (about 94 -> 78 ms measured for a 1 MiB bundle).
mkdirSync(seaDir, { recursive: true })
const config = join(seaDir, 'sea-config.json')
const blob = join(seaDir, 'sea.blob')
writeFileSync(
  config,
  JSON.stringify({
    main: bundle,
    output: blob,
    disableExperimentalSEAWarning: true,
    useCodeCache: true,
    assets: { 'local.cjs': localBundle, 'local.cache': localCache }
  })
)
execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'pipe' })
const tmp = `${sea}.tmp`
rmSync(tmp, { force: true })
copyFileSync(realpathSync(process.execPath), tmp)
chmodSync(tmp, 0o755)
const postject = join(dirname(require.resolve('postject/package.json')), 'dist/cli.js')
execFileSync(
  process.execPath,
  [postject, tmp, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'],
  {
    // postject prints harmless "Can't find string offset for section name" warnings.
    stdio: ['ignore', 'ignore', 'ignore']
  }
)
renameSync(tmp, sea)
rmSync(blob, { force: true })
console.log(
  JSON.stringify({
    bundle,
    sea,
    bytes: statSync(sea).size,
    bundleBytes: statSync(bundle).size,
    localBytes: statSync(localBundle).size,
    ms: Date.now() - started,
    rebuilt: true
  })
)
