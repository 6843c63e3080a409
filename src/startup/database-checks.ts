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

/** How long a notification may take from the pool to the listener before the start is refused. */
const NOTIFICATION_WAIT_MS = 2000;

/**
 * With a session cache on PostgreSQL, sign-outs reach the other instances as
 * notifications on DATABASE_LISTEN_URL (src/db/session-revocations.ts): one
 * sent through DATABASE_URL must arrive there. Through a transaction pooler
 * LISTEN is accepted but nothing is ever delivered, and every instance
 * would serve signed-out sessions for SESSION_CACHE_TTL_MS.
 */
async function checkRevocationDelivery(config: Config, db: Database): Promise<void> {
  if (config.database.kind !== 'postgres' || config.auth.sessionCacheTtlMs === 0) return;
  let arrived: boolean;
  try {
    arrived = await db.notificationsArrive(NOTIFICATION_WAIT_MS);
  } catch (error) {
    throw invalid([
      {
        variable: 'DATABASE_LISTEN_URL',
        message: `cannot listen for sign-outs there (${(error as Error).message}): give it a direct connection to the database, or set SESSION_CACHE_TTL_MS=0`,
      },
    ]);
  }
  if (arrived) return;
  throw invalid([
    {
      variable: 'DATABASE_LISTEN_URL',
      message:
        `a notification sent through DATABASE_URL did not arrive on ${config.database.listenUrl ? 'it' : 'DATABASE_URL (its default)'} within ${NOTIFICATION_WAIT_MS / 1000} s, ` +
        'so sign-outs would not reach the other instances: a transaction pooler? ' +
        'set DATABASE_LISTEN_URL to a direct connection, or SESSION_CACHE_TTL_MS=0',
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
  await timed(times, 'revocationDelivery', () => checkRevocationDelivery(config, db));
}
