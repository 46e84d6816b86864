#!/usr/bin/env node
// One node:test run over every test file of the workspace (one closing summary for CI).
// Node 20's --test does not expand globs, so the files are found here. Arguments narrow the run
// to files whose path contains one of them: `pnpm test packages/core`.
// The second Node line is a test file like any other (packages/release-checks/test/node24.test.ts:
// the unit and protocol tests on the pinned Node 24), so its result is in the same closing summary.
import { spawn } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const found = []
const walk = (dir, inTest) => {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue
    const path = join(dir, name)
    if (statSync(path).isDirectory()) walk(path, inTest || name === 'test')
    else if (inTest && name.endsWith('.test.ts')) found.push(relative(root, path))
  }
}
for (const top of ['packages', 'examples']) {
  try {
    walk(join(root, top), false)
  } catch (e) {
    if (e.code !== 'ENOENT') throw e
  }
}
const filters = process.argv.slice(2)
const files = found.filter((f) => filters.length === 0 || filters.some((x) => f.includes(x))).sort()
if (files.length === 0) {
  console.error('no test files matched')
  process.exit(1)
}
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--conditions=@isthmus/source', '--test', '--test-reporter=tap', ...files],
  { cwd: root, stdio: 'inherit' }
)
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
