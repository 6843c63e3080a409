// `npm run migrate`: applies pending migrations to the configured database
// (DATABASE_URL, or the embedded PGlite in DATA_DIR) and exits. The server
// also does this at start unless MIGRATE_ON_START=false.
import { PGlite } from '@electric-sql/pglite';
import { ConfigError, loadConfig } from '../config.ts';
import { runMigrations } from '../db/database.ts';
import { createLogger } from '../logger.ts';

try {
  const config = await loadConfig();
  const logger = createLogger(config.logLevel);
  if (config.database.kind === 'pglite') {
    const pglite = new PGlite(config.database.dataDir);
    try {
      await runMigrations(config.database, logger, pglite);
    } finally {
      await pglite.close();
    }
  } else {
    await runMigrations(config.database, logger);
  }
} catch (error) {
  process.stderr.write(`${error instanceof ConfigError ? error.message : (error as Error).stack}\n`);
  process.exitCode = 1;
}
