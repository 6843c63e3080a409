// Scale-out: two server processes share one database through a real PgBouncer
// in transaction-pooling mode, whose small pool makes them share server
// connections. Proves what docs/operations.md ("Several instances") promises:
// the processes are stateless (a session made on one works on the other,
// sign-out on one holds on both, heard through a direct DATABASE_LISTEN_URL), RLS isolation survives connection sharing
// (only transaction-local settings), getOrCreateAccount stays race-safe
// across processes, and concurrent start-up migrations are safe.
//
// Needs real PostgreSQL: skipped without TEST_DATABASE_URL. With it, a missing
// pgbouncer binary FAILS the suite (.ci/run installs it).
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LISTENER_APPLICATION_NAME } from '../../src/db/session-revocations.ts';
import { gql, type Session, signIn, signOut, signUp } from '../support/client.ts';
import { createTestDatabase, queryDatabase, type TestDatabase, testDatabaseUrl } from '../support/databases.ts';
import { findPgBouncer, type PgBouncer, startPgBouncer } from '../support/pgbouncer.ts';
import { startServer, type TestServer } from '../support/server.ts';

/** PgBouncer's server connections for the test database: fewer than the two processes' pools hold. */
const BOUNCER_POOL = 3;
/** Each process's own pool (DATABASE_POOL_SIZE): 2 × 5 client connections share BOUNCER_POOL. */
const PROCESS_POOL = 5;

const GET_OR_CREATE = 'mutation { getOrCreateAccount { created account { id userId } } }';
const STORE = 'mutation($input: StoreCredentialInput!) { storeCredential(input: $input) { id nickname } }';
const READ = `query($foreign: UUID!) {
  viewer { id }
  accounts { id userId credentials { id nickname } }
  foreign: credential(id: $foreign) { id }
}`;

describe.skipIf(!testDatabaseUrl)('two instances behind a transaction-pooling PgBouncer', () => {
  let bouncer: PgBouncer | undefined;
  let db: TestDatabase | undefined;
  let a: TestServer;
  let b: TestServer;
  let dbName: string;

  // A sign-out reaches the other instance within this, whatever its session cache (default 30 s) holds.
  const SIGN_OUT_BOUND_MS = 2000;

  beforeAll(async () => {
    const bin = findPgBouncer();
    if (!bin) {
      throw new Error(
        'pgbouncer is not installed, so the scale-out tests cannot run: apt-get install -y pgbouncer (.ci/run does)',
      );
    }
    db = await createTestDatabase();
    dbName = new URL(db.url as string).pathname.slice(1);
    bouncer = await startPgBouncer(bin, { upstreamUrl: testDatabaseUrl as string, poolSize: BOUNCER_POOL });
    const env = {
      DATABASE_URL: bouncer.through(db.url as string),
      // Sign-outs are heard on a direct connection: a transaction pooler never delivers them.
      DATABASE_LISTEN_URL: db.url as string,
      DATABASE_POOL_SIZE: String(PROCESS_POOL),
    };
    // Both start (and migrate) at once, through PgBouncer, as a rolling deploy may.
    [a, b] = await Promise.all([startServer({ db, env }), startServer({ db, env })]);
  });

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await bouncer?.stop();
    await db?.drop();
  });

  it('migrated once although both processes started at the same time', async () => {
    const migrations = (
      await readdir(path.resolve(import.meta.dirname, '../../prisma/migrations'), { withFileTypes: true })
    ).filter((e) => e.isDirectory()).length;
    const appliedBy = (server: TestServer) =>
      server.logs
        .map((line) => parseLogLine(line))
        .filter((entry) => entry.msg === 'migrations up to date')
        .map((entry) => entry.applied as number);
    const [fromA, fromB] = [appliedBy(a), appliedBy(b)];
    expect(fromA).toHaveLength(1);
    expect(fromB).toHaveLength(1);
    expect((fromA[0] as number) + (fromB[0] as number)).toBe(migrations);
  });

  it('accepts a session created on one instance on the other; a sign-out on either ends it there at once, on the other within 2 s', async () => {
    const user = await signUp(a.url);
    const onB = await gql(b.url, '{ viewer { id email } }', undefined, { token: user.token });
    expect(onB.body.data?.viewer).toEqual({ id: user.user.id, email: user.email });

    const second = await signIn(b.url, user.email, user.password);
    expect((await gql(a.url, '{ viewer { id } }', undefined, { token: second.token })).body.data?.viewer).toEqual({
      id: user.user.id,
    });

    // A has the session in its cache too when B signs it out.
    expect((await gql(a.url, '{ accounts { id } }', undefined, { token: user.token })).status).toBe(200);
    expect((await signOut(b.url, { token: user.token })).status).toBe(200);
    const signedOutAt = Date.now();
    expect((await gql(b.url, '{ accounts { id } }', undefined, { token: user.token })).status).toBe(401);
    let afterSignOut = await gql(a.url, '{ accounts { id } }', undefined, { token: user.token });
    while (afterSignOut.status === 200 && Date.now() - signedOutAt < 3 * SIGN_OUT_BOUND_MS) {
      await new Promise((r) => setTimeout(r, 50));
      afterSignOut = await gql(a.url, '{ accounts { id } }', undefined, { token: user.token });
    }
    expect(afterSignOut.status).toBe(401);
    expect(afterSignOut.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(Date.now() - signedOutAt).toBeLessThan(SIGN_OUT_BOUND_MS);
    // The other session of the same user is untouched.
    expect((await gql(a.url, '{ accounts { id } }', undefined, { token: second.token })).status).toBe(200);
  });

  it('keeps every user to their own rows while their requests share pooled connections', async () => {
    const servers = [a, b];
    const users: { session: Session; accountId: string; credentialIds: string[] }[] = [];
    for (let i = 0; i < 4; i += 1) {
      const session = await signUp((servers[i % 2] as TestServer).url, { name: `User ${i}` });
      const created = await gql(servers[(i + 1) % 2]!.url, GET_OR_CREATE, undefined, session);
      const accountId = created.body.data?.getOrCreateAccount.account.id as string;
      const credentialIds: string[] = [];
      for (let j = 0; j < 3; j += 1) {
        const res = await gql(
          servers[j % 2]!.url,
          STORE,
          {
            input: {
              accountId,
              credentialType: 'alpaca',
              apiKey: `PK-${i}-${j}-XXXXXXXXXXXX`,
              secretKey: `s-${i}-${j}`,
              nickname: `user${i}-key${j}`,
            },
          },
          session,
        );
        expect(res.body.errors).toBeUndefined();
        credentialIds.push(res.body.data?.storeCredential.id);
      }
      users.push({ session, accountId, credentialIds });
    }

    // 240 requests at once: every user on both instances, each also asking for
    // another user's credential by id (which must come back null).
    const requests = Array.from({ length: 240 }, (_, k) => {
      const user = users[k % 4]!;
      const other = users[(k + 1) % 4]!;
      const server = servers[Math.floor(k / 4) % 2]!;
      return gql(server.url, READ, { foreign: other.credentialIds[k % 3] }, user.session).then((res) => ({
        res,
        user,
      }));
    });
    const answers = await Promise.all(requests);

    // Connections really were shared: more client connections than server ones.
    const clients = (await bouncer!.admin('SHOW CLIENTS')).filter((c) => c.database === dbName);
    const bouncerServers = (await bouncer!.admin('SHOW SERVERS')).filter((s) => s.database === dbName);
    // The revocation listeners are direct connections of their own (DATABASE_LISTEN_URL), not PgBouncer's.
    const backends = await queryDatabase(
      testDatabaseUrl as string,
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name IS DISTINCT FROM $2',
      [dbName, LISTENER_APPLICATION_NAME],
    );
    expect(clients.length).toBeGreaterThan(BOUNCER_POOL);
    expect(bouncerServers.length).toBeLessThanOrEqual(BOUNCER_POOL);
    expect(backends.rows[0].n).toBeLessThanOrEqual(BOUNCER_POOL);

    for (const { res, user } of answers) {
      expect(res.status).toBe(200);
      expect(res.body.errors).toBeUndefined();
      const data = res.body.data as {
        viewer: { id: string };
        accounts: { id: string; userId: string; credentials: { id: string }[] }[];
        foreign: unknown;
      };
      expect(data.viewer.id).toBe(user.session.user.id);
      expect(data.accounts.map((acc) => [acc.id, acc.userId])).toEqual([[user.accountId, user.session.user.id]]);
      expect(data.accounts[0]!.credentials.map((c) => c.id).sort()).toEqual([...user.credentialIds].sort());
      expect(data.foreign).toBeNull();
    }

    // Nothing outlived its transaction: hold every pooled server connection
    // at once and look at its state.
    const holders = await Promise.all(
      Array.from({ length: BOUNCER_POOL }, async () => {
        const client = new pg.Client({ connectionString: bouncer!.through(db!.url as string) });
        await client.connect();
        await client.query('BEGIN');
        return client;
      }),
    );
    try {
      const states = await Promise.all(
        holders.map(
          async (client) =>
            (
              await client.query(
                "SELECT pg_backend_pid() AS pid, current_user AS role, session_user AS login, current_setting('app.current_user_id', true) AS setting",
              )
            ).rows[0] as { pid: number; role: string; login: string; setting: string | null },
        ),
      );
      expect(new Set(states.map((s) => s.pid)).size).toBe(BOUNCER_POOL);
      for (const state of states) {
        expect(state.role).toBe(state.login);
        expect(state.setting ?? '').toBe('');
      }
    } finally {
      await Promise.all(holders.map((c) => c.query('COMMIT').finally(() => c.end())));
    }
  });

  it('getOrCreateAccount stays race-safe with 50 concurrent calls split across both instances', async () => {
    const user = await signUp(a.url);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => gql((i % 2 ? b : a).url, GET_OR_CREATE, undefined, user)),
    );
    for (const res of results) {
      expect(res.status).toBe(200);
      expect(res.body.errors).toBeUndefined();
    }
    const payloads = results.map(
      (r) => r.body.data?.getOrCreateAccount as { created: boolean; account: { id: string; userId: string } },
    );
    expect(payloads.filter((p) => p.created)).toHaveLength(1);
    expect(new Set(payloads.map((p) => p.account.id)).size).toBe(1);
    expect(payloads[0]?.account.userId).toBe(user.user.id);
    // Counted directly on the database (as its owner), not through the API.
    const stored = await queryDatabase(
      db!.url as string,
      'SELECT count(*)::int AS n FROM user_accounts WHERE user_id = $1',
      [user.user.id],
    );
    expect(stored.rows[0].n).toBe(1);
  });
});

function parseLogLine(line: string): { msg?: string; applied?: number } {
  try {
    return JSON.parse(line) as { msg?: string; applied?: number };
  } catch {
    return {};
  }
}
