/**
 * The npm packages as an integrator gets them: every published package packed with `pnpm pack`
 * (its prepack builds dist/), each tarball checked (contents, manifest, publint, attw), then all
 * installed with npm into a project under the system's temp dir, outside the workspace, with no
 * registry copy of any @isthmus package possible (npm `overrides` pin each to its tarball). There,
 * a program that imports every entry point is type-checked with the workspace's tsc under node16
 * resolution and without skipLibCheck, and examples/library's program is compiled and run, on this
 * machine's Node and on Node 24, resolving every package from that project's node_modules.
 */
import { strict as assert } from 'node:assert'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
  writeFileSync
} from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative, sep } from 'node:path'
import { pathToFileURL } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { uniquePrefix } from '@isthmus/testkit'
import { explain, root, run, supportedNode, workspacePackages, type Manifest } from './support.js'

/** The libraries meant for npm (folder names). The executables and test helpers stay private. */
const PUBLISHED = [
  'cni-exec',
  'cnm-server',
  'contrail',
  'core',
  'dataplane-hns',
  'dataplane-linux',
  'dataplane-vnic',
  'docker-engine',
  'handoff',
  'log',
  'store-etcd',
  'store-fs',
  'wiring'
]
/** The supported Node lines (README, "Node"): 22 from 22.12 (require() of ES modules), 24, 26 on. */
const ENGINES = '^22.12.0 || ^24.0.0 || >=26.0.0'
const ENTRY_POINTS = [
  '@isthmus/cni-exec',
  '@isthmus/cni-exec/protocol',
  '@isthmus/cnm-server',
  '@isthmus/cnm-server/protocol',
  '@isthmus/contrail',
  '@isthmus/contrail/testing',
  '@isthmus/core',
  '@isthmus/core/testing',
  '@isthmus/core/testing/store-contract',
  '@isthmus/dataplane-hns',
  '@isthmus/dataplane-hns/testing',
  '@isthmus/dataplane-linux',
  '@isthmus/dataplane-vnic',
  '@isthmus/docker-engine',
  '@isthmus/handoff',
  '@isthmus/log',
  '@isthmus/store-etcd',
  '@isthmus/store-fs',
  '@isthmus/wiring'
]
/** No file in a library tarball comes near this: a bundle, a SEA or a native binary would. */
const MAX_FILE_BYTES = 1024 * 1024

interface PackedManifest extends Manifest {
  readonly license?: string
  readonly engines?: { readonly node?: string }
  readonly publishConfig?: { readonly access?: string }
  readonly repository?: { readonly directory?: string; readonly url?: string }
  readonly homepage?: string
  readonly bugs?: { readonly url?: string }
  readonly peerDependencies?: Readonly<Record<string, string>>
  readonly optionalDependencies?: Readonly<Record<string, string>>
}

const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]
  )

// npm must see neither pnpm's settings (a `pnpm test` run exports npm_config_*) nor the workspace.
const cleanEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|pnpm_)/i.test(k)))

describe('the npm packages, installed from their tarballs outside the workspace', () => {
  let tmp = ''
  const tarballs = new Map<string, string>() // folder name → tarball path
  const unpacked = new Map<string, string>() // folder name → unpacked package/ dir
  let app = ''

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), `${uniquePrefix('isthmus-pack')}-`))
    mkdirSync(join(tmp, 'tarballs'))
    // One at a time: each prepack runs `tsc -b`, and several would write the same dist/ at once.
    for (const dir of PUBLISHED) {
      const packed = await run('pnpm', ['pack', '--pack-destination', join(tmp, 'tarballs')], {
        cwd: join(root, 'packages', dir)
      })
      if (packed.code !== 0) throw new Error(explain(`pnpm pack in packages/${dir}`, packed))
      const manifest = JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8')) as Manifest
      const tarball = join(
        tmp,
        'tarballs',
        `${manifest.name.replace('@', '').replace('/', '-')}-${manifest.version}.tgz`
      )
      assert.ok(existsSync(tarball), `pnpm pack in packages/${dir} made no ${tarball}`)
      tarballs.set(dir, tarball)
      const into = join(tmp, 'unpacked', dir)
      mkdirSync(into, { recursive: true })
      const untar = await run('tar', ['-xzf', tarball, '-C', into])
      if (untar.code !== 0) throw new Error(explain(`tar -xzf ${tarball}`, untar))
      unpacked.set(dir, join(into, 'package'))
    }
  })

  after(async () => {
    if (tmp !== '') await rm(tmp, { recursive: true, force: true })
  })

  it('publishes exactly the libraries; the executables, test helpers and examples are private', () => {
    const published = workspacePackages()
      .filter((p) => p.manifest.private !== true)
      .map((p) => p.dir)
    assert.deepEqual(published, PUBLISHED)
    for (const dir of readdirSync(join(root, 'examples'))) {
      const manifest = JSON.parse(readFileSync(join(root, 'examples', dir, 'package.json'), 'utf8')) as Manifest
      assert.equal(manifest.private, true, `examples/${dir} is private`)
    }
  })

  it('packs dist/, src/, README and LICENSE: built, no tests, no executables, no build state', () => {
    const license = readFileSync(join(root, 'LICENSE'), 'utf8')
    for (const [dir, pkg] of unpacked) {
      const files = filesUnder(pkg).map((f) => relative(pkg, f).split(sep).join('/'))
      for (const needed of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts']) {
        assert.ok(files.includes(needed), `${dir}'s tarball has ${needed}`)
      }
      assert.equal(readFileSync(join(pkg, 'LICENSE'), 'utf8'), license, `${dir}'s LICENSE is the repository's`)
      for (const f of files) {
        assert.match(f, /^(package\.json|README\.md|LICENSE|dist\/.+|src\/.+)$/, `${dir}: ${f} is not meant to ship`)
        assert.doesNotMatch(f, /(^|\/)(test|tests|bench|fixtures)\/|\.test\.|\.tsbuildinfo$/, `${dir}: ${f}`)
        assert.doesNotMatch(f, /^dist\/(sea|bundle|spawner)\//, `${dir}: ${f} is an executable's build`)
        const bytes = statSync(join(pkg, f)).size
        assert.ok(bytes <= MAX_FILE_BYTES, `${dir}: ${f} has ${bytes} bytes`)
      }
    }
  })

  it('has real version ranges, the supported Node lines, public access and where the source is', () => {
    for (const [dir, pkg] of unpacked) {
      const m = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as PackedManifest
      for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies'] as const) {
        for (const [name, range] of Object.entries(m[field] ?? {})) {
          assert.doesNotMatch(range, /^(workspace|link|file):/, `${dir}: ${field}.${name} is ${range}`)
        }
      }
      assert.equal(m.license, 'Apache-2.0', dir)
      assert.equal(m.engines?.node, ENGINES, dir)
      assert.equal(m.publishConfig?.access, 'public', dir)
      assert.equal(m.repository?.directory, `packages/${dir}`, dir)
      assert.match(m.repository?.url ?? '', /^git\+https:\/\//, dir)
      assert.match(m.homepage ?? '', /^https:\/\//, dir)
      assert.match(m.bugs?.url ?? '', /^https:\/\//, dir)
    }
  })

  it('passes publint --strict', async () => {
    const bin = join(root, 'node_modules/.bin/publint')
    for (const [dir, tarball] of tarballs) {
      const ran = await run(bin, ['run', '--strict', tarball])
      assert.equal(ran.code, 0, explain(`publint (${dir})`, ran))
      assert.match(ran.stdout, /All good!/, explain(`publint (${dir})`, ran))
    }
  })

  it('passes @arethetypeswrong/cli with the esm-only profile (README, "Node")', async () => {
    const bin = join(root, 'node_modules/.bin/attw')
    for (const [dir, tarball] of tarballs) {
      const ran = await run(bin, ['--profile', 'esm-only', '--format', 'ascii', '--no-color', tarball])
      assert.equal(ran.code, 0, explain(`attw (${dir})`, ran))
      // Only what the profile ignores (node10, and require() from CommonJS) may show a problem.
      const problems = ran.stdout.split('\n').filter((l) => /💀|❌|⚠️|🐛|🥴|❗/u.test(l) && !l.includes('(ignored'))
      assert.deepEqual(problems, [], ran.stdout)
    }
  })

  it('installs with npm from the tarballs alone, into a project of its own', async () => {
    app = join(tmp, 'app')
    mkdirSync(join(app, 'src'), { recursive: true })
    const names = PUBLISHED.map((dir) => {
      const m = JSON.parse(readFileSync(join(unpacked.get(dir)!, 'package.json'), 'utf8')) as Manifest
      return [m.name, `file:${tarballs.get(dir)!}`] as const
    })
    const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Manifest
    const core = JSON.parse(readFileSync(join(root, 'packages/core/package.json'), 'utf8')) as Manifest
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify(
        {
          name: 'isthmus-npm-user',
          version: '1.0.0',
          private: true,
          type: 'module',
          dependencies: {
            ...Object.fromEntries(names),
            'fp-ts': core.dependencies!['fp-ts'],
            // The optional peer of @isthmus/core/testing/store-contract, as an integrator testing a store adds it.
            'fast-check': core.devDependencies!['fast-check'],
            '@types/node': rootManifest.devDependencies!['@types/node']
          },
          // A dependency between two @isthmus packages (`^0.1.0`) is this tarball too, never a
          // registry package of the same name.
          overrides: Object.fromEntries(names.map(([name]) => [name, `$${name}`]))
        },
        null,
        2
      )
    )
    const ran = await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: app,
      env: cleanEnv(),
      timeoutMs: 600_000
    })
    assert.equal(ran.code, 0, explain('npm install', ran))
    const lock = JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { resolved?: string; version?: string }>
    }
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (!/(^|\/)node_modules\/@isthmus\//.test(path)) continue
      assert.match(path, /^node_modules\/@isthmus\/[^/]+$/, `one copy of each @isthmus package, not ${path}`)
      assert.match(entry.resolved ?? '', /^file:/, `${path} comes from its tarball, not ${entry.resolved}`)
    }
    for (const [name] of names) {
      const installed = realpathSync(join(app, 'node_modules', name))
      assert.ok(installed.startsWith(app + sep), `${name} is installed in the project (${installed})`)
    }
  })

  it('type-checks a program that imports every entry point (node16 resolution, no skipLibCheck)', async () => {
    assert.notEqual(app, '', 'installed first')
    // examples/library's sources, unchanged, and a program that imports every public entry point.
    for (const file of ['attach.ts', 'main.ts']) {
      copyFileSync(join(root, 'examples/library/src', file), join(app, 'src', file))
    }
    writeFileSync(
      join(app, 'src/entries.ts'),
      [
        "import type { Express } from 'express'",
        "import { createPluginApp } from '@isthmus/cnm-server'",
        ...ENTRY_POINTS.map((e, i) => `import * as m${i} from '${e}'`),
        '',
        "// cnm-server's public app type is express's own, so its types come with the package.",
        'export const appOf = (deps: Parameters<typeof createPluginApp>[0]): Express => createPluginApp(deps)',
        `export const modules: ReadonlyArray<object> = [${ENTRY_POINTS.map((_, i) => `m${i}`).join(', ')}]`,
        'console.log(`${modules.length} entry points loaded`)',
        ''
      ].join('\n')
    )
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2022'],
          module: 'node16',
          moduleResolution: 'node16',
          strict: true,
          verbatimModuleSyntax: true,
          skipLibCheck: false,
          types: ['node'],
          rootDir: 'src',
          outDir: 'dist'
        },
        include: ['src']
      })
    )
    const tsc = await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', app], { cwd: app })
    assert.equal(tsc.code, 0, explain('tsc -p (the npm user project)', tsc))
  })

  it("runs examples/library's program and loads every entry point from the install, on this Node and on Node 24", async () => {
    assert.ok(existsSync(join(app, 'dist/main.js')), 'compiled first')
    const node24 = await supportedNode(24)
    const modules = pathToFileURL(join(realpathSync(app), 'node_modules')).href + '/'
    for (const node of [process.execPath, node24]) {
      const resolved = await run(
        node,
        [
          '--input-type=module',
          '-e',
          `for (const e of ${JSON.stringify(ENTRY_POINTS)}) console.log(import.meta.resolve(e))`
        ],
        { cwd: app, env: cleanEnv() }
      )
      assert.equal(resolved.code, 0, explain(`${node}: import.meta.resolve`, resolved))
      for (const url of resolved.stdout.trim().split('\n')) {
        assert.ok(url.startsWith(modules), `${url} is under ${modules}`)
      }

      const entries = await run(node, ['dist/entries.js'], { cwd: app, env: cleanEnv() })
      assert.equal(entries.code, 0, explain(`${node} dist/entries.js`, entries))
      assert.equal(entries.stdout.trim(), `${ENTRY_POINTS.length} entry points loaded`)

      const state = join(tmp, `state-${node === node24 ? 'node24' : 'node'}`)
      const example = await run(node, ['dist/main.js', state], { cwd: app, env: cleanEnv() })
      assert.equal(example.code, 0, explain(`${node} dist/main.js`, example))
      const mac = '([0-9a-f]{2}:){5}[0-9a-f]{2}'
      assert.match(example.stdout, new RegExp(`^web\\t10\\.77\\.0\\.\\d+/24\\t${mac}$`, 'm'), example.stdout)
      assert.match(example.stdout, new RegExp(`^db\\t10\\.77\\.0\\.\\d+/24\\t${mac}$`, 'm'), example.stdout)
      assert.match(example.stdout, /^web detached; state in /m, example.stdout)
    }
  })
})
