// The audit trail's table at the database level, through the real RLS wrapper
// (db.withUser), on the database the run selected: append-only for the
// request role (grants, and attempts as that role), isolated between users,
// kept after its credential is gone, and paged through its index.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { createLogger } from '../../src/logger.ts';
import { listCredentialEvents, recordCredentialEvent } from '../../src/services/credential-events.ts';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/databases.ts';

let tdb: TestDatabase;
let db: Database;
const A = `user-a-${randomUUID()}`;
const B = `user-b-${randomUUID()}`;
const origin = { clientIp: '198.51.100.4', userAgent: 'db-test' };
let credentialA: string;

async function superuserRows(sql: string): Promise<Record<string, unknown>[]> {
  return (await db.unscopedClient.$queryRawUnsafe(sql)) as Record<string, unknown>[];
}

/** What the database says when the request role tries `work`: the error's message, or 'allowed'. */
async function attempt(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
    return 'allowed';
  } catch (error) {
    return String((error as Error).message);
  }
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = await openDatabase(tdb.config, { migrate: true, logger: createLogger('silent') });
  for (const id of [A, B]) await db.unscopedClient.user.create({ data: { id, email: `${id}@example.test`, name: id } });
  const account = await db.withUser(A, (tx) => tx.userAccount.create({ data: { userId: A, accountName: 'A' } }));
  credentialA = (
    await db.withUser(A, (tx) =>
      tx.credential.create({
        data: {
          accountId: account.id,
          userId: A,
          credentialType: 'alpaca',
          apiKeyCiphertext: Buffer.from('ct-api'),
          secretKeyCiphertext: Buffer.from('ct-secret'),
          keyId: 'k1',
          apiKeyHint: '••••1234',
        },
      }),
    )
  ).id;
  await db.withUser(A, (tx) =>
    recordCredentialEvent(tx, { userId: A, credentialId: credentialA, action: 'STORED', request: origin }),
  );
  await db.withUser(B, (tx) =>
    recordCredentialEvent(tx, { userId: B, credentialId: randomUUID(), action: 'STORED', request: origin }),
  );
});

afterAll(async () => {
  await db?.close();
  await tdb?.drop();
});

describe(`credential_events at the database (${dbKind})`, () => {
  it('grants the request role INSERT and SELECT only', async () => {
    const [grants] = await superuserRows(`
      SELECT ${['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']
        .map((p) => `has_table_privilege('app_user', 'credential_events', '${p}') AS "${p}"`)
        .join(', ')},
        has_any_column_privilege('app_user', 'credential_events', 'UPDATE') AS "UPDATE any column"`);
    expect(grants).toEqual({
      SELECT: true,
      INSERT: true,
      UPDATE: false,
      DELETE: false,
      TRUNCATE: false,
      REFERENCES: false,
      TRIGGER: false,
      'UPDATE any column': false,
    });
  });

  it('refuses UPDATE, DELETE and TRUNCATE from the request role, through the RLS wrapper', async () => {
    const attempts = {
      updateMany: await attempt(() =>
        db.withUser(A, (tx) => tx.credentialEvent.updateMany({ data: { action: 'DELETED' } })),
      ),
      rawUpdate: await attempt(() =>
        db.withUser(A, (tx) => tx.$executeRaw`UPDATE credential_events SET client_ip = NULL`),
      ),
      deleteMany: await attempt(() => db.withUser(A, (tx) => tx.credentialEvent.deleteMany({}))),
      rawDelete: await attempt(() => db.withUser(A, (tx) => tx.$executeRaw`DELETE FROM credential_events`)),
      truncate: await attempt(() => db.withUser(A, (tx) => tx.$executeRaw`TRUNCATE credential_events`)),
    };
    for (const [what, outcome] of Object.entries(attempts)) expect(outcome, what).toMatch(/permission denied/i);
    const rows = await superuserRows(`SELECT user_id, action, client_ip FROM credential_events ORDER BY user_id`);
    expect(rows).toEqual([A, B].sort().map((user_id) => ({ user_id, action: 'STORED', client_ip: origin.clientIp })));
  });

  it('shows and accepts only the scoped user’s events', async () => {
    const seenByA = await db.withUser(A, (tx) => tx.credentialEvent.findMany());
    expect(seenByA.map((e) => e.userId)).toEqual([A]);
    expect(await db.withUser(B, (tx) => tx.credentialEvent.findMany({ where: { userId: A } }))).toEqual([]);
    const forged = await attempt(() =>
      db.withUser(B, (tx) =>
        recordCredentialEvent(tx, { userId: A, credentialId: credentialA, action: 'DELETED', request: origin }),
      ),
    );
    expect(forged).toMatch(/row-level security/i);
    expect(await superuserRows(`SELECT 1 FROM credential_events WHERE action = 'DELETED'`)).toEqual([]);
  });

  it('refuses what is not an action, a field name or a well-formed outcome', async () => {
    const insert = (data: Record<string, unknown>) =>
      attempt(() =>
        db.withUser(A, (tx) =>
          tx.credentialEvent.create({
            data: { userId: A, credentialId: credentialA, action: 'UPDATED', changedFields: ['nickname'], ...data },
          }),
        ),
      );
    expect(await insert({ action: 'RENAMED' })).toMatch(/credential_events_action_check/);
    expect(await insert({ changedFields: ['nickname', 'Paper account 1'] })).toMatch(
      /credential_events_changed_fields_check/,
    );
    expect(await insert({ verificationStatus: 'VERIFIED' })).toMatch(/credential_events_verified_outcome_check/);
    expect(await insert({ action: 'VERIFIED', changedFields: [] })).toMatch(/credential_events_verified_outcome_check/);
    expect(await insert({ action: 'VERIFIED', changedFields: [], verificationStatus: 'INVALID' })).toBe('allowed');
    // Prisma reports PostgreSQL's 22001 in its own words; the raw INSERT shows the column's bound.
    expect(await insert({ userAgent: 'x'.repeat(257) })).toMatch(/too long for the column's type/);
    expect(
      await attempt(() =>
        db.withUser(
          A,
          (
            tx,
          ) => tx.$executeRaw`INSERT INTO credential_events (user_id, credential_id, action, changed_fields, user_agent)
            VALUES (${A}, ${credentialA}::uuid, 'DELETED', '{}', ${'x'.repeat(257)})`,
        ),
      ),
    ).toMatch(/value too long for type character varying\(256\)/);
    expect(await insert({ userAgent: 'x'.repeat(256) })).toBe('allowed');
  });

  it('keeps events when their credential is deleted', async () => {
    await db.withUser(A, (tx) => tx.credential.delete({ where: { id: credentialA } }));
    const left = await db.withUser(A, (tx) => tx.credentialEvent.findMany({ where: { credentialId: credentialA } }));
    expect(left.map((e) => e.action)).toContain('STORED');
  });

  it('pages through the index: the keyset is a range condition, not a filter', async () => {
    const events = await db.withUser(A, (tx) => listCredentialEvents(tx, { userId: A, limit: 2 }));
    const after = events[0]?.id as string;
    const plans = await db.unscopedClient.$transaction(async (tx) => {
      // On a table this small the planner would rather scan it all; forbid
      // that to see which conditions the index can serve.
      await tx.$executeRawUnsafe('SET LOCAL enable_seqscan = off');
      const explain = (sql: string) =>
        tx
          .$queryRawUnsafe<{ 'QUERY PLAN': string }[]>(`EXPLAIN ${sql}`)
          .then((rows) => rows.map((r) => r['QUERY PLAN']).join('\n'));
      const keyset = `(occurred_at, id) < (SELECT occurred_at, id FROM credential_events WHERE id = '${after}')`;
      return {
        user: await explain(
          `SELECT id FROM credential_events WHERE user_id = '${A}' AND ${keyset} ORDER BY occurred_at DESC, id DESC LIMIT 10`,
        ),
        credential: await explain(
          `SELECT id FROM credential_events WHERE user_id = '${A}' AND credential_id = '${credentialA}' AND ${keyset}
           ORDER BY occurred_at DESC, id DESC LIMIT 10`,
        ),
      };
    });
    expect(plans.user).toMatch(/Index (Only )?Scan Backward using credential_events_user_id_occurred_at_id_idx/);
    expect(plans.credential).toMatch(
      /Index (Only )?Scan Backward using credential_events_credential_id_occurred_at_id_idx/,
    );
    for (const plan of Object.values(plans)) {
      expect(plan).toMatch(/Index Cond: .*ROW\(occurred_at, id\) < ROW\(/);
      expect(plan).not.toMatch(/Sort/);
    }
  });
});
