// ESLint flat config: typescript-eslint's type-aware rules that the tree meets, and the layer rules
// (docs/architecture.md, "Layers") as import restrictions per package group. Formatting is prettier's
// (.prettierrc.json); the one layout rule here is the line length prettier does not enforce (comments).
import js from '@eslint/js'
import stylistic from '@stylistic/eslint-plugin'
import tseslint from 'typescript-eslint'

// Package groups. A package that does not exist yet is covered as soon as it appears.
const FRONTENDS = ['cnm-server', 'cni-exec']
const ADAPTERS = [
  'store-fs',
  'store-etcd',
  'dataplane-linux',
  'dataplane-vnic',
  'dataplane-hns',
  'contrail',
  'log',
  'docker-engine',
  'handoff'
]
const COMPOSITION = ['wiring', 'cni-plugin', 'cli']

const scoped = (names) => names.map((n) => `@isthmus/${n}`)
const srcOf = (names) => names.map((n) => `packages/${n}/src/**/*.ts`)
// Both the package and its subpaths (`@isthmus/contrail/testing`).
const banned = (names, message) => [{ group: scoped(names).flatMap((p) => [p, `${p}/*`]), message }]

// fp-ts only as `fp-ts/lib/X.js`: the form plain Node ESM loads.
const FP_TS_FORM = {
  regex: '^fp-ts(?!/lib/[A-Za-z]+\\.js$)',
  message: "import fp-ts as 'fp-ts/lib/X.js' (the form plain Node ESM can load)"
}

const restrictImports = (...patterns) => ({
  'no-restricted-imports': ['error', { patterns: [FP_TS_FORM, ...patterns.flat()] }]
})

const NODE_TEST_CALLS = ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach']

const TS_FILES = ['packages/*/{src,test,bench}/**/*.ts', 'examples/*/{src,test}/**/*.ts']

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '**/.tmp/**', '**/test/fixtures/**'] },

  // Plain JavaScript: the build and test scripts.
  {
    files: ['**/*.{js,mjs}'],
    extends: [js.configs.recommended],
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly', Buffer: 'readonly' }
    },
    rules: {
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      eqeqeq: ['error', 'always', { null: 'ignore' }]
    }
  },

  // TypeScript: sources, tests, benches, examples; typed through tsconfig.tests.json (which resolves
  // workspace packages to their sources, so no build is needed first).
  {
    files: TS_FILES,
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { project: './tsconfig.tests.json', tsconfigRootDir: import.meta.dirname }
    },
    plugins: { '@stylistic': stylistic },
    rules: {
      // Promises: an unawaited or misplaced promise loses its failure.
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's describe/it return promises that the runner itself awaits.
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: NODE_TEST_CALLS }] }
      ],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      // The fp-ts style wraps synchronous I/O in promise thunks for TE.tryCatch: an async without await is normal.
      '@typescript-eslint/require-await': 'off',
      // Imports: `import { type X }` as the tree writes them (verbatimModuleSyntax keeps what is left).
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-import-type-side-effects': 'error',
      // Cheap checks that find dead weight or a missed case.
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unnecessary-type-arguments': 'error',
      '@typescript-eslint/no-unnecessary-boolean-literal-compare': 'error',
      '@typescript-eslint/prefer-nullish-coalescing': 'error',
      '@typescript-eslint/prefer-optional-chain': 'error',
      '@typescript-eslint/no-deprecated': 'error',
      curly: ['error', 'multi-line'],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }
      ],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      // One helper for a caught value's text: core's causeText.
      'no-restricted-syntax': [
        'error',
        {
          selector: "ConditionalExpression[test.operator='instanceof'][test.right.name='Error']",
          message: "use causeText(e) from '@isthmus/core'"
        }
      ],
      // Prettier wraps code at 120 columns but leaves comments, strings and test names as they are.
      '@stylistic/max-len': [
        'error',
        {
          code: 120,
          comments: 120,
          ignoreUrls: true,
          ignoreStrings: true,
          ignoreTemplateLiterals: true,
          ignoreRegExpLiterals: true
        }
      ]
    }
  },

  // Layer rules (sources only: tests may use any package as support).
  { files: TS_FILES, rules: restrictImports() },
  {
    files: ['packages/core/src/**/*.ts'],
    rules: restrictImports([{ group: ['@isthmus/*'], message: 'core imports no other workspace package' }])
  },
  {
    files: srcOf(FRONTENDS),
    rules: restrictImports(banned([...ADAPTERS, ...COMPOSITION], 'a frontend imports core, not adapters or wiring'))
  },
  {
    files: srcOf(ADAPTERS),
    rules: restrictImports(
      banned([...FRONTENDS, ...COMPOSITION], 'an adapter imports core and libraries, never a frontend or wiring'),
      banned(ADAPTERS, 'an adapter does not import another adapter')
    )
  },
  {
    // Protocol codecs: core, fp-ts, io-ts and their sibling modules only.
    files: ['packages/*/src/protocol/**/*.ts'],
    rules: restrictImports({
      regex: '^(?!\\./|@isthmus/core$|fp-ts/|io-ts$)',
      message: 'a protocol codec imports only @isthmus/core, fp-ts, io-ts and the protocol modules beside it'
    })
  },
  {
    // causeText itself.
    files: ['packages/core/src/errors.ts'],
    rules: { 'no-restricted-syntax': 'off' }
  }
)
