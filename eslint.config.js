// ESLint for bugs, not layout: type-aware rules from typescript-eslint over
// src/, test/ and bench/. Formatting is not checked here.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    ignores: ['dist/**', '.build/**', 'dist-*/**', 'coverage/**', '.tap/**', 'node_modules/**', 'bench/results/**', 'test/artifacts/**'],
  },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: {
      reportUnusedDisableDirectives: 'error',
    },
    rules: {
      // Promises: a dropped rejection is a crash or a silent failure.
      '@typescript-eslint/no-floating-promises': [
        'error',
        // tap queues subtests itself: `t.test(...)` need not be awaited.
        { allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],

      // STYLE.md: `import type` for types (verbatimModuleSyntax relies on it).
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-import-type-side-effects': 'error',

      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      // Off: noise rather than bugs here. Fastify plugins are async by
      // convention, interface implementations are async without awaiting, a
      // redundant `as`/`!` hides nothing, and control-character classes in
      // validation regexes are deliberate.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      'no-control-regex': 'off',
      // Off: services and repositories are closures built by `createX`
      // factories, never classes, so passing `storage.close` or
      // `health.database` as a value loses no `this`.
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    // Tests and benchmarks poke at loosely typed JSON responses on purpose.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // Tooling scripts and config files (Node, plain JavaScript).
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ignores: ['public/**'],
    extends: [js.configs.recommended],
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly', module: 'writable', require: 'readonly', __dirname: 'readonly' },
    },
    rules: {
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    // The pages' browser scripts (served as is, no build step): the admin console's, the passkeys'.
    files: ['public/**/*.js'],
    extends: [js.configs.recommended],
    languageOptions: {
      sourceType: 'script',
      globals: { window: 'readonly', document: 'readonly', navigator: 'readonly', Element: 'readonly', setTimeout: 'readonly', fetch: 'readonly' },
    },
  },
);
