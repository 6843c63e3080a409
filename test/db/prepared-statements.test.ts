// DATABASE_PREPARED_STATEMENTS (PostgreSQL only): with it, a pool connection
// prepares each statement once and reuses it, still inside the RLS wrapper;
// without it (the default, safe behind any PgBouncer) nothing is prepared.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultKeyId, Keyring } from '../../src/crypto/keyring.ts';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { createLogger } from '../../src/logger.ts';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/databases.ts';
import { seedUser } from '../support/seed.ts';

const logger = createLogger('silent');
let tdb: TestDatabase;
const opened: Database[] = [];

async function open(preparedStatements: boolean): Promise<Database> {
  if (tdb.config.kind !== 'postgres') throw new Error('PostgreSQL only');
  // One connection, so that every call below runs on the same session.
  const db = await openDatabase({ ...tdb.config, poolSize: 1, preparedStatements }, { migrate: true, logger });
  opened.push(db);
  return db;
}

/** The user's credentials the way W1 reads them, and what the session has prepared by then. */
async function readTwice(db: Database, userId: string) {
  const read = () =>
    db.withUser(userId, async (tx) => ({
      rows: await tx.credential.findMany({ select: { id: true, apiKeyHint: true }, orderBy: { id: 'asc' } }),
      prepared: await tx.$queryRaw<{ name: string }[]>`SELECT name FROM pg_prepared_statements`,
    }));
  const first = await read();
  const second = await read();
  return { first, second };
}

describe.runIf(dbKind === 'postgres')('prepared statements (postgres)', () => {
  beforeAll(async () => {
    tdb = await createTestDatabase();
  });
  afterAll(async () => {
    for (const db of opened) await db.close();
    await tdb?.drop();
  });

  it('prepares each statement once when enabled, and answers the same rows under RLS', async () => {
    const db = await open(true);
    const bytes = randomBytes(32);
    const keyring = new Keyring({ id: defaultKeyId(bytes), key: bytes });
    const owner = await seedUser(db, keyring, 3);
    const other = await seedUser(db, keyring, 2);

    const { first, second } = await readTwice(db, owner.userId);
    expect(first.rows.map((r) => r.id)).toEqual([...owner.credentials.map((c) => c.id)].sort());
    expect(second.rows).toEqual(first.rows);
    expect(first.prepared.length).toBeGreaterThan(0);
    // The second read reused what the first prepared: nothing new.
    expect(second.prepared.length).toBe(first.prepared.length);
    // Reused statements still run under the caller's scope.
    const theirs = await readTwice(db, other.userId);
    expect(theirs.second.rows.map((r) => r.id)).toEqual([...other.credentials.map((c) => c.id)].sort());
  });

  it('prepares nothing by default', async () => {
    const db = await open(false);
    const bytes = randomBytes(32);
    const user = await seedUser(db, new Keyring({ id: defaultKeyId(bytes), key: bytes }), 1);
    const { second } = await readTwice(db, user.userId);
    expect(second.rows).toHaveLength(1);
    expect(second.prepared).toEqual([]);
  });
});
