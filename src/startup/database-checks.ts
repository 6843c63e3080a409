// The start-up checks that need the open (and migrated) database, run before
// listening (see checks.ts for the frame and their timing).

import { invalid } from '../config/errors.ts';
import type { Config } from '../config/load.ts';
import type { Database, DatabaseOptions } from '../db/database.ts';
import { preparedStatementsLost } from '../db/prepared-statements.ts';
import { type CheckTimes, timed } from './checks.ts';
import { checkKeyCoverage } from './key-coverage.ts';
import { checkRequestRole, checkRequestTransaction } from './request-role.ts';

/** DATABASE_PREPARED_STATEMENTS=true where the connection cannot carry named statements refuses to start. */
async function checkPreparedStatements(database: DatabaseOptions): Promise<void> {
  const lost = await preparedStatementsLost(database);
  if (lost === null) return;
  throw invalid([
    {
      variable: 'DATABASE_PREPARED_STATEMENTS',
      message:
        `named prepared statements do not survive this connection (${lost}): ` +
        'a transaction-pooling PgBouncer before 1.21, or without max_prepared_statements, cannot carry them; ' +
        'set it to false (or give PgBouncer max_prepared_statements)',
    },
  ]);
}

/** Once the database is open and migrated, before listening. */
export async function checkDatabase(config: Config, db: Database, times: CheckTimes): Promise<void> {
  await timed(times, 'preparedStatements', () => checkPreparedStatements(config.database));
  // What /ready runs: a request transaction works at all. Timed on its own: as
  // the first one of the process it also pays the pool's first connection and
  // Prisma's first query, which the first request would pay otherwise.
  await timed(times, 'requestTransaction', () => checkRequestTransaction(db, config.database));
  await timed(times, 'requestRole', () => checkRequestRole(db, config.database));
  await timed(times, 'keyCoverage', () => checkKeyCoverage(db, config.encryption));
}
