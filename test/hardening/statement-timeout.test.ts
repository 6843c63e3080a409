// STATEMENT_TIMEOUT_MS (docs/configuration.md): every statement of a request
// runs under statement_timeout, set transaction-locally in the statement that
// opens the request's transaction (src/db/request-transaction.ts). A statement that runs
// longer is cut by PostgreSQL, the request answers an error, and the
// connection goes back to the pool at once.
import { beforeAll, describe, expect, it } from 'vitest';
import { errorOf, gql, type Session, signUp } from '../support/client.ts';
import { dbKind, queryDatabase } from '../support/databases.ts';
import { useInProcessServer } from '../support/in-process.ts';

const TIMEOUT_MS = 1500;
const CREATE = 'mutation($input: CreateAccountInput!) { createAccount(input: $input) { id } }';

// One pooled connection: a request that kept it would starve every other one.
const server = useInProcessServer({ env: { STATEMENT_TIMEOUT_MS: String(TIMEOUT_MS), DATABASE_POOL_SIZE: '1' } });

/** Polls `check` until it holds, for up to 10 s. */
async function eventually(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe(`statement timeout (${dbKind})`, () => {
  let alice: Session;

  beforeAll(async () => {
    alice = await signUp(server.url);
  });

  it('is in force in every request transaction, at the configured value', async () => {
    const [row] = await server.db.withUser(
      alice.user.id,
      (tx) => tx.$queryRaw<{ timeout: string }[]>`SELECT current_setting('statement_timeout') AS timeout`,
    );
    expect(row?.timeout).toBe(`${TIMEOUT_MS}ms`);
    // Transaction-local: the pooled connection itself keeps no timeout (safe behind PgBouncer).
    const [outside] = await server.db.unscopedClient.$queryRaw<
      { timeout: string }[]
    >`SELECT current_setting('statement_timeout') AS timeout`;
    expect(outside?.timeout).toBe('0');
  });

  // PGlite runs in this process and its statements cannot be interrupted: it
  // ignores statement_timeout (a pg_sleep(2) under a 300 ms timeout runs its
  // 2 s). There, bounded work rests on the complexity limit and the caps.
  describe.runIf(dbKind === 'postgres')('on PostgreSQL', () => {
    const sleeping = async () => {
      const { rows } = await queryDatabase(
        server.testDb.url as string,
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'`,
      );
      return (rows[0] as { n: number }).n;
    };

    it('cuts a slow statement, answers an error, and frees the only connection for the next request', async () => {
      // A statement the code cannot make slow by itself: a trigger (installed
      // as the owner, as a migration would) that sleeps for one account name.
      await server.db.unscopedClient.$executeRawUnsafe(`
        CREATE FUNCTION timeout_test_sleep() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.account_name = 'Slow' THEN PERFORM pg_sleep(60); END IF;
          RETURN NEW;
        END $$`);
      await server.db.unscopedClient.$executeRawUnsafe(
        'CREATE TRIGGER timeout_test_sleep BEFORE INSERT ON user_accounts FOR EACH ROW EXECUTE FUNCTION timeout_test_sleep()',
      );
      const bob = await signUp(server.url);
      const started = Date.now();
      const slow = gql(server.url, CREATE, { input: { accountName: 'Slow' } }, alice);
      await eventually(async () => (await sleeping()) === 1, 'the slow statement to run');
      // Bob's request queues for the pool's one connection meanwhile.
      const other = gql(server.url, 'mutation { getOrCreateAccount { created } }', undefined, bob);

      const res = await slow;
      const elapsed = Date.now() - started;
      expect(errorOf(res)).toMatchObject({ code: 'INTERNAL_SERVER_ERROR', message: 'Unexpected error.' });
      expect(res.text).not.toMatch(/statement timeout|pg_sleep|SELECT|INSERT/i);
      expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS);
      expect(elapsed).toBeLessThan(60_000);
      expect(await sleeping()).toBe(0);

      expect((await other).body.data).toEqual({ getOrCreateAccount: { created: true } });
      await eventually(() => server.db.connections().active === 0, 'the pool to be idle');
      expect(server.db.connections()).toMatchObject({ active: 0, waiting: 0 });
      // Nothing of the cut request was written; the account can be created as usual.
      expect((await gql(server.url, '{ accounts { id } }', undefined, alice)).body.data).toEqual({ accounts: [] });
      expect((await gql(server.url, CREATE, { input: { accountName: 'Fast' } }, alice)).body.errors).toBeUndefined();
      // Logged server-side as what it is.
      const logged = server.logs.filter((l) => l.includes('statement cut by statement_timeout'));
      expect(logged).toHaveLength(1);
      expect(logged[0]).toContain('"path":"createAccount"');
    });
  });
});
