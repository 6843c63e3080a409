// The start-up checks that need the open (and migrated) database, run before
// listening (see checks.ts for the frame and their timing).
import type { Config } from '../config.ts';
import type { Database } from '../db/database.ts';
import { checkPreparedStatements } from '../db/prepared-statements.ts';
import { type CheckTimes, timed } from './checks.ts';
import { checkKeyCoverage } from './key-coverage.ts';
import { checkRequestRole, checkRequestTransaction } from './request-role.ts';

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
