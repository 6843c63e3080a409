// Row-level security, through the real wrapper, on the database the test run
// selected (PostgreSQL with TEST_DATABASE_URL, PGlite otherwise).
import { randomUUID } from 'node:crypto';
import { PrismaPg } from '@prisma/adapter-pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REQUEST_TRANSACTION_DEFAULTS } from '../../src/config/load.ts';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { createWithUser, type ScopedDb } from '../../src/db/request-transaction.ts';
import { PrismaClient } from '../../src/generated/prisma/client.ts';
import { createLogger } from '../../src/logger.ts';
import { adminQuery, createTestDatabase, dbKind, type TestDatabase, withDatabase } from '../support/databases.ts';

const logger = createLogger('silent');
let tdb: TestDatabase;
let db: Database;
const A = `user-a-${randomUUID()}`;
const B = `user-b-${randomUUID()}`;
let accountA: string;
let accountB: string;

function credentialData(accountId: string, userId: string) {
  return {
    accountId,
    userId,
    credentialType: 'alpaca',
    apiKeyCiphertext: Buffer.from('ct-api'),
    secretKeyCiphertext: Buffer.from('ct-secret'),
    keyId: 'k1',
    apiKeyHint: '••••1234',
  };
}

/** Runs SQL in a transaction as the request role with the given user setting (or none). */
async function asRequestRole<T = unknown[]>(userSetting: string | null, sql: string): Promise<T> {
  return db.unscopedClient.$transaction(async (tx) => {
    await tx.$executeRawUnsafe(`SELECT set_config('role', 'app_user', true)`);
    if (userSetting !== null) {
      await tx.$executeRawUnsafe(`SELECT set_config('app.current_user_id', $1, true)`, userSetting);
    }
    return (await tx.$queryRawUnsafe(sql)) as T;
  });
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = await openDatabase(tdb.config, { migrate: true, logger });
  for (const [id, email] of [
    [A, 'a@example.test'],
    [B, 'b@example.test'],
  ] as const) {
    await db.unscopedClient.user.create({ data: { id, email, name: id } });
  }
  accountA = (await db.withUser(A, (tx) => tx.userAccount.create({ data: { userId: A, accountName: 'A' } }))).id;
  accountB = (await db.withUser(B, (tx) => tx.userAccount.create({ data: { userId: B, accountName: 'B' } }))).id;
  await db.withUser(A, (tx) => tx.credential.create({ data: credentialData(accountA, A) }));
  await db.withUser(B, (tx) => tx.credential.create({ data: credentialData(accountB, B) }));
});

afterAll(async () => {
  await db?.close();
  await tdb?.drop();
});

describe(`RLS wrapper (${dbKind})`, () => {
  it('runs work as the request role with the user setting, inside one transaction', async () => {
    const seen = await db.withUser(A, async (tx) => {
      const query = () =>
        tx.$queryRaw<{ role: string; uid: string; xid: string }[]>`
          SELECT current_user AS role, current_setting('app.current_user_id', true) AS uid,
                 txid_current()::text AS xid`;
      return [...(await query()), ...(await query())];
    });
    expect(seen[0]).toMatchObject({ role: 'app_user', uid: A });
    expect(seen[1]).toEqual(seen[0]);
  });

  it('shows each user only their own accounts and credentials', async () => {
    const seenByA = await db.withUser(A, async (tx) => ({
      accounts: await tx.userAccount.findMany(),
      credentials: await tx.credential.findMany(),
    }));
    expect(seenByA.accounts.map((a) => a.userId)).toEqual([A]);
    expect(seenByA.credentials.map((c) => c.userId)).toEqual([A]);
    const seenByB = await db.withUser(B, (tx) => tx.credential.findMany({ include: { account: true } }));
    expect(seenByB.map((c) => c.account.userId)).toEqual([B]);
    // Both rows exist: the filter above is the policy's, not an empty table's.
    const [{ n }] = (await adminCount('user_credentials')) as [{ n: number }];
    expect(n).toBe(2);
  });

  it("returns nothing for another user's row even when asked by id", async () => {
    const found = await db.withUser(B, (tx) => tx.userAccount.findUnique({ where: { id: accountA } }));
    expect(found).toBeNull();
  });

  it('sees zero rows and cannot insert when no user is set', async () => {
    for (const setting of [null, '']) {
      expect(await asRequestRole(setting, 'SELECT * FROM user_accounts')).toEqual([]);
      expect(await asRequestRole(setting, 'SELECT * FROM user_credentials')).toEqual([]);
      await expect(
        asRequestRole(setting, `INSERT INTO user_accounts (user_id, account_name) VALUES ('${A}', 'sneaky')`),
      ).rejects.toThrow(/row-level security/);
    }
  });

  it('refuses to run work if the transaction began without the user scope', async () => {
    // A client whose connections lack the BEGIN hook, so the scope cannot be
    // applied: a bare pg pool, or on PGlite the database's own client (which
    // scopes with a statement instead, so it never runs the hook either).
    const bare =
      tdb.config.kind === 'postgres'
        ? new PrismaClient({ adapter: new PrismaPg({ connectionString: tdb.config.url, max: 1 }) })
        : db.unscopedClient;
    try {
      const withUser = createWithUser(bare, {
        requestRole: 'app_user',
        scopeOnBegin: true,
        maxWaitMs: 5000,
        timeoutMs: 5000,
        settings: REQUEST_TRANSACTION_DEFAULTS,
      });
      let ran = false;
      await expect(
        withUser(A, async () => {
          ran = true;
        }),
      ).rejects.toThrow(/began without its user scope/);
      expect(ran).toBe(false);
    } finally {
      if (bare !== db.unscopedClient) await bare.$disconnect();
    }
  });

  it('refuses to open a scope without a user id', async () => {
    await expect(db.withUser('', async () => 1)).rejects.toThrow(/signed-in user/);
  });

  it('rejects rows written for another user', async () => {
    const attempts: [string, (tx: ScopedDb) => Promise<unknown>, RegExp][] = [
      [
        'insert an account owned by B',
        (tx) => tx.userAccount.create({ data: { userId: B, accountName: 'x' } }),
        /row-level security/,
      ],
      [
        'insert a credential owned by B',
        (tx) => tx.credential.create({ data: credentialData(accountB, B) }),
        /row-level security/,
      ],
      [
        "attach A's credential to B's account",
        (tx) => tx.credential.create({ data: credentialData(accountB, A) }),
        /foreign key|Foreign key/,
      ],
      [
        'move an account to B',
        (tx) => tx.userAccount.update({ where: { id: accountA }, data: { userId: B } }),
        /permission denied/,
      ],
      [
        'move a credential to B',
        (tx) => tx.credential.updateMany({ where: { userId: A }, data: { userId: B } }),
        /permission denied/,
      ],
    ];
    for (const [what, attempt, error] of attempts) {
      await expect(db.withUser(A, attempt), what).rejects.toThrow(error);
    }
  });

  it("cannot change or delete another user's rows", async () => {
    const changed = await db.withUser(B, async (tx) => ({
      updated: (await tx.userAccount.updateMany({ where: { id: accountA }, data: { accountName: 'pwned' } })).count,
      deleted: (await tx.credential.deleteMany({ where: { accountId: accountA } })).count,
    }));
    expect(changed).toEqual({ updated: 0, deleted: 0 });
    const still = await db.withUser(A, (tx) =>
      tx.userAccount.findUniqueOrThrow({ where: { id: accountA }, include: { credentials: true } }),
    );
    expect(still.accountName).toBe('A');
    expect(still.credentials).toHaveLength(1);
  });

  it('cannot disable, unforce or switch off row-level security', async () => {
    const statements: [string, RegExp][] = [
      ['ALTER TABLE user_accounts DISABLE ROW LEVEL SECURITY', /must be owner/],
      ['ALTER TABLE user_credentials NO FORCE ROW LEVEL SECURITY', /must be owner/],
      ['DROP POLICY user_accounts_select ON user_accounts', /must be owner/],
    ];
    for (const [sql, error] of statements) {
      await expect(
        db.withUser(A, (tx) => tx.$executeRawUnsafe(sql)),
        sql,
      ).rejects.toThrow(error);
    }
    await expect(
      db.withUser(A, async (tx) => {
        await tx.$executeRawUnsafe('SET LOCAL row_security = off');
        return tx.$queryRawUnsafe('SELECT * FROM user_accounts');
      }),
    ).rejects.toThrow(/row-level security/);
  });

  it("cannot read better-auth's tables or the migration history", async () => {
    for (const table of [
      'auth_users',
      'auth_sessions',
      'auth_accounts',
      'auth_verifications',
      'auth_rate_limits',
      '_prisma_migrations',
    ]) {
      await expect(
        db.withUser(A, (tx) => tx.$queryRawUnsafe(`SELECT count(*) FROM ${table}`)),
        table,
      ).rejects.toThrow(/permission denied/);
    }
  });

  it('is a NOLOGIN role that cannot bypass RLS and is not a member of the owner', async () => {
    const [role] = (await db.unscopedClient.$queryRawUnsafe(`
      SELECT r.rolcanlogin, r.rolbypassrls, r.rolsuper,
             pg_has_role('app_user', t.tableowner, 'MEMBER') AS member_of_owner
      FROM pg_roles r, pg_tables t
      WHERE r.rolname = 'app_user' AND t.tablename = 'user_accounts'`)) as Record<string, boolean>[];
    expect(role).toEqual({ rolcanlogin: false, rolbypassrls: false, rolsuper: false, member_of_owner: false });
  });

  it('rolls back everything when work throws, or when commitIf says no', async () => {
    await expect(
      db.withUser(A, async (tx) => {
        await tx.credential.create({ data: { ...credentialData(accountA, A), credentialType: 'rolled_back' } });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const result = await db.withUser(
      A,
      async (tx) => {
        await tx.credential.create({ data: { ...credentialData(accountA, A), credentialType: 'rolled_back' } });
        return { errors: ['something failed later'] };
      },
      (r) => r.errors.length === 0,
    );
    expect(result.errors).toHaveLength(1);
    const left = await db.withUser(A, (tx) => tx.credential.count({ where: { credentialType: 'rolled_back' } }));
    expect(left).toBe(0);
  });

  it('queues concurrent transactions instead of failing them', async () => {
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        db.withUser(i % 2 ? A : B, (tx) =>
          tx.credential.create({
            data: { ...credentialData(i % 2 ? accountA : accountB, i % 2 ? A : B), credentialType: 'burst' },
          }),
        ),
      ),
    );
    expect(results).toHaveLength(30);
    const counts = await Promise.all(
      [A, B].map((u) => db.withUser(u, (tx) => tx.credential.count({ where: { credentialType: 'burst' } }))),
    );
    expect(counts).toEqual([15, 15]);
  });
});

describe(`transaction-local scope (${dbKind})`, () => {
  it('leaves no user setting or role on the connection after the transaction', async () => {
    // One connection only, so the follow-up query is sure to reuse it.
    const single =
      tdb.config.kind === 'postgres'
        ? await openDatabase({ ...tdb.config, poolSize: 1 }, { migrate: false, logger })
        : db;
    try {
      await single.withUser(A, (tx) => tx.userAccount.findMany());
      const [after] = (await single.unscopedClient.$queryRawUnsafe(
        `SELECT current_user AS role, coalesce(current_setting('app.current_user_id', true), '') AS uid`,
      )) as { role: string; uid: string }[];
      expect(after).toEqual({ role: expect.not.stringMatching(/^app_user$/), uid: '' });
    } finally {
      if (single !== db) await single.close();
    }
  });
});

async function adminCount(table: string) {
  return db.unscopedClient.$queryRawUnsafe(`SELECT count(*)::int AS n FROM ${table}`);
}

// A login that is only a member of the request role (DATABASE_REQUEST_URL):
// PostgreSQL only, since PGlite has a single built-in superuser session.
describe.runIf(dbKind === 'postgres')('separate request login (postgres)', () => {
  const login = 'bca_test_request_login';
  let scoped: Database;

  beforeAll(async () => {
    await adminQuery(`
      DO $$ BEGIN
        CREATE ROLE ${login} LOGIN NOINHERIT;
      EXCEPTION WHEN duplicate_object THEN NULL; END $$;`);
    await adminQuery(`GRANT app_user TO ${login}`);
    if (tdb.config.kind !== 'postgres') throw new Error('unreachable');
    scoped = await openDatabase(
      { ...tdb.config, requestUrl: withDatabase(tdb.config.url, new URL(tdb.config.url).pathname.slice(1), login) },
      { migrate: false, logger },
    );
  });

  afterAll(async () => {
    await scoped?.close();
  });

  it('serves the user their rows', async () => {
    const rows = await scoped.withUser(A, (tx) => tx.userAccount.findMany());
    expect(rows.map((r) => r.userId)).toEqual([A]);
  });

  it('cannot SET ROLE to the owner, and RESET ROLE leaves it with no rights at all', async () => {
    const [{ owner }] = (await db.unscopedClient.$queryRawUnsafe(
      `SELECT tableowner AS owner FROM pg_tables WHERE tablename = 'user_accounts'`,
    )) as [{ owner: string }];
    await expect(scoped.withUser(A, (tx) => tx.$executeRawUnsafe(`SET ROLE "${owner}"`))).rejects.toThrow(
      /permission denied/,
    );
    await expect(
      scoped.withUser(A, async (tx) => {
        await tx.$executeRawUnsafe('RESET ROLE');
        return tx.$queryRawUnsafe('SELECT * FROM user_accounts');
      }),
    ).rejects.toThrow(/permission denied/);
  });
});
