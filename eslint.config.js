// Lint rules that hold the architecture (STYLE.md practice 1): pki/ is pure, the CLI is an API client,
// ra/ and ca/ reach the database only through server/storage interfaces, http/ only through the services.
import tseslint from 'typescript-eslint';

const restrict = (patterns) => ['error', { patterns }];

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'coverage/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser },
    plugins: { '@typescript-eslint': tseslint.plugin },
  },
  {
    files: ['pki/**/*.ts'],
    rules: {
      'no-restricted-imports': restrict([
        { group: ['**/server/**', '../server/*'], message: 'pki/ is pure X.509: it must not import server/.' },
        { group: ['knex', 'pg', 'better-sqlite3', 'express', 'node:http', 'node:https', 'http', 'https'], message: 'pki/ knows no HTTP and no SQL.' },
      ]),
      'no-restricted-syntax': ['error',
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'pki/ takes the time as a parameter.' },
        { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: 'pki/ takes the time as a parameter.' },
      ],
    },
  },
  {
    files: ['server/ra/**/*.ts', 'server/ca/**/*.ts'],
    rules: {
      'no-restricted-imports': restrict([
        { group: ['knex', 'pg', 'better-sqlite3', '**/*.repository.knex.ts', '**/knex-store.ts'], message: 'ra/ and ca/ use the storage interfaces only.' },
        { group: ['express', '**/http/**'], message: 'ra/ and ca/ know no HTTP.' },
      ]),
    },
  },
  {
    // The HTTP layer parses, calls a service and renders: it reads no rows itself (records are fine as types).
    files: ['server/http/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        patterns: [
          { group: ['**/storage/**', 'knex', 'pg', 'better-sqlite3'], allowTypeImports: true, message: 'server/http reaches data through the RA services; only `import type` from server/storage.' },
        ],
      }],
    },
  },
  {
    files: ['cli/**/*.ts'],
    rules: {
      'no-restricted-imports': restrict([
        { group: ['**/server/ra/**', '**/server/ca/**', '**/*.repository.knex.ts'], message: 'the CLI is a client of the API.' },
      ]),
    },
  },
  {
    files: ['server/**/*.ts'],
    ignores: ['server/clock.ts'],
    rules: {
      'no-restricted-syntax': ['error',
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'use the injected Clock (server/clock.ts).' },
      ],
    },
  },
);
