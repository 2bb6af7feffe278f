// Lint: `npm run lint` (part of `npm test`). The rules the code already follows, so that a change that
// breaks one is caught: typescript-eslint's recommended set, type imports where only types are used,
// unused names only when prefixed with _, no floating promises in library code, no console in src/
// (the CLI writes to process.stdout / stderr on purpose). Formatting is prettier's (.prettierrc.json).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import stylistic from '@stylistic/eslint-plugin';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cache/**', 'coverage/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true }],
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'prefer-const': 'error',
      'no-var': 'error',
      // `any` stays confined to the untyped internals atflow reaches into (tfjs-node's binding, the wasm
      // backend's module, parsed binary headers); require() loads optional dependencies at run time
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-require-imports': 'off',
      // a value set before a try block and overwritten inside it is how the code says "unset if this throws"
      'no-useless-assignment': 'off',
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { '@stylistic': stylistic },
    // prettier wraps code at 140 columns; this also holds the strings and comments it cannot wrap
    rules: { 'no-console': 'error', '@stylistic/max-len': ['error', { code: 140, ignoreUrls: true }] },
  },
);
