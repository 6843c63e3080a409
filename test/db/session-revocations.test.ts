// What the database announces when a session ends (the trigger of the
// session_revocations migration) and how the revocation watch hears it
// (src/db/session-revocations.ts), on both databases: every ending or
// shortening of a session, once committed, with the user id as its only
// payload; nothing for an extension or a rollback. On PostgreSQL, the watch
// is fresh only while its connection answers, and starts over with a reset
// after a reconnection.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { LISTENER_APPLICATION_NAME, type RevocationWatch } from '../../src/db/session-revocations.ts';
import { createLogger } from '../../src/logger.ts';
import { createTestDatabase, dbKind, queryDatabase, type TestDatabase } from '../support/databases.ts';
import { eventually } from '../support/poll.ts';

let tdb: TestDatabase;
let db: Database;
let watch: RevocationWatch;
const heard: string[] = [];
let resets = 0;

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = await openDatabase(tdb.config, { migrate: true, logger: createLogger('silent') });
  watch = db.watchSessionRevocations({
    onRevoked: (userId) => heard.push(userId),
    onReset: () => {
      resets += 1;
    },
  });
  await eventually('the watch to be fresh', () => watch.fresh());
});
afterAll(async () => {
  await db?.close();
  await tdb?.drop();
});

/** A user with one session (as better-auth writes them), on the database's owner connection. */
async function userWithSession(): Promise<{ userId: string; sessionId: string; token: string }> {
  const userId = randomUUID();
  const sessionId = randomUUID();
  const token = randomUUID();
  const prisma = db.unscopedClient;
  await prisma.user.create({ data: { id: userId, email: `${userId}@example.com`, name: 'x', emailVerified: false } });
  await prisma.session.create({
    data: { id: sessionId, token, userId, expiresAt: new Date(Date.now() + 3600_000) },
  });
  return { userId, sessionId, token };
}

/** What was heard after `change` committed, waiting `quietMs` to be sure nothing more comes. */
async function heardAfter(change: () => Promise<unknown>, quietMs = 300): Promise<string[]> {
  heard.length = 0;
  await change();
  await new Promise((resolve) => setTimeout(resolve, quietMs));
  return [...heard];
}

describe(`session revocations announced by the database (${dbKind})`, () => {
  it('announces a sign-out (DELETE) with the user id, after commit, within a moment', async () => {
    const { userId, sessionId, token } = await userWithSession();
    heard.length = 0;
    const started = Date.now();
    await db.unscopedClient.session.delete({ where: { id: sessionId } });
    await eventually('the announcement', () => heard.includes(userId), { timeoutMs: 2000, intervalMs: 2 });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(heard).toEqual([userId]);
    expect(heard.join()).not.toContain(token);
  });

  it('announces a shortened session or a changed token; not an extension or an unrelated change', async () => {
    const { userId, sessionId } = await userWithSession();
    const session = db.unscopedClient.session;
    expect(
      await heardAfter(() =>
        session.update({ where: { id: sessionId }, data: { expiresAt: new Date(Date.now() + 7200_000) } }),
      ),
    ).toEqual([]);
    expect(await heardAfter(() => session.update({ where: { id: sessionId }, data: { userAgent: 'x' } }))).toEqual([]);
    expect(
      await heardAfter(() => session.update({ where: { id: sessionId }, data: { expiresAt: new Date() } })),
    ).toEqual([userId]);
    expect(await heardAfter(() => session.update({ where: { id: sessionId }, data: { token: randomUUID() } }))).toEqual(
      [userId],
    );
  });

  it('says nothing for a rolled-back sign-out; once for all sessions of a user deleted with the user', async () => {
    const { userId, sessionId } = await userWithSession();
    const rolledBack = await heardAfter(() =>
      db.unscopedClient
        .$transaction(async (tx) => {
          await tx.session.delete({ where: { id: sessionId } });
          throw new Error('roll back');
        })
        .catch(() => undefined),
    );
    expect(rolledBack).toEqual([]);
    await db.unscopedClient.session.create({
      data: { id: randomUUID(), token: randomUUID(), userId, expiresAt: new Date(Date.now() + 3600_000) },
    });
    expect(await heardAfter(() => db.unscopedClient.user.delete({ where: { id: userId } }))).toEqual([userId]);
  });

  it.runIf(dbKind === 'postgres')('is not fresh while its connection is gone, and resets when it is back', async () => {
    expect(watch.fresh()).toBe(true);
    const resetsBefore = resets;
    const terminated = await queryDatabase(
      tdb.url as string,
      'SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()',
      [LISTENER_APPLICATION_NAME],
    );
    expect(terminated.rows).toEqual([{ done: true }]);
    const cut = Date.now();
    await eventually('the watch to notice', () => !watch.fresh(), { timeoutMs: 2000, intervalMs: 1 });
    expect(Date.now() - cut).toBeLessThan(500);
    await eventually('the watch to be back', () => watch.fresh(), { timeoutMs: 10_000 });
    expect(resets).toBe(resetsBefore + 1);
    // And it hears again.
    const { userId, sessionId } = await userWithSession();
    expect(await heardAfter(() => db.unscopedClient.session.delete({ where: { id: sessionId } }))).toEqual([userId]);
  });
});
