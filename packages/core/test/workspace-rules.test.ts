/**
 * The dependency rules of the workspace, checked on the sources: frontends → core ← adapters,
 * only the composition packages (wiring, cni-plugin, cli) put adapters and frontends together,
 * core free of I/O, and the fp-ts import form that works under plain Node ESM.
 */
import { strict as assert } from 'node:assert'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, it } from 'node:test'

const root = new URL('../../../', import.meta.url).pathname

type Layer = 'core' | 'frontend' | 'adapter' | 'composition' | 'test-support'

/**
 * The layers of docs/architecture.md ("Wiring"), by package directory. Any other package is an
 * adapter (store-fs, store-etcd, dataplane-linux, dataplane-vnic, contrail, log, docker-engine, handoff, and
 * the next one), so a new adapter needs no row here.
 */
const NAMED_LAYERS: Readonly<Record<string, Layer>> = {
  core: 'core',
  'cnm-server': 'frontend',
  'cni-exec': 'frontend',
  wiring: 'composition',
  'cni-plugin': 'composition',
  cli: 'composition',
  testkit: 'test-support'
}
const layerOf = (pkg: string): Layer => NAMED_LAYERS[pkg] ?? 'adapter'

// Which composition package may import which other one (never in a circle).
const COMPOSES: Readonly<Record<string, ReadonlyArray<string>>> = {
  wiring: [],
  'cni-plugin': ['wiring'],
  cli: ['wiring']
}

const isLibrary = (spec: string): boolean => /^fp-ts\/lib\//.test(spec) || spec === 'io-ts'

/**
 * Why `spec`, imported by `file` of package `pkg`, breaks a layer rule; undefined when it is
 * allowed. Relative imports stay inside their package and are always allowed.
 */
const layerViolation = (pkg: string, file: string, spec: string): string | undefined => {
  if (spec.startsWith('.')) return undefined
  const layer = layerOf(pkg)
  const m = /^@isthmus\/([^/]+)(\/.*)?$/.exec(spec)
  const target = m?.[1]
  const targetLayer = target === undefined ? undefined : layerOf(target)
  const internal = m?.[2] !== undefined && /^\/(src|dist|internal)\//.test(m[2])
  if (target !== undefined && target !== pkg && internal) return `${spec} reaches into ${target}'s internals`
  if (layer === 'test-support') return undefined
  if (/\/src\/protocol\//.test(file) && layer === 'frontend' && !(isLibrary(spec) || target === 'core')) {
    return `a protocol codec imports ${spec} (core, fp-ts and io-ts only)`
  }
  switch (layer) {
    case 'core':
      return undefined // checked on its own below (no I/O)
    case 'frontend':
      if (targetLayer === 'adapter' || targetLayer === 'composition') {
        return `a frontend imports the ${targetLayer} ${spec}`
      }
      if (targetLayer === 'frontend' && target !== pkg) return `a frontend imports another frontend, ${spec}`
      return undefined
    case 'adapter':
      if (targetLayer !== undefined && target !== 'core' && target !== pkg && targetLayer !== 'test-support') {
        return `an adapter imports the ${targetLayer} ${spec} (core and libraries only)`
      }
      if (targetLayer === 'test-support') return `an adapter imports test support, ${spec}`
      return undefined
    case 'composition':
      if (targetLayer === 'composition' && target !== pkg && !(COMPOSES[pkg] ?? []).includes(target!)) {
        return `${pkg} imports the composition package ${spec}`
      }
      return undefined
  }
}

const sourcesOf = (dir: string): string[] => {
  const out: string[] = []
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name)
      if (statSync(p).isDirectory()) walk(p)
      else if (name.endsWith('.ts')) out.push(p)
    }
  }
  walk(dir)
  return out
}

const importsOf = (file: string): string[] =>
  [...readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map((m) => m[1]!)

const packages = readdirSync(join(root, 'packages')).filter((p) => {
  try {
    return statSync(join(root, 'packages', p, 'src')).isDirectory()
  } catch {
    return false
  }
})

const allImports = packages.flatMap((pkg) =>
  sourcesOf(join(root, 'packages', pkg, 'src')).flatMap((file) =>
    importsOf(file).map((spec) => ({ pkg, file: relative(root, file), spec }))
  )
)

describe('workspace rules', () => {
  it('finds the sources it checks', () => {
    assert.ok(packages.includes('core'))
    assert.ok(allImports.length > 20)
  })

  it('imports fp-ts through lib/*.js, which plain Node ESM can load', () => {
    const bad = allImports.filter((i) => /^fp-ts\//.test(i.spec) && !/^fp-ts\/lib\/[A-Za-z]+\.js$/.test(i.spec))
    assert.deepEqual(bad, [])
  })

  it('keeps core free of I/O: only fp-ts, io-ts, ipaddr.js and its own modules', () => {
    const allowed = (i: { file: string; spec: string }) =>
      i.spec.startsWith('.') ||
      /^fp-ts\/lib\//.test(i.spec) ||
      i.spec === 'io-ts' ||
      i.spec === 'ipaddr.js' ||
      // the testing subpath ships a contract suite built on node:test
      (i.file.includes('/src/testing/') && ['node:test', 'node:assert', 'fast-check'].includes(i.spec))
    assert.deepEqual(
      allImports.filter((i) => i.pkg === 'core' && !allowed(i)),
      []
    )
  })

  it('keeps the layer rules: frontends and adapters apart, composition only in wiring, cni-plugin and cli', () => {
    const bad = allImports.flatMap((i) => {
      const why = layerViolation(i.pkg, i.file, i.spec)
      return why === undefined ? [] : [`${i.file}: ${why}`]
    })
    assert.deepEqual(bad, [])
  })

  it('reports a planted frontend → adapter import, and the other kinds of breach', () => {
    assert.match(
      layerViolation('cni-exec', 'packages/cni-exec/src/commands/add.ts', '@isthmus/store-fs') ?? '',
      /a frontend imports the adapter @isthmus\/store-fs/
    )
    assert.match(
      layerViolation('cnm-server', 'packages/cnm-server/src/server.ts', '@isthmus/wiring') ?? '',
      /composition/
    )
    assert.match(
      layerViolation('cnm-server', 'packages/cnm-server/src/x.ts', '@isthmus/cni-exec') ?? '',
      /another frontend/
    )
    assert.match(layerViolation('cni-exec', 'packages/cni-exec/src/protocol/Env.ts', 'node:fs') ?? '', /protocol codec/)
    assert.match(
      layerViolation('log', 'packages/log/src/index.ts', '@isthmus/cnm-server') ?? '',
      /an adapter imports the frontend/
    )
    assert.match(layerViolation('handoff', 'packages/handoff/src/server.ts', '@isthmus/wiring') ?? '', /composition/)
    assert.match(layerViolation('wiring', 'packages/wiring/src/x.ts', '@isthmus/cli') ?? '', /composition package/)
    assert.match(layerViolation('cli', 'packages/cli/src/x.ts', '@isthmus/wiring/src/stores.js') ?? '', /internals/)
    // and what is allowed stays allowed
    assert.equal(layerViolation('cni-exec', 'packages/cni-exec/src/commands/add.ts', '@isthmus/core'), undefined)
    assert.equal(layerViolation('wiring', 'packages/wiring/src/x.ts', '@isthmus/store-fs'), undefined)
    assert.equal(layerViolation('cli', 'packages/cli/src/x.ts', '@isthmus/cnm-server/protocol'), undefined)
    // a package no row names is an adapter
    assert.match(layerViolation('store-etcd', 'packages/store-etcd/src/x.ts', '@isthmus/cni-exec') ?? '', /adapter/)
  })

  it('checks a planted import in a copy of a real frontend file', () => {
    const file = 'packages/cni-exec/src/commands/add.ts'
    const planted = `import { fileStore } from '@isthmus/store-fs'\n${readFileSync(join(root, file), 'utf8')}`
    const found = [...planted.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)]
      .map((m) => layerViolation('cni-exec', file, m[1]!))
      .filter((w) => w !== undefined)
    assert.deepEqual(found, ['a frontend imports the adapter @isthmus/store-fs'])
  })

  it('declares every workspace package it imports', () => {
    for (const pkg of packages) {
      const manifest = JSON.parse(readFileSync(join(root, 'packages', pkg, 'package.json'), 'utf8')) as {
        name: string
        dependencies?: Record<string, string>
      }
      const used = new Set(
        allImports
          .filter((i) => i.pkg === pkg)
          .map((i) => /^(@isthmus\/[^/]+)/.exec(i.spec)?.[1])
          .filter((n): n is string => n !== undefined && n !== manifest.name)
      )
      for (const dep of used) assert.ok(manifest.dependencies?.[dep], `${pkg} imports ${dep} without declaring it`)
    }
  })
})
