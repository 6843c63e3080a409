// The error log keeps what an operator needs of an unexpected error (its
// kind, code, which call failed, where in our code) and none of the values the
// failing call carried. Prisma's messages hold them: in
// production (errorFormat "minimal") the database's own message, quoting the
// row; in development a rendering of the call's arguments. Here a database
// trigger refuses a new account quoting its name, a secret-looking value, and
// the server runs as in production.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.ts';
import { createLogger, describeError } from '../../src/logger.ts';
import { gql, signUp } from '../support/client.ts';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/databases.ts';
import { eventually } from '../support/poll.ts';
import { startServer, type TestServer } from '../support/server.ts';

let tdb: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  tdb = await createTestDatabase();
  const db = await openDatabase(tdb.config, { migrate: true, logger: createLogger('silent') });
  try {
    await db.unscopedClient.$executeRawUnsafe(`
      CREATE FUNCTION refuse_account() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'refused account %', NEW.account_name; END $$`);
    await db.unscopedClient.$executeRawUnsafe(
      'CREATE TRIGGER refuse_account BEFORE INSERT ON user_accounts FOR EACH ROW EXECUTE FUNCTION refuse_account()',
    );
  } finally {
    await db.close();
  }
  server = await startServer({ db: tdb, env: { NODE_ENV: 'production', LOG_LEVEL: 'info' } });
});
afterAll(async () => {
  await server?.close();
  await tdb?.drop();
});

describe(`error logs (${dbKind})`, () => {
  it('log a failed Prisma call by name, code and call, without the values it carried', async () => {
    const session = await signUp(server.url);
    const value = `PKLEAK${randomUUID().replaceAll('-', '')}`;
    const res = await gql(
      server.url,
      'mutation($n: String!) { createAccount(input: { accountName: $n }) { id } }',
      { n: value },
      session,
    );
    expect(res.body.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    const logged = await eventually(
      'the error line',
      () =>
        server.logs
          .filter((l) => l.includes('unexpected error in a GraphQL operation'))
          .map((l) => JSON.parse(l) as { error: Record<string, unknown> })[0]?.error,
    );
    expect(logged).toMatchObject({ type: 'PrismaClientKnownRequestError', code: expect.stringMatching(/^P\d{4}$/) });
    expect(logged?.message).toBe('prisma.userAccount.create() failed');
    expect(logged?.stack).toMatch(/src\/schema\/account\.ts/);
    expect(server.logs.filter((l) => l.includes(value))).toEqual([]);
  });
});

describe('describeError', () => {
  it('keeps only the frames of a stack, never the message lines in it', () => {
    const error = new Error('first line\n  { apiKey: "PKLEAKSTACK" }\nlast line');
    const described = describeError(error);
    expect(described.message).toBe('first line');
    expect(JSON.stringify(described)).not.toContain('PKLEAKSTACK');
    expect(described.stack).toMatch(/^ {4}at /);
  });
});
