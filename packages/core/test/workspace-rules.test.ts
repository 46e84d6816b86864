/**
 * The dependency rules of the workspace, checked on the sources: frontends → core ← adapters,
 * core free of I/O, and the fp-ts import form that works under plain Node ESM.
 */
import { strict as assert } from 'node:assert'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, it } from 'node:test'

const root = new URL('../../../', import.meta.url).pathname
const FRONTENDS = new Set(['cnm-server', 'cni-exec', 'cli'])

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

  it('lets adapters depend on core only, and frontends not on each other', () => {
    const bad = allImports.filter((i) => {
      const m = /^@isthmus\/([^/]+)/.exec(i.spec)
      if (m === null) return false
      const target = m[1]!
      if (i.pkg === 'core') return true
      if (FRONTENDS.has(target)) return i.pkg !== 'cli' || target === 'cli'
      return false
    })
    assert.deepEqual(bad, [])
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
