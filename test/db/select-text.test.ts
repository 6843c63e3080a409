// selectText (src/db/request-transaction.ts): a statement sent on a scoped
// transaction's own connection (PostgreSQL) or through Prisma (PGlite) runs
// inside that transaction, with its scope, and nowhere else: once the
// transaction's work has ended, the same handle runs nothing.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { type ScopedDb, selectText } from '../../src/db/request-transaction.ts';
import { createLogger } from '../../src/logger.ts';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/databases.ts';

let tdb: TestDatabase;
let db: Database;
const A = `select-text-a-${randomUUID()}`;
const B = `select-text-b-${randomUUID()}`;

beforeAll(async () => {
  tdb = await createTestDatabase();
  // One connection, so that a transaction after A's runs on the connection A's ran on.
  const config = tdb.config.kind === 'postgres' ? { ...tdb.config, poolSize: 1 } : tdb.config;
  db = await openDatabase(config, { migrate: true, logger: createLogger('silent') });
  for (const id of [A, B]) {
    await db.unscopedClient.user.create({ data: { id, email: `${id}@example.test`, name: id } });
    await db.withUser(id, (tx) => tx.userAccount.create({ data: { userId: id, accountName: id } }));
  }
});

afterAll(async () => {
  await db?.close();
  await tdb?.drop();
});

/** The parts of a tagged template (its values are passed to selectText apart). */
const parts = (strings: TemplateStringsArray, ..._values: unknown[]) => strings;

/** Who the statement runs as, and the account names it can see for A. */
const WHO = parts`SELECT current_setting('app.current_user_id') || ' ' || current_user || ' ' || coalesce((SELECT string_agg(account_name, ',') FROM user_accounts WHERE user_id = ${A}), '-')`;
const whoAmI = (tx: ScopedDb) => selectText(tx, WHO, A);

describe(`selectText (${dbKind})`, () => {
  it("runs in the transaction it is given: its scope, its role, and only that user's rows", async () => {
    expect(await db.withUser(A, (tx) => whoAmI(tx))).toBe(`${A} app_user ${A}`);
    // B asks for A's rows by A's id: RLS hides them.
    expect(await db.withUser(B, (tx) => whoAmI(tx))).toBe(`${B} app_user -`);
  });

  it('runs nothing once the transaction has ended, even while another one holds the connection', async () => {
    let leaked: ScopedDb | undefined;
    await db.withUser(A, async (tx) => {
      leaked = tx;
    });
    await db.withUser(B, async () => {
      await expect(whoAmI(leaked as ScopedDb)).rejects.toThrow();
    });
  });
});
