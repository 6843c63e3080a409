// The embedded database: PGlite persisted in DATA_DIR, through
// pglite-prisma-adapter. One backend, so one transaction at a time: the
// others queue for it (which is why they may wait long).
//
// Its files are opened here and nowhere else, and only under DATA_DIR's lock
// (src/db/data-dir-lock.ts): two processes on one PGlite data directory lose
// each other's writes.
import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaClient } from '../generated/prisma/client.ts';
import { dataDirOf, leaseDataDir } from './data-dir-lock.ts';
import type { Database, DatabaseOptions, OpenOptions } from './database.ts';
import { runMigrations } from './migrations.ts';
import { probeRequests, readCredentialKeyIds } from './probes.ts';
import {
  createRequestScopes,
  oneMessage,
  requestTransactionOptions,
  type Statement,
  type StatementScope,
} from './request-transaction.ts';
import { type RevocationWatch, watchPglite } from './session-revocations.ts';

// A transaction holds the one backend exclusively and the others queue behind
// it, so waiting is normal here and must not time out early. No BEGIN hook:
// the scope is a statement of its own after BEGIN (there are no round trips).
const TX_LIMITS = { maxWaitMs: 60_000, timeoutMs: 15_000, scopeOnBegin: false };

/**
 * Opens the PGlite files in `pgdataDir` (DATA_DIR/pgdata) under DATA_DIR's
 * lock: the one this process holds (a server's), or one taken until close.
 * Throws DataDirInUseError when another process holds it.
 */
async function openLockedPglite(pgdataDir: string): Promise<{ pglite: PGlite; close(): Promise<void> }> {
  const lease = leaseDataDir(dataDirOf(pgdataDir));
  try {
    // PGlite creates its own folder only: DATA_DIR and its parents may not exist yet.
    await mkdir(pgdataDir, { recursive: true });
    const pglite = new PGlite(pgdataDir);
    await pglite.waitReady;
    return {
      pglite,
      close: async () => {
        try {
          await pglite.close();
        } finally {
          lease.release();
        }
      },
    };
  } catch (error) {
    lease.release();
    throw error;
  }
}

export async function openPglite(
  config: Extract<DatabaseOptions, { kind: 'pglite' }>,
  options: OpenOptions,
): Promise<Database> {
  const { logger } = options;
  const started = Date.now();
  const files = await openLockedPglite(config.dataDir);
  const { pglite } = files;
  logger.info({ dataDir: config.dataDir, ms: Date.now() - started }, 'embedded PGlite database open');
  try {
    if (options.migrate) await runMigrations(config, logger, pglite);
  } catch (error) {
    await files.close();
    throw error;
  }
  options.instrument?.pglite?.(pglite);
  const client = new PrismaClient({ adapter: new PrismaPGlite(pglite) });
  const transactions = requestTransactionOptions(config, TX_LIMITS);
  const { withUser, withEngineClient, withRequestRole } = createRequestScopes(client, transactions);
  // Transactions running or queued, for connections().
  let inTransaction = 0;
  const counted = async <T>(run: () => Promise<T>): Promise<T> => {
    inTransaction += 1;
    try {
      return await run();
    } finally {
      inTransaction -= 1;
    }
  };
  const watches = new Set<RevocationWatch>();
  return {
    kind: 'pglite',
    withUser: (userId, work, commitIf) => counted(() => withUser(userId, work, commitIf)),
    withEngineClient: (clientId, work) => counted(() => withEngineClient(clientId, work)),
    withRequestRole: (work) => counted(() => withRequestRole(work)),
    // exec waits for PGlite's transaction lock, like a Prisma transaction.
    inOneMessage: <T>(scope: StatementScope, sql: Statement) =>
      counted(async () => {
        const results = await pglite.exec(oneMessage(scope, transactions, sql, pg.escapeLiteral));
        return (results.at(-1)?.rows ?? []) as T[];
      }),
    credentialKeyIds: () => counted(() => readCredentialKeyIds(client)),
    ping: () => counted(() => probeRequests(withRequestRole)),
    connections: () => ({
      idle: inTransaction > 0 ? 0 : 1,
      active: inTransaction > 0 ? 1 : 0,
      waiting: Math.max(0, inTransaction - 1),
    }),
    migrate: () => counted(() => runMigrations(config, logger, pglite)),
    watchSessionRevocations: (handlers) => {
      const watch = watchPglite(pglite, handlers, logger);
      watches.add(watch);
      return watch;
    },
    // One process, one backend: its own notifications always reach it.
    notificationsArrive: async () => true,
    close: async () => {
      await Promise.all([...watches].map((w) => w.close()));
      await client.$disconnect();
      await files.close();
    },
    unscopedClient: client,
  };
}
