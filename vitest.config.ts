import { defineConfig } from 'vitest/config';

export default defineConfig({
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
