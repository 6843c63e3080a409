// The start-up checks (contract section 3): a server that cannot serve what
// it stores does not start. Each refusal is a ConfigError (exit 78, one line
// per problem naming the variable). Their time is measured here and logged
// once at info ("start-up checks passed"), which is how their cost is known.
import { performance } from 'node:perf_hooks';
import type { Config } from '../config.ts';
import type { Database } from '../db/database.ts';
import { checkPreparedStatements } from '../db/prepared-statements.ts';
import type { Logger } from '../logger.ts';
import { checkKeyCoverage } from './key-coverage.ts';
import { checkListenAddress } from './listen-address.ts';
import { checkRequestRole, checkRequestTransaction } from './request-role.ts';

export type CheckTimes = Record<string, number>;

async function timed(times: CheckTimes, name: string, check: () => Promise<void>): Promise<void> {
  const started = performance.now();
  await check();
  times[name] = Math.round((performance.now() - started) * 10) / 10;
}

/** Before the database opens: what needs no database. */
export async function checkBeforeDatabase(config: Config, times: CheckTimes): Promise<void> {
  await timed(times, 'listenAddress', () => checkListenAddress(config.host));
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

export function logCheckTimes(logger: Logger, times: CheckTimes): void {
  const ms = Math.round(Object.values(times).reduce((a, b) => a + b, 0) * 10) / 10;
  logger.info({ ms, checks: times }, 'start-up checks passed');
}
