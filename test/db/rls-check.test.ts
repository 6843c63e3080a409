// The RLS check of test/support/rls-check.ts, itself: it must see a statement
// sent outside the wrapper, name it, and stay quiet for the wrapper's scopes
// and for fixtures. Runs on the database every other file gets, through the
// same openDatabase (vitest.config.ts swaps in the checked one).
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultKeyId, Keyring } from '../../src/crypto/keyring.ts';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { createLogger } from '../../src/logger.ts';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/databases.ts';
import {
  codeUnderTestClient,
  failOnRlsViolations,
  RLS_CHECK_RULES,
  rlsCheck,
  scopeOf,
  takeRlsViolations,
} from '../support/rls-check.ts';
import { type SeededUser, seedUser } from '../support/seed.ts';

const key = randomBytes(32);
const keyring = new Keyring({ id: defaultKeyId(key), key });
let tdb: TestDatabase;
let db: Database;
let alice: SeededUser;

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = await openDatabase(tdb.config, { migrate: true, logger: createLogger('silent') });
  alice = await seedUser(db, keyring, 1);
});

afterAll(async () => {
  await db?.close();
  await tdb?.drop();
});

/** The owner client as src code reaches it (not the fixture client test code gets). */
const asSrc = () => codeUnderTestClient(db.unscopedClient);

describe(`the RLS check (${dbKind})`, () => {
  it('fails on a statement sent outside the wrapper, naming it', async () => {
    // What readCredentialSecrets would do if it read through the owner client.
    const rows = await asSrc().credential.findMany({ where: { userId: alice.userId }, select: { id: true } });
    expect(rows).toHaveLength(1);
    const found = takeRlsViolations();
    expect(found).toEqual([
      { reason: 'outside any transaction', statement: expect.stringMatching(/FROM "public"\."user_credentials"/) },
    ]);
    // The same through the hook every test file has (setup-env.ts): an error naming the statement.
    await asSrc().userAccount.count();
    expect(() => failOnRlsViolations('in this test')).toThrow(
      /RLS check: 1 statement\(s\) in this test touched user data .*\n.*outside any transaction:\n.*"public"\."user_accounts"/,
    );
  });

  it('fails on a transaction that did not begin with the scope, or set it beyond the transaction', async () => {
    await asSrc().$transaction((tx) => tx.credentialEvent.findMany());
    const rolledBack = new Error('roll back: a session-wide setting would stay on the pooled connection');
    const sessionWide = asSrc().$transaction(async (tx) => {
      // is_local false: the scope would outlive the transaction.
      await tx.$executeRaw`SELECT set_config('app.current_user_id', ${alice.userId}, false), set_config('role', 'app_user', false)`;
      await tx.credential.findMany();
      throw rolledBack;
    });
    await expect(sessionWide).rejects.toBe(rolledBack);
    const reasons = takeRlsViolations().map((v) => v.reason);
    expect(reasons).toEqual([
      'in a transaction that did not begin with a user scope and the role app_user',
      'in a transaction that did not begin with a user scope and the role app_user',
    ]);
  });

  it('passes the wrapper: user and engine-client scopes, committed or rolled back', async () => {
    await db.withUser(alice.userId, (tx) => tx.credential.findMany());
    await db.withUser(
      alice.userId,
      (tx) => tx.userAccount.findMany(),
      () => false,
    );
    await db.withEngineClient('ec_nobody', (tx) => tx.engineGrant.findMany());
    expect(takeRlsViolations()).toEqual([]);
  });

  it('passes fixtures: what a test file sends itself through db.unscopedClient', async () => {
    expect(await db.unscopedClient.credential.count()).toBe(1);
    await db.unscopedClient.$transaction((tx) => tx.credentialEvent.findMany());
    expect(takeRlsViolations()).toEqual([]);
  });
});

describe('a connection, statement by statement', () => {
  /** The reasons the check gives for `statements`, sent in order on one pg connection. */
  function reasons(...statements: string[]): string[] {
    const client = { query: () => undefined } as unknown as pg.PoolClient;
    rlsCheck('app_user').pgConnection?.(client);
    for (const sql of statements) void client.query(sql);
    return takeRlsViolations().map((v) => v.reason);
  }
  const scoped = "BEGIN; SELECT set_config('app.current_user_id', 'u1', true), set_config('role', 'app_user', true)";
  const read = 'SELECT * FROM "public"."user_credentials"';
  const noScope = 'in a transaction that did not begin with a user scope and the role app_user';

  it('accepts user data only between a scoped BEGIN and its end', () => {
    expect(reasons(scoped, read, 'SAVEPOINT s', 'ROLLBACK TO SAVEPOINT s', read, 'COMMIT')).toEqual([]);
    expect(reasons(scoped, 'COMMIT', read)).toEqual(['outside any transaction']);
    expect(reasons(scoped, read, 'ROLLBACK', read)).toEqual(['outside any transaction']);
    expect(reasons('SELECT 1 FROM auth_sessions', 'BEGIN', 'SELECT count(*) FROM auth_users', 'COMMIT')).toEqual([]);
  });

  it('takes the scope from the first statement only, and checks what rides with BEGIN', () => {
    expect(reasons('BEGIN', 'SELECT 1', scoped.replace('BEGIN; ', ''), read)).toEqual([noScope]);
    expect(reasons(`BEGIN; ${read}`)).toEqual([noScope]);
    expect(reasons('BEGIN', scoped.replace('BEGIN; ', ''), read, 'COMMIT')).toEqual([]);
  });
});

describe('the scope statement', () => {
  const role = 'app_user';
  it('is one of the scope settings (or no one) plus the request role, or a reader role, all transaction-local', () => {
    const pg = "SELECT set_config('app.current_user_id', 'u1', true), set_config('role', 'app_user', true)";
    expect(scopeOf(pg, [], role)).toEqual({ kind: 'user', role });
    const pglite = "SELECT set_config('app.current_engine_client_id', $1, true), set_config('role', $2, true)";
    expect(scopeOf(pglite, ['ec_1', role], role)).toEqual({ kind: 'engine client', role });
    expect(scopeOf(pg.replace("'app_user'", "'postgres'"), [], role)).toBeUndefined();
    expect(scopeOf(pg.replace('true)', 'false)'), [], role)).toBeUndefined();
    expect(scopeOf(pg.replace(', true)', ', false)'), [], role)).toBeUndefined();
    expect(scopeOf(pg.replace("'u1'", "''"), [], role)).toEqual({ kind: 'no one', role });
    expect(scopeOf(pg.replace("'u1'", "''").replace(', true)', ', false)'), [], role)).toBeUndefined();
    expect(scopeOf("SELECT set_config('role', 'app_user', true)", [], role)).toBeUndefined();
    expect(scopeOf("SELECT set_config('role', 'credential_key_reader', true)", [], role)).toEqual({
      kind: 'key-id reader',
      role: 'credential_key_reader',
    });
    expect(scopeOf("SELECT set_config('role', 'credential_key_reader', false)", [], role)).toBeUndefined();
  });
});

describe('the rules', () => {
  it('classify every table and every SECURITY DEFINER function the migrations create', async () => {
    const dir = path.resolve(import.meta.dirname, '../../prisma/migrations');
    const sql = (
      await Promise.all(
        (
          await readdir(dir, { withFileTypes: true })
        )
          .filter((e) => e.isDirectory())
          .map((e) => readFile(path.join(dir, e.name, 'migration.sql'), 'utf8')),
      )
    ).join('\n');
    const tables = [...sql.matchAll(/CREATE TABLE "(\w+)"/g)].map((m) => m[1]);
    const rls = [...sql.matchAll(/ALTER TABLE "(\w+)" ENABLE ROW LEVEL SECURITY/g)].map((m) => m[1]);
    const definers = [...sql.matchAll(/CREATE (?:OR REPLACE )?FUNCTION "?(\w+)"?[^;]*?SECURITY DEFINER/gs)].map(
      (m) => m[1],
    );
    expect(tables.length).toBeGreaterThan(8);
    const classified = [...RLS_CHECK_RULES.userTables, ...RLS_CHECK_RULES.notUserData];
    for (const table of tables) expect(classified, `table ${table}`).toContain(table);
    for (const table of rls) expect(RLS_CHECK_RULES.userTables, `RLS table ${table}`).toContain(table);
    const knownDefiners = [...RLS_CHECK_RULES.userDataFunctions, ...RLS_CHECK_RULES.definersWithoutUserData];
    for (const fn of definers) expect(knownDefiners, `function ${fn}`).toContain(fn);
  });
});
