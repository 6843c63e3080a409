// Signing out revokes the session on every instance within 2 s, whatever the
// session cache (default 30 s) holds: two spawned servers on one PostgreSQL
// database, B's revocation listener through a TCP proxy the test can break.
// While B cannot hear revocations it stops serving sessions from its cache;
// once it hears them again, the cache serves again.
//
// On PGlite there is one process per database (test/cli/embedded-admin.test.ts):
// a session ended by SQL reaches that process's cache the same way, below.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LISTENER_APPLICATION_NAME } from '../../src/db/session-revocations.ts';
import { type Auth, gql, signOut, signUp } from '../support/client.ts';
import { createTestDatabase, dbKind, queryDatabase, type TestDatabase } from '../support/databases.ts';
import { useInProcessServer } from '../support/in-process.ts';
import { eventually, jsonLines } from '../support/poll.ts';
import { startServer, type TestServer } from '../support/server.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

const ACCOUNTS = '{ accounts { id } }';
const status = async (server: { url: string }, auth: Auth) => (await gql(server.url, ACCOUNTS, undefined, auth)).status;

/** Polls `server` until it refuses `auth` (401); the milliseconds it took from `since`. */
async function refusedAfter(server: { url: string }, auth: Auth, since: number, limitMs = 5000): Promise<number> {
  await eventually('the session to be refused', async () => (await status(server, auth)) === 401, {
    timeoutMs: limitMs,
    intervalMs: 20,
  });
  return Date.now() - since;
}

/** Waits for a log line of `server` with this message, after the `seen` lines already there. */
function logged(server: TestServer, message: string, seen = 0) {
  return eventually(`"${message}" in the log`, () =>
    jsonLines(server.logs.slice(seen)).find((line) => line.msg === message),
  );
}

describe.runIf(dbKind === 'postgres')('sign-out on every instance (postgres, two processes)', () => {
  let tdb: TestDatabase;
  let proxy: TcpProxy;
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    proxy = await startTcpProxy(tdb.url as string);
    // The default SESSION_CACHE_TTL_MS (30 s): only the announcements can make B forget in time.
    [a, b] = await Promise.all([
      startServer({ db: tdb }),
      startServer({ db: tdb, env: { DATABASE_LISTEN_URL: proxy.through(tdb.url as string) } }),
    ]);
    await Promise.all([a, b].map((s) => logged(s, 'session revocation listener connected')));
  }, 120_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await proxy?.close();
    await tdb?.drop();
  });

  it('a sign-out on A is refused on B within 2 s, although B had the session cached', async () => {
    const times: number[] = [];
    for (let round = 0; round < 5; round += 1) {
      const user = await signUp(a.url);
      const auth = { token: user.token };
      // B resolves it, then serves it from its cache.
      expect(await status(b, auth)).toBe(200);
      expect(await status(b, auth)).toBe(200);
      expect((await signOut(a.url, auth)).status).toBe(200);
      times.push(await refusedAfter(b, auth, Date.now()));
      expect(await status(a, auth)).toBe(401);
    }
    process.stdout.write(`sign-out propagation A → B, ms: ${times.join(', ')}\n`);
    expect(Math.max(...times)).toBeLessThan(2000);
  });

  it('while B cannot hear revocations it asks the database every time; once it hears again, it caches again', async () => {
    const ended = await signUp(a.url);
    const kept = await signUp(a.url);
    expect(await status(b, { token: ended.token })).toBe(200);
    expect(await status(b, { token: kept.token })).toBe(200);

    // B's listener is cut (and cannot come back) while the session ends by SQL: B never hears of it.
    proxy.refuse();
    const seen = b.logs.length;
    const terminated = await queryDatabase(
      tdb.url as string,
      `SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
        WHERE application_name = $1 AND datname = current_database() AND client_port = ANY($2::int[])`,
      [LISTENER_APPLICATION_NAME, proxy.upstreamPorts()],
    );
    expect(terminated.rows).toEqual([{ done: true }]);
    await logged(
      b,
      'session revocation listener disconnected: every request checks its session until it is back',
      seen,
    );
    await queryDatabase(tdb.url as string, 'DELETE FROM auth_sessions WHERE user_id = $1', [ended.user.id]);
    // Cached on B a moment ago, announced to no one on B: refused all the same (B asked the database).
    expect(await status(b, { token: ended.token })).toBe(401);
    expect(await status(b, { token: kept.token })).toBe(200);

    const back = b.logs.length;
    proxy.accept();
    await logged(b, 'session revocation listener reconnected', back);
    // The cache serves again: a session ended without an announcement (the
    // triggers off for a moment) is still served from B's memory.
    expect(await status(b, { token: kept.token })).toBe(200);
    await queryDatabase(
      tdb.url as string,
      `BEGIN;
       ALTER TABLE auth_sessions DISABLE TRIGGER USER;
       DELETE FROM auth_sessions WHERE user_id = '${kept.user.id}';
       ALTER TABLE auth_sessions ENABLE TRIGGER USER;
       COMMIT`,
    );
    expect(await status(b, { token: kept.token })).toBe(200);
    // A, which never cached it after the deletion, refuses it.
    expect(await status(a, { token: kept.token })).toBe(401);
  });

  it('a silent network: B refuses a session ended meanwhile within 2 s, then recovers', async () => {
    const user = await signUp(a.url);
    const auth = { token: user.token };
    expect(await status(b, auth)).toBe(200);
    const seen = b.logs.length;
    proxy.freeze();
    try {
      const since = Date.now();
      // The announcement is sent, and held in the frozen network.
      await queryDatabase(tdb.url as string, 'DELETE FROM auth_sessions WHERE user_id = $1', [user.user.id]);
      const elapsed = await refusedAfter(b, auth, since);
      process.stdout.write(`silent network: session refused on B after ${elapsed} ms\n`);
      expect(elapsed).toBeLessThan(2000);
      const line = await logged(
        b,
        'session revocation listener disconnected: every request checks its session until it is back',
        seen,
      );
      expect(line.reason).toMatch(/heartbeat unanswered/);
    } finally {
      proxy.thaw();
    }
    const again = await signUp(a.url);
    await logged(b, 'session revocation listener reconnected', seen);
    expect(await status(b, { token: again.token })).toBe(200);
    expect(b.logs.join('\n')).not.toContain(user.token);
  });
});

describe(`a session ended by SQL reaches the cache of the process that serves it (${dbKind})`, () => {
  const server = useInProcessServer();

  it('is refused within 2 s, with the default 30 s cache', async () => {
    const user = await signUp(server.url);
    const auth = { token: user.token };
    expect(await status(server, auth)).toBe(200);
    expect(await status(server, auth)).toBe(200);
    const since = Date.now();
    await server.db.unscopedClient.session.deleteMany({ where: { userId: user.user.id } });
    expect(await refusedAfter(server, auth, since)).toBeLessThan(2000);
  });
});
