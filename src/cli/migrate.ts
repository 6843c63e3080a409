// `npm run migrate`: applies pending migrations to the configured database
// (DATABASE_URL, or the embedded PGlite in DATA_DIR) and exits. The server
// also does this at start unless MIGRATE_ON_START=false. It seals and signs
// nothing, so it needs neither ENCRYPTION_KEY nor BETTER_AUTH_SECRET.
import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { runMigrations } from '../db/migrations.ts';
import { createLogger } from '../logger.ts';
import { parseTaskArgs, runTask } from './task.ts';

await runTask(
  'migrate',
  'none',
  () => parseTaskArgs({}),
  async (config) => {
    const logger = createLogger(config.logLevel);
    if (config.database.kind === 'pglite') {
      await mkdir(config.database.dataDir, { recursive: true });
      const pglite = new PGlite(config.database.dataDir);
      try {
        await runMigrations(config.database, logger, pglite);
      } finally {
        await pglite.close();
      }
    } else {
      await runMigrations(config.database, logger);
    }
  },
);
