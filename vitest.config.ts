import path from 'node:path';
import { defineConfig, type Plugin } from 'vitest/config';

const realDatabase = path.resolve(import.meta.dirname, 'src/db/database.ts');
const checkedDatabase = path.resolve(import.meta.dirname, 'test/support/rls-check-database.ts');

/**
 * Every import of src/db/database.ts, from tests and from the code under test
 * alike, gets test/support/rls-check-database.ts: the same module with the RLS
 * check on every database a test opens (test/support/rls-check.ts), so no test
 * file has to opt in.
 */
const rlsCheck: Plugin = {
  name: 'rls-check',
  enforce: 'pre',
  async resolveId(source, importer, options) {
    // Only the specifiers written in the sources (relative); the module runner
    // later fetches resolved ids (/src/db/database.ts), which must stay as they are.
    if (!importer || importer === checkedDatabase || !source.startsWith('.') || !source.endsWith('database.ts'))
      return null;
    const resolved = await this.resolve(source, importer, { ...options, skipSelf: true });
    return resolved?.id === realDatabase ? checkedDatabase : null;
  },
};

export default defineConfig({
  plugins: [rlsCheck],
  resolve: {
    // graphql 16 ships CJS (main) and ESM (module) copies. Node, and so every
    // library, loads the CJS one; Vite would pick the ESM one for test files,
    // and two copies of graphql cannot share a schema.
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    setupFiles: ['test/support/setup-env.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores: two files at a time keeps PGlite's start-up from starving servers under test.
    maxWorkers: 2,
    // Files share their worker's module graph: the app (Prisma's query
    // compiler, better-auth, the schema) loads once per worker instead of once
    // per file. Safe here: no test mocks modules or changes globals, and each
    // file makes its own database and app; setupFiles still run per file.
    isolate: false,
  },
});
