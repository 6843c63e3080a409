// `npm run migrate`: applies pending migrations to the configured database
// (DATABASE_URL, or the embedded PGlite in DATA_DIR: through the running
// server when one has it open, see operations.ts) and exits. The server also
// does this at start unless MIGRATE_ON_START=false. It seals and signs
// nothing, so it needs neither ENCRYPTION_KEY nor BETTER_AUTH_SECRET.
import { createLogger } from '../logger.ts';
import { withOperations } from './operations.ts';
import { parseTaskArgs, runTask } from './task.ts';

await runTask(
  'migrate',
  'none',
  () => parseTaskArgs({}),
  async (config) => {
    const logger = createLogger(config.logLevel);
    await withOperations(config, { task: 'migrate', logger, migrate: false }, async (operations) => {
      const result = await operations.migrate();
      // On its own database the runner logged as it went; the server logged in its own log.
      if (operations.via === 'server') {
        for (const name of result.applied) logger.info(`applied migration ${name} (by the running server)`);
        logger.info(
          { applied: result.applied.length, alreadyApplied: result.alreadyApplied, by: 'server' },
          'migrations up to date',
        );
      }
    });
  },
);
