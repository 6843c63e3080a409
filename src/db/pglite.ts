// The embedded database: PGlite persisted in DATA_DIR, through
// pglite-prisma-adapter. One backend, so one transaction at a time: the
// others queue for it (which is why they may wait long).
import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaClient } from '../generated/prisma/client.ts';
import type { Database, DatabaseOptions, OpenOptions } from './database.ts';
import { runMigrations } from './migrations.ts';
import { probeRequests, readCredentialKeyIds } from './probes.ts';
import { createRequestScopes, requestTransactionOptions } from './request-transaction.ts';

// A transaction holds the one backend exclusively and the others queue behind
// it, so waiting is normal here and must not time out early. No BEGIN hook:
// the scope is a statement of its own after BEGIN (there are no round trips).
const TX_LIMITS = { maxWaitMs: 60_000, timeoutMs: 15_000, scopeOnBegin: false };

export async function openPglite(
  config: Extract<DatabaseOptions, { kind: 'pglite' }>,
  options: OpenOptions,
): Promise<Database> {
  const { logger } = options;
  const started = Date.now();
  // PGlite creates its own folder only: DATA_DIR and its parents may not exist yet.
  await mkdir(config.dataDir, { recursive: true });
  const pglite = new PGlite(config.dataDir);
  await pglite.waitReady;
  logger.info({ dataDir: config.dataDir, ms: Date.now() - started }, 'embedded PGlite database open');
  try {
    if (options.migrate) await runMigrations(config, logger, pglite);
  } catch (error) {
    await pglite.close();
    throw error;
  }
  options.instrument?.pglite?.(pglite);
  const client = new PrismaClient({ adapter: new PrismaPGlite(pglite) });
  const { withUser, withEngineClient, withRequestRole } = createRequestScopes(
    client,
    requestTransactionOptions(config, TX_LIMITS),
  );
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
  return {
    kind: 'pglite',
    withUser: (userId, work, commitIf) => counted(() => withUser(userId, work, commitIf)),
    withEngineClient: (clientId, work) => counted(() => withEngineClient(clientId, work)),
    withRequestRole: (work) => counted(() => withRequestRole(work)),
    credentialKeyIds: () => counted(() => readCredentialKeyIds(client)),
    ping: () => counted(() => probeRequests(withRequestRole)),
    connections: () => ({
      idle: inTransaction > 0 ? 0 : 1,
      active: inTransaction > 0 ? 1 : 0,
      waiting: Math.max(0, inTransaction - 1),
    }),
    close: async () => {
      await client.$disconnect();
      await pglite.close();
    },
    unscopedClient: client,
  };
}
